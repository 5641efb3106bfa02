package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

const (
	// eraseLease is how long an erasure's lease on a workspace's rollups
	// lasts unrenewed; it is renewed while the erasure runs and freed when
	// it ends, so only a crashed one holds it that long (folding waits;
	// reads stay exact, from the stored events). The same erasure,
	// resumed, takes it back at once.
	eraseLease = time.Minute
	// leaseWait is how long an erasure waits for the lease, held by a
	// fold round (seconds) or another erasure.
	leaseWait = 2 * eraseLease
)

// EraseEvents is the timeline step of an erasure (privacy), rollups
// included: it deletes every timeline item of the profile
// (timeline.EraseEvents) and subtracts from the rollups the events among
// them that were folded, so that every figure still equals the stored
// events. It returns how many items it deleted.
//
// It holds the workspace's rollup lease, so no fold writes meanwhile: an
// event is then counted if and only if its id is at or below its day's
// Folded (folds go in id order, up to a horizon below which every item
// is stored, and the event was not deleted before). Each day it
// subtracts from records how far it subtracted (day.Erased), so a pass
// cut by a crash and resumed subtracts only what was folded since; the
// cursor lists those days (cursor.Erasing) until the events are deleted
// and the records removed, so that nothing of the person's activity
// outlives the erasure.
func (s *Service) EraseEvents(ctx context.Context, tn store.Tenant, erasureID, profileID string) (int, error) {
	sys, ws := tn.System(), tn.Workspace()
	token := "erasure:" + erasureID
	if err := s.waitLease(ctx, sys, ws, token); err != nil {
		return 0, err
	}
	defer s.release(context.WithoutCancel(ctx), sys, ws, token)
	stop := s.keep(ctx, sys, ws, token)
	defer stop()

	mark := erasureID + "/" + profileID
	if err := s.subtractErasure(ctx, tn, sys, token, mark, profileID); err != nil {
		return 0, err
	}
	if err := s.eraseActivity(ctx, tn, profileID); err != nil {
		return 0, err
	}
	n, err := timeline.EraseEvents(ctx, tn, profileID)
	if err != nil {
		return n, err
	}
	// The number goes last: a pass cut before this finds it again.
	if err := tn.C(Numbers).Delete(ctx, profileID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return n, fmt.Errorf("drop the profile's activity number: %w", err)
	}
	s.nums.forget(ws, profileID)
	return n, s.forgetErasing(ctx, tn, sys, ws, token, mark)
}

// eraseActivity takes the profile's entries off every activity day and
// its id off the marks of moves (its events are about to go; the marks'
// other profiles are still tidied).
func (s *Service) eraseActivity(ctx context.Context, tn store.Tenant, profileID string) error {
	all, err := readMarks(ctx, tn)
	if err != nil {
		return err
	}
	for _, m := range all {
		if !slices.Contains(m.Profiles, profileID) {
			continue
		}
		m.Profiles = slices.DeleteFunc(m.Profiles, func(id string) bool { return id == profileID })
		if len(m.Profiles) == 0 {
			err = tn.C(Moves).Delete(ctx, m.ID)
		} else {
			m.Version++
			err = tn.C(Moves).Replace(ctx, &m, m.Version-1)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("take an erased profile off the mark of a move: %w", err)
		}
	}
	nums, err := s.numbers(ctx, tn, []string{profileID})
	if err != nil {
		return err
	}
	n, ok := nums[profileID]
	if !ok {
		return nil // never folded
	}
	drop, err := everyDay(ctx, tn, map[uint32]bool{n: true})
	if err != nil {
		return err
	}
	// The erasure's lease is renewed while it runs (keep), so its bound
	// is the erasure's own wait for it.
	return writeActive(ctx, tn, nil, drop, time.Now().Add(leaseWait))
}

// erased is one of a person's events, where a day rollup counts it.
type erased struct {
	id, name, channel string
	q                 int
	props             map[string]any // for its order value (revenue.go)
}

// eventsByDay reads the profile's events (interactions are not counted
// anywhere) by UTC day.
func eventsByDay(ctx context.Context, tn store.Tenant, profileID string) (map[string][]erased, error) {
	byDay := map[string][]erased{}
	err := timeline.EventsOf(ctx, tn, profileID, func(e *timeline.Event) error {
		if e.Kind == timeline.KindEvent {
			d := dayID(e.OccurredAt)
			byDay[d] = append(byDay[d], erased{e.ID, e.Name, e.Channel, quarterOf(e.OccurredAt), e.Properties})
		}
		return nil
	})
	return byDay, err
}

// subtractErasure is EraseEvents' part before the deletion, the lease
// held (token): the profile's events by day, the days listed on the
// cursor under the erasure's mark, the subtraction, and the days' new
// versions on the cursor.
func (s *Service) subtractErasure(ctx context.Context, tn, sys store.Tenant, token, mark, profileID string) error {
	ws := tn.Workspace()
	byDay, err := eventsByDay(ctx, tn, profileID)
	if err != nil {
		return err
	}
	if err := s.noteErasing(ctx, sys, ws, token, mark, slices.Collect(maps.Keys(byDay))); err != nil {
		return err
	}
	var cur cursor
	if err := sys.C(Cursors).Get(ctx, ws, &cur); err != nil {
		return fmt.Errorf("read rollup cursor: %w", err)
	}
	written, err := subtract(ctx, tn, mark, cur.RevenueKey, byDay)
	if err != nil || len(written) == 0 {
		return err
	}
	return s.updateHeld(ctx, sys, ws, token, func(c *cursor) { c.record(written) })
}

