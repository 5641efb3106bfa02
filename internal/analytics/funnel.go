package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// FunnelQuery asks how many people went through Steps in order.
type FunnelQuery struct {
	Steps []EventFilter
	// Within is the conversion window: every step within it of the
	// person's first.
	Within time.Duration
	// Since and Until bound the first step's event; later steps may fall
	// after Until (within the window).
	Since, Until time.Time
	// SegmentID, when set, keeps the segment's members now.
	SegmentID string
	// BreakdownTrait, when set, splits the people by the value of this
	// trait (a dot path) on their profile now.
	BreakdownTrait string
}

// Funnel is a funnel's figures.
type Funnel struct {
	Steps []FunnelStep
	// Groups, with a breakdown: the values with the most people at the
	// first step (at most MaxFunnelGroups), then one Other group.
	Groups []FunnelGroup
}

// FunnelStep is one step of a funnel.
type FunnelStep struct {
	// People reached this step.
	People int64
	// Median and P90 are the time from the previous step, over the people
	// who reached this one (zero at the first step).
	Median, P90 time.Duration
}

// FunnelGroup is one breakdown value's people per step.
type FunnelGroup struct {
	// Value is the trait's value (nil: profiles without it).
	Value  any
	Other  bool
	People []int64
}

// MaxFunnelGroups caps a breakdown before its Other group.
const MaxFunnelGroups = 20

// Funnel follows each person's events, oldest first: from every event of
// the first step in [Since, Until), each next step is the earliest
// matching event after the previous one and within the window of the
// first; a person counts at the furthest step any start reaches (the
// earliest such start timing the steps).
func (s *Service) Funnel(ctx context.Context, tn store.Tenant, q FunnelQuery) (*Funnel, error) {
	switch n := len(q.Steps); {
	case n == 0:
		return nil, apperr.Invalid("steps", "needs at least one step")
	case n > MaxSteps:
		return nil, apperr.Invalid("steps", "at most %d steps", MaxSteps)
	}
	if err := checkFilters("steps", q.Steps); err != nil {
		return nil, err
	}
	if q.Within <= 0 || q.Within > MaxWithin {
		return nil, apperr.Invalid("within", "must be more than 0 and at most 366 days")
	}
	if err := checkRange(q.Since, q.Until); err != nil {
		return nil, err
	}
	if q.BreakdownTrait != "" {
		if err := rule.ValidatePath(q.BreakdownTrait, "breakdownTrait"); err != nil {
			return nil, err
		}
	}
	var members map[string]bool
	if q.SegmentID != "" {
		var err error
		if members, err = segment.MemberSet(ctx, tn, q.SegmentID); err != nil {
			return nil, err
		}
	}
	n := len(q.Steps)
	out := &Funnel{Steps: make([]FunnelStep, n)}
	gaps := make([][]time.Duration, n) // gaps[k]: previous step → step k
	type reached struct {
		id    string
		steps int
	}
	var people []reached // with a breakdown
	since, until, within := nanos(q.Since), nanos(q.Until), q.Within.Nanoseconds()
	times := make([]int64, 0, n)
	best := make([]int64, 0, n)
	var after []int32 // after[k*len(evs)+j]: the first event from j on matching step k
	err := s.eachPerson(ctx, tn, q.Steps, q.Since, q.Until.Add(q.Within), func(pid string, evs []mark) error {
		if members != nil && !members[pid] {
			return nil
		}
		// One backward pass per step: each start then costs a look-up
		// per step, however many events a person has.
		m := len(evs)
		after = slices.Grow(after[:0], n*(m+1))[:n*(m+1)]
		for k := 1; k < n; k++ {
			row := after[k*(m+1) : (k+1)*(m+1)]
			row[m] = int32(m)
			for j := m - 1; j >= 0; j-- {
				row[j] = row[j+1]
				if evs[j].mask&(1<<k) != 0 {
					row[j] = int32(j)
				}
			}
		}
		best = best[:0]
		for i, e := range evs {
			if e.mask&1 == 0 || e.at < since || e.at >= until {
				continue
			}
			deadline := e.at + within
			times = append(times[:0], e.at)
			j := i + 1
			for k := 1; k < n; k++ {
				j = int(after[k*(m+1)+j])
				if j == m || evs[j].at > deadline {
					break
				}
				times = append(times, evs[j].at)
				j++
			}
			if len(times) > len(best) {
				best = append(best[:0], times...)
			}
			if len(best) == n {
				break
			}
		}
		for k := range best {
			out.Steps[k].People++
			if k > 0 {
				gaps[k] = append(gaps[k], time.Duration(best[k]-best[k-1]))
			}
		}
		if len(best) > 0 && q.BreakdownTrait != "" {
			people = append(people, reached{pid, len(best)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k := 1; k < n; k++ {
		g := gaps[k]
		slices.Sort(g)
		out.Steps[k].Median, out.Steps[k].P90 = percentile(g, 50), percentile(g, 90)
	}
	if q.BreakdownTrait == "" {
		return out, nil
	}
	// The breakdown: each person's trait now, 1,000 profiles a read.
	groups := map[string]*FunnelGroup{}
	for chunk := range slices.Chunk(people, store.MaxIn) {
		ids := make([]string, len(chunk))
		for i, p := range chunk {
			ids[i] = p.id
		}
		values, err := profile.TraitOf(ctx, tn, ids, q.BreakdownTrait)
		if err != nil {
			return nil, err
		}
		for _, p := range chunk {
			v := values[p.id]
			key := valueKey(v)
			g := groups[key]
			if g == nil {
				g = &FunnelGroup{Value: v, People: make([]int64, n)}
				groups[key] = g
			}
			for k := range p.steps {
				g.People[k]++
			}
		}
	}
	list := make([]*FunnelGroup, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	slices.SortFunc(list, func(a, b *FunnelGroup) int {
		if c := cmp.Compare(b.People[0], a.People[0]); c != 0 {
			return c
		}
		return cmp.Compare(valueKey(a.Value), valueKey(b.Value))
	})
	for i, g := range list {
		if i < MaxFunnelGroups {
			out.Groups = append(out.Groups, *g)
			continue
		}
		if i == MaxFunnelGroups {
			out.Groups = append(out.Groups, FunnelGroup{Other: true, People: make([]int64, n)})
		}
		for k, c := range g.People {
			out.Groups[MaxFunnelGroups].People[k] += c
		}
	}
	return out, nil
}

// valueKey is a value's identity in a breakdown or a top-values count:
// its JSON text (so 1 and "1" differ, and equal numbers agree).
func valueKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}
