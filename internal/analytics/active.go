package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Actives is an active-profiles series.
type Actives struct {
	Span Span
	// Total is the profiles active at least once in the span.
	Total int64
	// Buckets[i] is the profiles active in bucket i.
	Buckets []int64
}

// tempBase is where the numbers of profiles not numbered yet begin in a
// read: above every number the roller gives.
const tempBase = 1 << 31

// ActiveProfiles counts, per bucket, the profiles with at least one
// stored event that occurred in it, each under the profile that holds
// the event now: the activity days (activity.go), the items stored since
// their last fold, and the stored events of profiles a move has marked
// (moves.go). Exact as of the read.
func (s *Service) ActiveProfiles(ctx context.Context, tn store.Tenant, q SeriesQuery) (*Actives, error) {
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	// The marks first: a profile marked after this read has its entries
	// rewritten only after its mark is read by a later one.
	all, err := readMarks(ctx, tn)
	if err != nil {
		return nil, err
	}
	var marked []string
	for _, m := range all {
		marked = append(marked, m.Profiles...)
	}
	var cur cursor
	if err := tn.System().C(Cursors).Get(ctx, tn.Workspace(), &cur); errors.Is(err, store.ErrNotFound) {
		s.want(tn.Workspace())
	} else if err != nil {
		return nil, fmt.Errorf("read rollup cursor: %w", err)
	}
	var days []activeDay
	err = tn.C(Activity).Each(ctx, store.Query{Index: ActivityByDay, Range: &store.Bound{Gte: dayStart(sp.Start()), Lt: sp.End()}}, func(raw bson.Raw) error {
		var d activeDay
		d.ID, _ = raw.Lookup("_id").StringValueOK()
		ms, ok := raw.Lookup("day").DateTimeOK()
		if !ok {
			return fmt.Errorf("activity %s has no day", d.ID)
		}
		d.Day = time.UnixMilli(ms).UTC()
		_, d.P, _ = raw.Lookup("p").BinaryOK()
		days = append(days, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}

	// What the days do not hold: the marked profiles' events, and the
	// events stored since the last fold of the others.
	type pair struct {
		b int
		n uint32
	}
	extra := map[pair]bool{}
	var tail []timeline.Stored
	after := cur.Active
	for {
		items, err := timeline.StoredAfter(ctx, tn, after, time.Time{}, foldBatch)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.Kind == timeline.KindEvent && sp.Index(it.OccurredAt) >= 0 {
				tail = append(tail, it)
			}
		}
		if len(items) < foldBatch {
			break
		}
		after = items[len(items)-1].ID
	}
	owners := append([]string(nil), marked...)
	for _, it := range tail {
		owners = append(owners, it.ProfileID)
	}
	nums, err := s.numbers(ctx, tn, owners)
	if err != nil {
		return nil, err
	}
	temp := uint32(tempBase)
	numberOf := func(id string) uint32 {
		n, ok := nums[id]
		if !ok {
			n, temp = temp, temp+1
			nums[id] = n
		}
		return n
	}
	skip := map[uint32]bool{}
	isMarked := map[string]bool{}
	for _, id := range marked {
		isMarked[id] = true
		if n, ok := nums[id]; ok {
			skip[n] = true
		}
	}
	for _, it := range tail {
		if !isMarked[it.ProfileID] {
			extra[pair{sp.Index(it.OccurredAt), numberOf(it.ProfileID)}] = true
		}
	}
	for id := range isMarked {
		err := timeline.StoredOf(ctx, tn, id, func(it timeline.Stored) error {
			if b := sp.Index(it.OccurredAt); b >= 0 && it.Kind == timeline.KindEvent {
				extra[pair{b, numberOf(id)}] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	out := &Actives{Span: sp, Buckets: make([]int64, sp.Len())}
	// stamp[n] is 1 + the last bucket profile n was counted in: the days
	// go forward, so a profile's buckets only grow.
	var stamp []int32
	var at [quarters]int
	for _, d := range days {
		sp.quarters(d.Day, &at)
		err := unpack(d.P, func(e entry) {
			if skip[e.n] {
				return
			}
			if int(e.n) >= len(stamp) {
				stamp = append(stamp, make([]int32, int(e.n)+1-len(stamp)+len(stamp)/2)...)
			}
			for q, ok := e.m.first(); ok; q, ok = e.m.next(q + 1) {
				b := at[q]
				if b < 0 || stamp[e.n] > int32(b) {
					continue
				}
				if stamp[e.n] == 0 {
					out.Total++
				}
				stamp[e.n] = int32(b) + 1
				out.Buckets[b]++
				if len(extra) > 0 {
					delete(extra, pair{b, e.n})
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("activity of %s: %w", d.ID, err)
		}
	}
	counted := map[uint32]bool{}
	for p := range extra {
		out.Buckets[p.b]++
		if counted[p.n] || (int(p.n) < len(stamp) && stamp[p.n] > 0) {
			continue
		}
		counted[p.n] = true
		out.Total++
	}
	return out, nil
}
