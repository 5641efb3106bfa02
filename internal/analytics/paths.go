package analytics

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Funnels, retention and top values follow people through their events:
// they read the stored events by profile, oldest first (one walk of the
// events index, keeping one person's events at a time), so every figure
// is of the events as stored now (merged people's events under the
// survivor, erased people's gone).

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

// eachPerson calls fn with each profile's events (not interactions) of
// names, oldest first. The slice is reused: fn must not keep it.
func eachPerson(ctx context.Context, tn store.Tenant, names map[string]bool, fn func(profileID string, evs []*timeline.Event) error) error {
	var (
		cur string
		evs []*timeline.Event
	)
	err := timeline.ScanEvents(ctx, tn, func(n string) bool { return names[n] }, func(e *timeline.Event) error {
		if e.Kind != timeline.KindEvent {
			return nil
		}
		if e.ProfileID != cur && len(evs) > 0 {
			if err := fn(cur, evs); err != nil {
				return err
			}
			evs = evs[:0]
		}
		cur = e.ProfileID
		evs = append(evs, e)
		return nil
	})
	if err == nil && len(evs) > 0 {
		err = fn(cur, evs)
	}
	return err
}

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

// sortedCopy sorts ds in place and returns it (percentiles need order).
func sortedCopy(ds []time.Duration) []time.Duration {
	slices.Sort(ds)
	return ds
}
