package analytics

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// TopValuesQuery asks for the most frequent values of an event property.
type TopValuesQuery struct {
	Event, Property string
	Limit           int
	Since, Until    time.Time
}

// Limits of topValues: the values listed, and the distinct values one
// request may count (its memory).
const (
	MaxTopValues   = 100
	MaxDistinctTop = 200_000
)

// TopValues is a property's value counts over the events of one name.
type TopValues struct {
	// Events of the name in the range; Missing of them lack the property
	// (or hold null).
	Events, Missing int64
	// Values are the most frequent, most first (ties by value); Other adds
	// up the events of every value not listed.
	Values []ValueCount
	Other  int64
	// Distinct is how many different values there were.
	Distinct int
}

// ValueCount is one value and how many events hold it.
type ValueCount struct {
	Value any
	Count int64
}

// TopValues counts the values of Property (a dot path) over the events
// named Event that occurred in [Since, Until). A list value counts once as
// a whole. More than MaxDistinctTop different values is refused rather
// than answered inexactly.
func (s *Service) TopValues(ctx context.Context, tn store.Tenant, q TopValuesQuery) (*TopValues, error) {
	if err := rule.ValidateFilter(q.Event, nil, "event"); err != nil {
		if e, ok := apperr.As(err); ok && e.Field == "event.name" {
			return nil, apperr.Invalid("event", "%s", e.Message)
		}
		return nil, err
	}
	if err := rule.ValidatePath(q.Property, "property"); err != nil {
		return nil, err
	}
	if q.Limit < 1 || q.Limit > MaxTopValues {
		return nil, apperr.Invalid("limit", "must be between 1 and %d", MaxTopValues)
	}
	if err := checkRange(q.Since, q.Until); err != nil {
		return nil, err
	}
	release, err := s.walk(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	out := &TopValues{}
	type tally struct {
		value any
		n     int64
	}
	type part struct {
		counts          map[string]*tally
		events, missing int64
	}
	parts := make([]part, walkParts())
	for i := range parts {
		parts[i].counts = map[string]*tally{}
	}
	keep := func(n []byte) bool { return string(n) == q.Event }
	err = timeline.EachStored(ctx, tn, len(parts), keep, func(i int, it *timeline.Item) error {
		if it.Kind != timeline.KindEvent || it.OccurredAt.Before(q.Since) || !it.OccurredAt.Before(q.Until) {
			return nil
		}
		pt := &parts[i]
		pt.events++
		props, err := it.Properties()
		if err != nil {
			return err
		}
		v, ok := rule.Lookup(props, q.Property)
		if !ok || v == nil {
			pt.missing++
			return nil
		}
		k := valueKey(v)
		t := pt.counts[k]
		if t == nil {
			if len(pt.counts) == MaxDistinctTop {
				return tooMany()
			}
			t = &tally{value: v}
			pt.counts[k] = t
		}
		t.n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	counts := parts[0].counts
	for i, pt := range parts {
		out.Events += pt.events
		out.Missing += pt.missing
		if i == 0 {
			continue
		}
		for k, t := range pt.counts {
			if c := counts[k]; c != nil {
				c.n += t.n
				continue
			}
			if len(counts) == MaxDistinctTop {
				return nil, tooMany()
			}
			counts[k] = t
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(counts[b].n, counts[a].n); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	out.Distinct = len(keys)
	for i, k := range keys {
		if i < q.Limit {
			out.Values = append(out.Values, ValueCount{Value: counts[k].value, Count: counts[k].n})
		} else {
			out.Other += counts[k].n
		}
	}
	return out, nil
}

// tooMany refuses a top-values count past MaxDistinctTop values.
func tooMany() error {
	return apperr.Invalid("property", "has more than %d different values in the range: narrow since and until", MaxDistinctTop)
}
