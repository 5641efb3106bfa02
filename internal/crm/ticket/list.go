package ticket

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Filter picks tickets; nil and empty fields pick all. Assignee "" picks
// the unassigned.
type Filter struct {
	Status   string
	Priority string
	Assignee *string
	Breached *bool
	Account  string
	Profile  string
}

// query is the index read that serves f best: each ends with the
// opening time, so every queue reads oldest first.
func (f Filter) query() store.Query {
	withStatus := func(idx, age string, v any) store.Query {
		if f.Status != "" {
			return store.Query{Index: idx, Eq: []any{v, f.Status}}
		}
		return store.Query{Index: age, Eq: []any{v}}
	}
	switch {
	case f.Profile != "":
		return store.Query{Index: TicketsByProfile, Eq: []any{f.Profile}}
	case f.Account != "":
		return store.Query{Index: TicketsByAccount, Eq: []any{f.Account}}
	case f.Assignee != nil:
		return withStatus(TicketsByAssignee, TicketsByAssigneeAge, *f.Assignee)
	case f.Breached != nil:
		return withStatus(TicketsByBreached, TicketsByBreachedAge, *f.Breached)
	case f.Priority != "":
		return withStatus(TicketsByPriority, TicketsByPriorityAge, f.Priority)
	case f.Status != "":
		return store.Query{Index: TicketsByStatus, Eq: []any{f.Status}}
	}
	return store.Query{Index: TicketsByCreated}
}

// exact tells whether the index read alone answers f (an index count).
func (f Filter) exact(q store.Query) bool {
	n := 0
	if f.Assignee != nil {
		n++
	}
	if f.Breached != nil {
		n++
	}
	if f.Priority != "" {
		n++
	}
	for _, id := range []string{f.Profile, f.Account} {
		if id != "" {
			n += 1 + btoi(f.Status != "")
		}
	}
	return n <= 1
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f Filter) matches(t *Ticket) bool {
	switch {
	case f.Status != "" && t.Status != f.Status,
		f.Priority != "" && t.Priority != f.Priority,
		f.Assignee != nil && t.Assignee != *f.Assignee,
		f.Breached != nil && t.Breached != *f.Breached,
		f.Account != "" && t.AccountID != f.Account,
		f.Profile != "" && t.ProfileID != f.Profile:
		return false
	}
	return true
}

// ListName names the order a filter's pages are read in, so that a
// cursor of one order is refused by another.
func (f Filter) ListName() string { return "tickets-" + f.query().Index }

// Page is a page of tickets.
type Page struct {
	Tickets []*Ticket
	Cursors []string
	HasNext bool
}

// List pages through the tickets f picks, oldest first, after a cursor of
// the same filter.
func (s *Service) List(ctx context.Context, tn store.Tenant, f Filter, first int, after string) (Page, error) {
	var out Page
	q := f.query()
	q.After, q.Limit = after, 200
	for {
		docs, err := tn.C(Tickets).Find(ctx, q)
		if errors.Is(err, store.ErrBadCursor) {
			return out, apperr.Invalid("after", "malformed cursor")
		}
		if err != nil {
			return out, fmt.Errorf("list tickets: %w", err)
		}
		for _, doc := range docs {
			var t Ticket
			if err := doc.Decode(&t); err != nil {
				return out, fmt.Errorf("decode ticket: %w", err)
			}
			if !f.matches(&t) {
				continue
			}
			if len(out.Tickets) == first {
				out.HasNext = true
				return out, nil
			}
			out.Tickets = append(out.Tickets, &t)
			out.Cursors = append(out.Cursors, doc.Key)
		}
		if len(docs) < q.Limit {
			return out, nil
		}
		q.After = docs[len(docs)-1].Key
	}
}

// Count is how many tickets f picks: an index count when the index
// serving f answers it alone, else its tickets read and checked.
func (s *Service) Count(ctx context.Context, tn store.Tenant, f Filter) (int64, error) {
	q := f.query()
	if f.exact(q) {
		n, err := tn.C(Tickets).Count(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("count tickets: %w", err)
		}
		return n, nil
	}
	var n int64
	err := tn.C(Tickets).Each(ctx, q, func(raw bson.Raw) error {
		var t Ticket
		if err := bson.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode ticket: %w", err)
		}
		if f.matches(&t) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	return n, nil
}
