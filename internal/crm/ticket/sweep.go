package ticket

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/store"
)

type workspaceDoc struct {
	ID string `bson:"_id"`
	WS string `bson:"ws"`
}

// register records, in the system workspace, that tn has tickets, so
// the sweeper of every instance visits it (once per process).
func (s *Service) register(ctx context.Context, tn store.Tenant) error {
	if _, done := s.registered.Load(tn.Workspace()); done {
		return nil
	}
	if err := tn.System().C(TicketWorkspaces).Put(ctx, workspaceDoc{ID: "tickets:" + tn.Workspace(), WS: tn.Workspace()}); err != nil {
		return fmt.Errorf("register ticket workspace: %w", err)
	}
	s.registered.Store(tn.Workspace(), true)
	return nil
}

// Workspaces lists the workspaces that have (or had) tickets.
func Workspaces(ctx context.Context, st *store.Store) ([]string, error) {
	docs, err := st.Tenant(store.SystemWorkspace).C(TicketWorkspaces).Find(ctx, store.Query{Index: TicketWorkspacesAll})
	if err != nil {
		return nil, fmt.Errorf("ticket workspaces: %w", err)
	}
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		var w workspaceDoc
		if err := d.Decode(&w); err != nil {
			return nil, fmt.Errorf("decode ticket workspace: %w", err)
		}
		out = append(out, w.WS)
	}
	return out, nil
}

// sweepPage is how many due tickets one read takes.
const sweepPage = 200

// Sweep flags the tickets whose next deadline passed before now as
// breached, and returns them as written. Concurrent sweepers (every
// instance runs one) and writes settle each ticket by compare-and-swap.
func (s *Service) Sweep(ctx context.Context, tn store.Tenant, now time.Time) ([]*Ticket, error) {
	var out []*Ticket
	for {
		docs, err := tn.C(Tickets).Find(ctx, store.Query{Index: TicketsByCheck, Range: &store.Bound{Lt: store.DateTime(now)}, Limit: sweepPage})
		if err != nil {
			return out, fmt.Errorf("tickets due: %w", err)
		}
		for _, d := range docs {
			var t Ticket
			if err := d.Decode(&t); err != nil {
				return out, fmt.Errorf("decode ticket: %w", err)
			}
			written, err := s.settleOne(ctx, tn, &t, now)
			if err != nil {
				return out, err
			}
			if written != nil {
				out = append(out, written)
			}
		}
		if len(docs) < sweepPage {
			return out, nil
		}
	}
}

// settleOne writes t settled at now, re-reading it when a concurrent
// write changed it; nil when there was nothing to write.
func (s *Service) settleOne(ctx context.Context, tn store.Tenant, t *Ticket, now time.Time) (*Ticket, error) {
	for range 10 {
		prev := *t
		t.settle(now)
		if t.Breached == prev.Breached && t.FirstResponseBreached == prev.FirstResponseBreached &&
			t.ResolutionBreached == prev.ResolutionBreached && t.CheckAt.Equal(prev.CheckAt) {
			return nil, nil
		}
		t.Version = prev.Version + 1
		err := tn.C(Tickets).Replace(ctx, t, prev.Version)
		if err == nil {
			t.WorkspaceID = tn.Workspace()
			s.notify(ctx, tn, t, &prev)
			return t, nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("flag ticket %s: %w", t.ID, err)
		}
		*t = Ticket{}
		if err := tn.C(Tickets).Get(ctx, prev.ID, t); errors.Is(err, store.ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("reload ticket %s: %w", prev.ID, err)
		}
	}
	return nil, fmt.Errorf("flag ticket %s: too much contention", t.ID)
}