// subtract takes off each day the events it had folded and this erasure
// (mark) has not taken off yet, and records how far it went. It returns
// the days written, with their versions.
func subtract(ctx context.Context, tn store.Tenant, mark, key string, byDay map[string][]erased) (map[string]int64, error) {
	written := map[string]int64{}
	for id, evs := range byDay {
		var d day
		err := tn.C(Rollups).Get(ctx, id, &d)
		if errors.Is(err, store.ErrNotFound) {
			continue // nothing of that day folded yet
		}
		if err != nil {
			return nil, fmt.Errorf("read rollup of %s: %w", id, err)
		}
		if d.RevenueKey != key {
			continue // left by a start over a crash cut: no read takes it
		}
		o := ordersOf(key)
		var rev [quarters]int64
		from := d.Erased[mark]
		for _, e := range evs {
			if e.id > from && e.id <= d.Folded {
				d.takeOff(ctx, e)
				if e.name == o.event {
					v, _ := agg.NumberAt(e.props, o.path)
					rev[e.q] += micros(v)
				}
			}
		}
		if err := d.addRevenue(&rev, -1); err != nil {
			return nil, err
		}
		if d.Erased == nil {
			d.Erased = map[string]string{}
		}
		d.Erased[mark] = d.Folded
		d.Version++
		if err := tn.C(Rollups).Replace(ctx, &d, d.Version-1); err != nil {
			return nil, fmt.Errorf("subtract erased events from the rollup of %s: %w", id, err)
		}
		written[id] = d.Version
	}
	return written, nil
}

// takeOff takes one event off the day; a series left with none goes. A
// count that is already zero (rollups that drifted from the events) is
// left at zero and logged: an erasure must not fail on it.
func (d *day) takeOff(ctx context.Context, e erased) {
	for i := range d.Series {
		s := &d.Series[i]
		if s.Name != e.name || s.Channel != e.channel {
			continue
		}
		c, err := s.counts()
		if err == nil && c[e.q] > 0 {
			c[e.q]--
			s.set(c)
			if s.Total == 0 {
				d.Series = append(d.Series[:i], d.Series[i+1:]...)
			}
			return
		}
		break
	}
	slog.WarnContext(ctx, "analytics: an erased event was not in its day's rollup", "day", d.ID, "name", e.name)
}

// noteErasing adds days to those the erasure's mark is recorded on.
func (s *Service) noteErasing(ctx context.Context, sys store.Tenant, ws, token, mark string, days []string) error {
	return s.updateHeld(ctx, sys, ws, token, func(c *cursor) {
		if c.Erasing == nil {
			c.Erasing = map[string][]string{}
		}
		for _, d := range days {
			if !slices.Contains(c.Erasing[mark], d) {
				c.Erasing[mark] = append(c.Erasing[mark], d)
			}
		}
	})
}

// forgetErasing removes the erasure's mark from every day it was
// recorded on, then from the cursor.
func (s *Service) forgetErasing(ctx context.Context, tn, sys store.Tenant, ws, token, mark string) error {
	var cur cursor
	if err := sys.C(Cursors).Get(ctx, ws, &cur); err != nil {
		return fmt.Errorf("read rollup cursor: %w", err)
	}
	written := map[string]int64{}
	for _, id := range cur.Erasing[mark] {
		var d day
		err := tn.C(Rollups).Get(ctx, id, &d)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read rollup of %s: %w", id, err)
		}
		if _, ok := d.Erased[mark]; !ok {
			continue
		}
		delete(d.Erased, mark)
		d.Version++
		if err := tn.C(Rollups).Replace(ctx, &d, d.Version-1); err != nil {
			return fmt.Errorf("clear the erasure's mark on the rollup of %s: %w", id, err)
		}
		written[id] = d.Version
	}
	return s.updateHeld(ctx, sys, ws, token, func(c *cursor) {
		delete(c.Erasing, mark)
		c.record(written)
	})
}

// waitLease takes ws's rollup lease for an erasure's token, waiting for
// a fold round (or another erasure) to end.
func (s *Service) waitLease(ctx context.Context, sys store.Tenant, ws, token string) error {
	deadline := time.Now().Add(leaseWait)
	for {
		cur, err := s.lease(ctx, sys, ws, token, eraseLease)
		if err != nil || cur != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the rollups of workspace %s stayed busy for %s", ws, leaseWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// keep renews token's lease every third of eraseLease until the
// returned stop is called.
func (s *Service) keep(ctx context.Context, sys store.Tenant, ws, token string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(eraseLease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if ok, err := s.renew(context.WithoutCancel(ctx), sys, ws, token, eraseLease); err != nil || !ok {
					slog.WarnContext(ctx, "analytics: renew the erasure's rollup lease", "workspace", ws, "held", ok, "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}
