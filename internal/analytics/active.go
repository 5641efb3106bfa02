package analytics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// The marks first (a mark is dropped only after its profiles' entries
	// are rewritten), and again after: a move that began meanwhile may
	// have shown its events both in their old owner's entries and under
	// the new one in the tail, so the read is made again.
	all, err := readMarks(ctx, tn)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		out, err := s.activeOnce(ctx, tn, sp, all)
		if err != nil {
			return nil, err
		}
		after, err := readMarks(ctx, tn)
		if err != nil {
			return nil, err
		}
		if attempt == 2 || !newMarks(all, after) {
			return out, nil
		}
		all = after
	}
}

// newMarks says whether after holds a mark before does not.
func newMarks(before, after []move) bool {
	seen := make(map[string]bool, len(before))
	for _, m := range before {
		seen[m.ID] = true
	}
	for _, m := range after {
		if !seen[m.ID] {
			return true
		}
	}
	return false
}

// activeOnce is one read of ActiveProfiles, the marks all read before.
func (s *Service) activeOnce(ctx context.Context, tn store.Tenant, sp Span, all []move) (*Actives, error) {
	var marked []string
	for _, m := range all {
		marked = append(marked, m.Profiles...)
	}
	cur, err := s.readCursor(ctx, tn)
	if err != nil {
		return nil, err
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
	nums, err := s.numbers(ctx, tn, marked)
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
	// The tail a batch at a time: right after an upgrade nothing is
	// folded, and it is every event.
	err = eachTail(ctx, tn, cur.Active, "", func(items []timeline.Stored) error {
		var owners []string
		for _, it := range items {
			if _, known := nums[it.ProfileID]; !known && it.Kind == timeline.KindEvent && !isMarked[it.ProfileID] && sp.Index(it.OccurredAt) >= 0 {
				owners = append(owners, it.ProfileID)
			}
		}
		found, err := s.numbers(ctx, tn, owners)
		if err != nil {
			return err
		}
		maps.Copy(nums, found)
		for _, it := range items {
			if b := sp.Index(it.OccurredAt); b >= 0 && it.Kind == timeline.KindEvent && !isMarked[it.ProfileID] {
				extra[pair{b, numberOf(it.ProfileID)}] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	w := walk{out: out}
	if len(skip) > 0 {
		w.skip = skip
	}
	if len(extra) > 0 {
		w.seen = func(b int, n uint32) { delete(extra, pair{b, n}) }
	}
	for _, d := range days {
		sp.quarters(d.Day, &w.at)
		if err := w.day(d.P); err != nil {
			return nil, fmt.Errorf("activity of %s: %w", d.ID, err)
		}
	}
	stamp := w.stamp
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

// walk counts the profiles of the activity days, day after day.
type walk struct {
	out  *Actives
	at   [quarters]int   // the bucket of each quarter hour of the day walked, -1 outside
	skip map[uint32]bool // numbers whose events are counted apart (nil: none)
	seen func(b int, n uint32)
	// stamp[n] is 1 + the last bucket profile n was counted in: the days
	// go forward, so a profile's buckets only grow.
	stamp []int32
}

// day counts the entries of one day's packed activity (activeDay.P),
// read in place: a 90-day series walks a million entries. It decodes
// unpack's format itself: through one reader shared with unpack, the
// walk took a quarter longer.
func (w *walk) day(p []byte) error {
	var n uint32
	for i := 0; i < len(p); {
		if c := p[i]; c < 0x80 {
			n += uint32(c)
			i++
		} else {
			d, k := binary.Uvarint(p[i:])
			if k <= 0 || d > 1<<31 {
				return errors.New("a number is unreadable")
			}
			n += uint32(d)
			i += k
		}
		if int(n) >= len(w.stamp) {
			w.stamp = slices.Grow(w.stamp, int(n)+1-len(w.stamp)+len(w.stamp)/2)
			w.stamp = w.stamp[:cap(w.stamp)]
		}
		skipped := w.skip != nil && w.skip[n]
		for {
			if i >= len(p) {
				return errors.New("an entry ends early")
			}
			c := p[i]
			i++
			q := int(c & 0x7f)
			if q >= quarters {
				return fmt.Errorf("quarter %d", q)
			}
			if b := w.at[q]; b >= 0 && !skipped && w.stamp[n] <= int32(b) {
				if w.stamp[n] == 0 {
					w.out.Total++
				}
				w.stamp[n] = int32(b) + 1
				w.out.Buckets[b]++
				if w.seen != nil {
					w.seen(b, n)
				}
			}
			if c&0x80 == 0 {
				break
			}
		}
	}
	return nil
}
