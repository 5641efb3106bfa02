package analytics

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Funnels, retention and top values follow people through their events:
// one walk of the stored events in storage order (eachPerson), so every
// figure is of the events as stored now (merged people's events under
// the survivor, erased people's gone).

// EventFilter picks events: a name and property filters, as an event node
// of a segment rule has them.
type EventFilter struct {
	Name  string
	Where []rule.PropertyCond
}

func (f EventFilter) feature() rule.Feature { return rule.FeatureOf(f.Name, f.Where) }

// MaxSteps caps a funnel.
const MaxSteps = 10

// MaxWithin caps a funnel's conversion window.
const MaxWithin = 366 * 24 * time.Hour

// mark is one event of a person as a funnel or a grid needs it: when
// (Unix nanoseconds), which filters it matches (bit i: filter i), and
// whose it is (an index into the walk's people).
type mark struct {
	at     int64
	mask   uint32
	person int32
}

func (m mark) time() time.Time { return time.Unix(0, m.at).UTC() }

// marks is what one part of a walk keeps: its people in the order met,
// and their matching events in storage order.
type marks struct {
	ids    map[string]int32
	people []string
	marks  []mark
}

func (ms *marks) add(pid string, m mark) {
	i, ok := ms.ids[pid]
	if !ok {
		i = int32(len(ms.people))
		ms.ids[pid] = i
		ms.people = append(ms.people, pid)
	}
	m.person = i
	ms.marks = append(ms.marks, m)
}

// eachPerson walks the stored events (not interactions) of the filters'
// names once, in storage order (a sequential read: the events index by
// profile would read the rows at random; walkParts spans side by side),
// keeping the events in [from, to) some filter matches, then calls fn
// with each person's, oldest first (events at the same instant in the
// order stored, as the timeline orders them). Memory: 16 bytes per
// matching event and one entry per person.
func (s *Service) eachPerson(ctx context.Context, tn store.Tenant, filters []EventFilter, from, to time.Time, fn func(profileID string, marks []mark) error) error {
	release, err := s.walk(ctx)
	if err != nil {
		return err
	}
	defer release()
	feats := make([]rule.Feature, len(filters))
	names, props := map[string]bool{}, map[string]bool{}
	for i, f := range filters {
		feats[i], names[f.Name] = f.feature(), true
		props[f.Name] = props[f.Name] || len(f.Where) > 0
	}
	parts := make([]marks, walkParts())
	for i := range parts {
		parts[i].ids = map[string]int32{}
	}
	keep := func(n []byte) bool { return names[string(n)] }
	err = timeline.EachStored(ctx, tn, len(parts), keep, func(part int, it *timeline.Item) error {
		if it.Kind != timeline.KindEvent || it.OccurredAt.Before(from) || !it.OccurredAt.Before(to) {
			return nil
		}
		var p map[string]any
		if props[it.Name] {
			var err error
			if p, err = it.Properties(); err != nil {
				return err
			}
		}
		var m uint32
		for i := range feats {
			if feats[i].Matches(it.Name, p) {
				m |= 1 << i
			}
		}
		if m != 0 {
			parts[part].add(it.ProfileID, mark{at: it.OccurredAt.UnixNano(), mask: m})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// One list in storage order (the parts in theirs), people numbered
	// across the parts, then each person's oldest first: a stable sort
	// keeps events of one instant in storage order.
	all := marks{ids: map[string]int32{}}
	n := 0
	for _, p := range parts {
		n += len(p.marks)
	}
	all.marks = make([]mark, 0, n)
	for i := range parts {
		p := &parts[i]
		remap := make([]int32, len(p.people))
		for j, pid := range p.people {
			g, ok := all.ids[pid]
			if !ok {
				g = int32(len(all.people))
				all.ids[pid] = g
				all.people = append(all.people, pid)
			}
			remap[j] = g
		}
		for _, m := range p.marks {
			m.person = remap[m.person]
			all.marks = append(all.marks, m)
		}
		*p = marks{} // the part's memory goes
	}
	all.ids = nil
	slices.SortStableFunc(all.marks, func(a, b mark) int {
		if c := cmp.Compare(a.person, b.person); c != 0 {
			return c
		}
		return cmp.Compare(a.at, b.at)
	})
	for i := 0; i < len(all.marks); {
		j := i + 1
		for j < len(all.marks) && all.marks[j].person == all.marks[i].person {
			j++
		}
		if err := fn(all.people[all.marks[i].person], all.marks[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// MaxWalks is how many walks of the events (funnels, grids, top values)
// one instance runs at once; the others wait their turn.
const MaxWalks = 2

// walk takes a turn to walk the events, and returns its release.
func (s *Service) walk(ctx context.Context) (func(), error) {
	select {
	case s.walks <- struct{}{}:
		return func() { <-s.walks }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nanos is t in Unix nanoseconds, clamped to what they can hold (years
// 1678 to 2262): "until the year 9999" means "until any event".
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// walkParts is how many spans of the events a walk reads side by side:
// one per core, at most 4.
func walkParts() int { return min(max(runtime.GOMAXPROCS(0), 1), 4) }

// checkFilters validates filters, naming field[i] in errors.
func checkFilters(field string, fs []EventFilter) error {
	for i, f := range fs {
		if err := rule.ValidateFilter(f.Name, f.Where, fmt.Sprintf("%s[%d]", field, i)); err != nil {
			return err
		}
	}
	return nil
}

// checkRange refuses an empty or reversed range.
func checkRange(since, until time.Time) error {
	if !since.Before(until) {
		return apperr.Invalid("since", "must be before until")
	}
	return nil
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
