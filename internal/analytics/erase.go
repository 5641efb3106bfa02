package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

const (
	// eraseLease is how long an erasure may hold a workspace's rollups:
	// it releases them when done, so only a crashed one holds them that
	// long (folding waits; reads stay exact, from the stored events).
	eraseLease = 5 * time.Minute
	// leaseWait is how long an erasure waits for the rollups' lease, held
	// by a fold round (seconds) or another erasure.
	leaseWait = 2 * time.Minute
)

// EraseEvents is the timeline step of an erasure (privacy), rollups
// included: it deletes every timeline item of the profile
// (timeline.EraseEvents) and subtracts from the rollups the events among
// them that were folded, so that every figure still equals the stored
// events. It returns how many items it deleted.
//
// It runs under the workspace's rollup lease, so no fold runs meanwhile:
// an event is then counted if and only if its id is at or below its day's
// Folded (folds go in id order, up to a horizon below which every item
// is stored, and the event was not deleted before). Each day records
// what the erasure's last pass subtracted up to (day.Erased), so a pass
// repeated after a crash, or the erasure's second sweep, subtracts only
// events folded since.
func (s *Service) EraseEvents(ctx context.Context, tn store.Tenant, erasureID, profileID string) (int, error) {
	sys := tn.System()
	cur, err := s.waitLease(ctx, sys, tn.Workspace())
	if err != nil {
		return 0, err
	}
	defer s.release(context.WithoutCancel(ctx), sys, cur)
	if err := subtractErased(ctx, tn, erasureID, profileID); err != nil {
		return 0, err
	}
	return timeline.EraseEvents(ctx, tn, profileID)
}

// subtractErased is EraseEvents' subtraction, under the lease: a crash
// after it and before the items are deleted leaves each day's Erased to
// tell the next pass what it took already.
func subtractErased(ctx context.Context, tn store.Tenant, erasureID, profileID string) error {
	type ev struct {
		id, name, channel string
		q                 int
	}
	byDay := map[string][]ev{}
	err := timeline.EventsOf(ctx, tn, profileID, func(e *timeline.Event) error {
		if e.Kind == timeline.KindEvent {
			d := dayID(e.OccurredAt)
			byDay[d] = append(byDay[d], ev{e.ID, e.Name, e.Channel, quarterOf(e.OccurredAt)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, evs := range byDay {
		var d day
		err := tn.C(Rollups).Get(ctx, id, &d)
		if errors.Is(err, store.ErrNotFound) {
			continue // nothing of that day folded yet
		}
		if err != nil {
			return fmt.Errorf("read rollup of %s: %w", id, err)
		}
		from := d.Erased[erasureID]
		for _, e := range evs {
			if e.id > from && e.id <= d.Folded {
				if err := d.subtract(e.name, e.channel, e.q); err != nil {
					return err
				}
			}
		}
		if d.Erased == nil {
			d.Erased = map[string]string{}
		}
		d.Erased[erasureID] = d.Folded
		d.Version++
		if err := tn.C(Rollups).Replace(ctx, &d, d.Version-1); err != nil {
			return fmt.Errorf("subtract erased events from the rollup of %s: %w", id, err)
		}
	}
	return nil
}

// waitLease takes ws's rollup lease for an erasure, waiting for a fold
// round (or another erasure) to end.
func (s *Service) waitLease(ctx context.Context, sys store.Tenant, ws string) (*cursor, error) {
	deadline := time.Now().Add(leaseWait)
	for {
		cur, err := s.lease(ctx, sys, ws, eraseLease)
		if err != nil || cur != nil {
			return cur, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the rollups of workspace %s stayed busy for %s", ws, leaseWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// subtract takes one event of name and channel in quarter q off the day;
// a series left with no event goes.
func (d *day) subtract(name, channel string, q int) error {
	for i := range d.Series {
		s := &d.Series[i]
		if s.Name != name || s.Channel != channel {
			continue
		}
		c, err := s.counts()
		if err != nil {
			return err
		}
		if c[q] <= 0 {
			return fmt.Errorf("rollup of %s: no %q/%q event to subtract in quarter %d", d.ID, name, channel, q)
		}
		c[q]--
		s.set(c)
		if s.Total == 0 {
			d.Series = append(d.Series[:i], d.Series[i+1:]...)
		}
		return nil
	}
	return fmt.Errorf("rollup of %s: no %q/%q series to subtract from", d.ID, name, channel)
}
