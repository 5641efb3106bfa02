package ticket

import (
	"context"
	"log/slog"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// Stream delivers each ticket f picks, before or after a write to it, as
// it is after the write, from any instance, until ctx ends: a queue hears
// of tickets that join it and of those that leave it (then no longer
// matching f). The person filter (Filter.Profile) is not offered here.
func (s *Service) Stream(ctx context.Context, hub *realtime.Hub, tn store.Tenant, f Filter) (<-chan *Ticket, error) {
	changes, cancel := hub.Subscribe(tn.Workspace(), func(c realtime.Change) bool { return c.Kind == realtime.TicketChanged }, "")
	return realtime.Pump(ctx, changes, cancel, nil, false, func(c realtime.Change) []*Ticket {
		t, err := s.Get(ctx, tn, c.String(realtime.PayloadTicketID))
		if err != nil {
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "ticketChanged: read ticket", "ticket", c.String(realtime.PayloadTicketID), "err", err)
			}
			return nil
		}
		if !f.matches(t) && !f.matched(c) {
			return nil
		}
		t.WorkspaceID = tn.Workspace()
		return []*Ticket{t}
	}), nil
}

// matched tells whether the ticket of change c matched f before the
// write c announces (false for a new ticket).
func (f Filter) matched(c realtime.Change) bool {
	if _, ok := c.Payload[realtime.PayloadPrevStatus]; !ok {
		return false
	}
	prev := Ticket{Status: c.String(realtime.PayloadPrevStatus), Priority: c.String(realtime.PayloadPrevPriority),
		Assignee: c.String(realtime.PayloadPrevAssignee), Breached: c.Bool(realtime.PayloadPrevBreached),
		AccountID: c.String(realtime.PayloadPrevAccount)}
	f.Profile = "" // not kept in the payload (and not offered)
	return f.matches(&prev)
}
