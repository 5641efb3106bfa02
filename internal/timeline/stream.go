package timeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// StreamAppended streams from hub the items appended to profileID's
// timeline, following the profile through merges, after the item after
// when it is set (a client resuming where it stopped). A bad profileID is
// BAD_USER_INPUT on field "profileId", a bad after on field "after"; the
// stream ends with ctx.
func (s *Service) StreamAppended(ctx context.Context, hub *realtime.Hub, tn store.Tenant, profileID, after string) (<-chan *Event, error) {
	if profileID == "" || len(profileID) > 128 {
		return nil, apperr.Invalid("profileId", "must be a profile id")
	}
	p, err := profile.Resolve(ctx, tn, profileID, s.identity.Redirect)
	if err != nil {
		return nil, fmt.Errorf("profile to stream: %w", err)
	}
	var (
		from    string
		pending []realtime.Change
	)
	if after != "" {
		var rest []string
		if from, rest, err = resumePoint(ctx, hub, tn, after); err != nil {
			return nil, err
		}
		// The rest of the change that carried `after` comes first.
		pending = []realtime.Change{{Kind: realtime.TimelineAppended, Payload: map[string]any{realtime.PayloadItemIDs: rest}}}
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), realtime.Follow(p.ID, realtime.TimelineAppended), from)
	return realtime.Pump(ctx, changes, cancel, pending, false, func(c realtime.Change) []*Event {
		var items []*Event
		for _, id := range c.Strings(realtime.PayloadItemIDs) {
			ev, err := Get(ctx, tn, id)
			if err != nil {
				// An item erased since it was appended is skipped; a
				// failed read costs the reader that item, not the stream.
				if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
					slog.WarnContext(ctx, "timelineAppended: read item", "item", id, "err", err)
				}
				continue
			}
			items = append(items, ev)
		}
		return items
	}), nil
}

// resumePoint finds the outbox change that carried timeline item after:
// the stream resumes after that change, first sending the items it
// carried after `after` (a trackBatch change carries several). An item
// older than the outbox retention is refused (Hub.CheckResume); one whose
// change is gone nonetheless resumes from the item's time: items stored
// within a few milliseconds before it may come again.
func resumePoint(ctx context.Context, hub *realtime.Hub, tn store.Tenant, after string) (from string, rest []string, err error) {
	at, ok := realtime.IDTime(after)
	if !ok {
		return "", nil, apperr.Invalid("after", "must be the id of a timeline item")
	}
	if err := hub.CheckResume("after", at, "the profile's timeline"); err != nil {
		return "", nil, err
	}
	var i int
	c, found, err := realtime.FindCarrier(ctx, tn, at, func(c realtime.Change) bool {
		i = slices.Index(c.Strings(realtime.PayloadItemIDs), after)
		return c.Kind == realtime.TimelineAppended && i >= 0
	})
	if err != nil || !found {
		return realtime.Floor(at), nil, err
	}
	return c.ID, c.Strings(realtime.PayloadItemIDs)[i+1:], nil
}
