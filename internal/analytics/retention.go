package analytics

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// RetentionQuery asks for a cohort grid: people by the bucket of their
// first Start event in the span, then how many of them did a Return event
// 0, 1, … Periods buckets later.
type RetentionQuery struct {
	SeriesQuery
	Start, Return EventFilter
	Periods       int
}

// MaxPeriods caps a retention grid's width.
const MaxPeriods = 100

// Retention is a cohort grid.
type Retention struct {
	// Span holds the cohorts' buckets.
	Span    Span
	Cohorts []Cohort
}

// Cohort is one row of the grid.
type Cohort struct {
	// People did their first Start event of the span in this bucket.
	People int64
	// Returned[k] of them did a Return event k buckets later (0: in the
	// cohort's own bucket, at or after their Start event), for k = 0 …
	// Periods.
	Returned []int64
}

// Retention reads each person's events once, oldest first.
func (s *Service) Retention(ctx context.Context, tn store.Tenant, q RetentionQuery) (*Retention, error) {
	if err := rule.ValidateFilter(q.Start.Name, q.Start.Where, "start"); err != nil {
		return nil, err
	}
	if err := rule.ValidateFilter(q.Return.Name, q.Return.Where, "returning"); err != nil {
		return nil, err
	}
	if q.Periods < 1 || q.Periods > MaxPeriods {
		return nil, apperr.Invalid("periods", "must be between 1 and %d", MaxPeriods)
	}
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	// The grid's edges reach Periods buckets past the last cohort's.
	edges := Span{Loc: sp.Loc, Bounds: append([]time.Time(nil), sp.Bounds...)}
	for range q.Periods {
		b := edges.End()
		edges.Bounds = append(edges.Bounds, next(b, q.Interval, sp.Loc))
	}
	out := &Retention{Span: sp, Cohorts: make([]Cohort, sp.Len())}
	for i := range out.Cohorts {
		out.Cohorts[i].Returned = make([]int64, q.Periods+1)
	}
	seen := make([]bool, q.Periods+1)
	// Filter 0 is Start, filter 1 Return.
	err = s.eachPerson(ctx, tn, []EventFilter{q.Start, q.Return}, sp.Start(), edges.End(), func(_ string, evs []mark) error {
		c, first := -1, int64(0)
		for _, e := range evs {
			if e.mask&1 != 0 {
				if i := sp.Index(e.time()); i >= 0 {
					c, first = i, e.at
					break
				}
			}
		}
		if c < 0 {
			return nil
		}
		out.Cohorts[c].People++
		clear(seen)
		for _, e := range evs {
			// From the first Start's instant on: the Start event itself
			// returns in period 0 when Return picks it.
			if e.at < first || e.mask&2 == 0 {
				continue
			}
			k := edges.Index(e.time()) - c
			if k < 0 || k > q.Periods || seen[k] {
				continue
			}
			seen[k] = true
			out.Cohorts[c].Returned[k]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
