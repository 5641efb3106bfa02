package resolvers

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/store"
)

func toTicket(t *ticket.Ticket) *model.Ticket {
	out := &model.Ticket{ID: t.ID, Subject: t.Subject, Body: t.Body, Status: model.TicketStatus(t.Status), Priority: model.TicketPriority(t.Priority),
		Channel: model.TicketChannel(t.Channel), Assignee: optional(t.Assignee), CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		FirstResponseAt: optionalTime(t.FirstResponseAt), ResolvedAt: optionalTime(t.ResolvedAt), ClosedAt: optionalTime(t.ClosedAt),
		Breached: t.Breached, Version: int(t.Version), ProfileID: t.ProfileID, AccountID: t.AccountID,
		History: make([]model.TicketStatusChange, len(t.History)),
		SLA: &model.TicketSLA{FirstResponseDueAt: deadline(t.FirstResponseDue), ResolutionDueAt: deadline(t.ResolutionDue),
			FirstResponseBreached: t.FirstResponseBreached, ResolutionBreached: t.ResolutionBreached}}
	if d, ok := t.FirstResponseTime(); ok {
		s := d.Seconds()
		out.SLA.FirstResponseSeconds = &s
	}
	if d, ok := t.ResolutionTime(); ok {
		s := d.Seconds()
		out.SLA.ResolutionSeconds = &s
	}
	for i, c := range t.History {
		out.History[i] = model.TicketStatusChange{Status: model.TicketStatus(c.Status), At: c.At, By: optional(c.By)}
	}
	return out
}

func deadline(t time.Time) *time.Time {
	if t.Equal(ticket.NoDue) {
		return nil
	}
	return &t
}

func toTicketComment(c *ticket.Comment) model.TicketComment {
	return model.TicketComment{ID: c.ID, Body: c.Body, Author: optional(c.Author), ByCustomer: c.AuthorProfileID != "", Internal: c.Internal, CreatedAt: c.CreatedAt}
}

func toSLATargets(ts []ticket.Target) []model.TicketSLATarget {
	minutes := func(d time.Duration) *int {
		if d <= 0 {
			return nil
		}
		m := int(d / time.Minute)
		return &m
	}
	out := make([]model.TicketSLATarget, len(ts))
	for i, t := range ts {
		out[i] = model.TicketSLATarget{Priority: model.TicketPriority(t.Priority), FirstResponseMinutes: minutes(t.FirstResponse), ResolutionMinutes: minutes(t.Resolution)}
	}
	return out
}

// ticketPerson is the profile a new ticket is for: profileId as given,
// or the person of identifier, found or made by identify (so the write
// path's steps run for a new person: segments, account links).
func (r *Resolver) ticketPerson(ctx context.Context, tn store.Tenant, p auth.Principal, in model.OpenTicketInput) (string, error) {
	if (in.ProfileID == nil) == (in.Identifier == nil) {
		return "", apperr.Invalid("input", "set exactly one of profileId and identifier")
	}
	if in.ProfileID != nil {
		return *in.ProfileID, nil
	}
	// The identifier form writes a person, as identify does: it needs
	// identify's scope, and the ticket's own fields are checked first, so
	// a refused call makes nobody.
	if !p.Has(auth.ScopeEventsWrite) {
		return "", apperr.New(apperr.Forbidden, "openTicket with an identifier needs scope %s (it may make a person, as identify does)", auth.ScopeEventsWrite)
	}
	if err := ticket.Check(ctx, tn, ticketInput("", in, p)); err != nil {
		return "", err
	}
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return "", err
	}
	ids, err := types.Normalise("input.identifier", []identity.Identifier{{Type: in.Identifier.Type, Value: in.Identifier.Value}})
	if err != nil {
		return "", err
	}
	res, err := r.ingest.Identify(ctx, tn, caller(p), ingest.IdentifyInput{Identifiers: ids})
	if err != nil {
		return "", err
	}
	return res.Profile.ID, nil
}

// ticketPage is a connection over the tickets f picks.
func (r *Resolver) ticketPage(ctx context.Context, f ticket.Filter, first *int, after *string) (*model.TicketConnection, error) {
	list := f.ListName()
	tn, n, key, err := r.pageRequest(ctx, list, first, after)
	if err != nil {
		return nil, err
	}
	page, err := r.tickets.List(ctx, tn, f, n, key)
	if err != nil {
		return nil, err
	}
	conn := &model.TicketConnection{Edges: []model.TicketEdge{}, Nodes: []model.Ticket{}}
	conn.Count = func(ctx context.Context) (int64, error) { return r.tickets.Count(ctx, tn, f) }
	cursors := make([]string, len(page.Tickets))
	for i, t := range page.Tickets {
		m := toTicket(t)
		cursors[i] = wrapCursor(list, page.Cursors[i])
		conn.Edges = append(conn.Edges, model.TicketEdge{Cursor: cursors[i], Node: m})
		conn.Nodes = append(conn.Nodes, *m)
	}
	conn.PageInfo = pageInfo(cursors, page.HasNext, key != "")
	return conn, nil
}

func ticketStatus(s *model.TicketStatus) string {
	if s == nil {
		return ""
	}
	return string(*s)
}

func toTicketFilter(in *model.TicketFilter) ticket.Filter {
	if in == nil {
		return ticket.Filter{}
	}
	f := ticket.Filter{Status: ticketStatus(in.Status), Assignee: in.Assignee, Breached: in.Breached, Account: deref(in.AccountID)}
	if in.Priority != nil {
		f.Priority = string(*in.Priority)
	}
	return f
}

// ticketInput is openTicket's input for the domain, for profileID.
func ticketInput(profileID string, in model.OpenTicketInput, p auth.Principal) ticket.OpenInput {
	return ticket.OpenInput{ProfileID: profileID, Subject: in.Subject, Body: deref(in.Body), Priority: string(in.Priority),
		Channel: string(in.Channel), Assignee: deref(in.Assignee), AccountID: deref(in.AccountID), Actor: p.Subject}
}
