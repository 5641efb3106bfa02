package analytics_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// Funnels, retention grids and top values equal a from-scratch reading of
// the stored events: a random stream of events sent out of order, with
// replayed messageIds, merges (two visitors sharing a userId) and
// erasures, then random funnels (the furthest step found by trying every
// sequence of events, not the greedy walk), retention grids and top values
// compared with the same figures computed from timeline.ScanEvents.
func TestPathsAreTheStoredEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(seedOf(t, "PATHS_SEED"), 11))
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	e := apptest.New(t, now)
	an := e.Services.Analytics
	names := []string{"visit", "cart", "order", "refund"}
	plans := []any{"pro", "free", 3, true}
	type replay struct {
		in timeline.TrackInput
		p  int
	}
	var sent []replay
	gone := map[int]bool{} // erased visitors: their identifiers are suppressed
	for batch := range 12 {
		var (
			in  []timeline.TrackInput
			who []int
		)
		for range 40 {
			p := rng.IntN(30)
			if gone[p] {
				continue
			}
			ids := []identity.Identifier{{Type: "anonymousId", Value: fmt.Sprintf("v%d", p)}}
			if rng.IntN(10) == 0 {
				ids = append(ids, identity.Identifier{Type: "userId", Value: fmt.Sprintf("u%d", p/2)})
			}
			at := now.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
			props := map[string]any{"plan": plans[rng.IntN(len(plans))]}
			if rng.IntN(4) == 0 {
				props = map[string]any{"cart": map[string]any{"size": rng.IntN(3)}}
			}
			x := timeline.TrackInput{MessageID: fmt.Sprintf("m%d-%d", batch, len(in)), Identifiers: ids, Name: names[rng.IntN(len(names))], OccurredAt: &at, Properties: props}
			if len(sent) > 0 && rng.IntN(12) == 0 {
				// A replay of an earlier call: stored once.
				r := sent[rng.IntN(len(sent))]
				if gone[r.p] {
					continue
				}
				x, p = r.in, r.p
			}
			sent = append(sent, replay{x, p})
			in = append(in, x)
			who = append(who, p)
		}
		for {
			res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", in)
			if apperr.CodeOf(err) == apperr.Suppressed {
				// A visitor merged with an erased one: out, and again.
				x, _ := apperr.As(err)
				var i int
				if _, err := fmt.Sscanf(x.Field, "inputs[%d]", &i); err != nil {
					t.Fatalf("suppressed %q: %v", x.Field, err)
				}
				gone[who[i]] = true
				in, who = slices.Delete(in, i, i+1), slices.Delete(who, i, i+1)
				continue
			}
			if err != nil && apperr.CodeOf(err) != apperr.Conflict {
				t.Fatal(err)
			}
			if batch%4 == 3 && len(res) > 0 && res[0].Profile != nil {
				// Someone is erased: their events go.
				if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, res[0].Profile.ID, "test", "t"); err != nil {
					t.Fatal(err)
				}
				gone[who[0]] = true
			}
			break
		}
	}

	// The stored events, by profile, oldest first: the from-scratch side.
	type ev struct {
		name  string
		at    time.Time
		props map[string]any
	}
	people := map[string][]ev{}
	var all []ev
	err := timeline.ScanEvents(e.Ctx, e.Tenant, nil, func(x *timeline.Event) error {
		if x.Kind == timeline.KindEvent {
			people[x.ProfileID] = append(people[x.ProfileID], ev{x.Name, x.OccurredAt, x.Properties})
			all = append(all, ev{x.Name, x.OccurredAt, x.Properties})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events stored, %d people", len(all), len(people))
	filter := func() analytics.EventFilter {
		f := analytics.EventFilter{Name: names[rng.IntN(len(names))]}
		if rng.IntN(3) == 0 {
			f.Where = []rule.PropertyCond{{Key: "plan", Op: rule.EQ, Value: plans[rng.IntN(len(plans))]}}
		}
		return f
	}
	matches := func(f analytics.EventFilter, x ev) bool {
		return rule.FeatureOf(f.Name, f.Where).Matches(x.name, x.props)
	}

	var deep, returning int // rounds whose funnel's last step (of 2+) and grid's later periods have people
	for round := range 20 {
		since := now.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
		until := since.Add(time.Duration(1+rng.Int64N(int64(10*24*time.Hour))) + time.Hour)

		// A funnel: the furthest step by trying every sequence.
		q := analytics.FunnelQuery{Within: time.Duration(1+rng.IntN(96)) * time.Hour, Since: since, Until: until}
		for range 1 + rng.IntN(4) {
			q.Steps = append(q.Steps, filter())
		}
		got, err := an.Funnel(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int64, len(q.Steps))
		for _, evs := range people {
			best := 0
			var walk func(from, k int, first time.Time)
			walk = func(from, k int, first time.Time) {
				best = max(best, k)
				if k == len(q.Steps) {
					return
				}
				for j := from; j < len(evs); j++ {
					x := evs[j]
					if k == 0 && (x.at.Before(since) || !x.at.Before(until)) {
						continue
					}
					if k > 0 && x.at.Sub(first) > q.Within {
						break
					}
					if matches(q.Steps[k], x) {
						f := first
						if k == 0 {
							f = x.at
						}
						walk(j+1, k+1, f)
					}
				}
			}
			walk(0, 0, time.Time{})
			for k := range best {
				want[k]++
			}
		}
		for k := range want {
			if got.Steps[k].People != want[k] {
				t.Fatalf("round %d: funnel %+v from %s to %s within %s: step %d has %d people, from scratch %d", round, q.Steps, since, until, q.Within, k, got.Steps[k].People, want[k])
			}
		}

		if len(want) > 1 && want[len(want)-1] > 0 {
			deep++
		}

		// A retention grid, daily in a zone with DST.
		rq := analytics.RetentionQuery{SeriesQuery: analytics.SeriesQuery{Since: since, Until: until, Interval: analytics.Day, TimeZone: "America/New_York"}, Start: filter(), Return: filter(), Periods: 1 + rng.IntN(5)}
		grid, err := an.Retention(e.Ctx, e.Tenant, rq)
		if err != nil {
			t.Fatal(err)
		}
		wide, err := analytics.NewSpan(since, grid.Span.End().Add(time.Duration(rq.Periods)*25*time.Hour), analytics.Day, "America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		for c, row := range grid.Cohorts {
			var people0 int64
			returned := make([]int64, rq.Periods+1)
			for _, evs := range people {
				i := slices.IndexFunc(evs, func(x ev) bool { return grid.Span.Index(x.at) >= 0 && matches(rq.Start, x) })
				if i < 0 || grid.Span.Index(evs[i].at) != c {
					continue
				}
				people0++
				for k := range returned {
					if slices.ContainsFunc(evs, func(x ev) bool {
						return !x.at.Before(evs[i].at) && wide.Index(x.at) == c+k && matches(rq.Return, x)
					}) {
						returned[k]++
					}
				}
			}
			if slices.ContainsFunc(returned[1:], func(n int64) bool { return n > 0 }) {
				returning++
			}
			if row.People != people0 || !slices.Equal(row.Returned, returned) {
				t.Fatalf("round %d: retention %+v → %+v cohort %d: %d people returning %v, from scratch %d returning %v", round, rq.Start, rq.Return, c, row.People, row.Returned, people0, returned)
			}
		}

		// Top values of a property.
		name := names[rng.IntN(len(names))]
		prop := []string{"plan", "cart.size", "cart"}[rng.IntN(3)]
		tv, err := an.TopValues(e.Ctx, e.Tenant, analytics.TopValuesQuery{Event: name, Property: prop, Limit: 2, Since: since, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int64{}
		var events, missing int64
		for _, x := range all {
			if x.name != name || x.at.Before(since) || !x.at.Before(until) {
				continue
			}
			events++
			v, ok := rule.Lookup(x.props, prop)
			if !ok || v == nil {
				missing++
				continue
			}
			b, _ := json.Marshal(v)
			counts[string(b)]++
		}
		var listed int64
		for _, v := range tv.Values {
			b, _ := json.Marshal(v.Value)
			if counts[string(b)] != v.Count {
				t.Fatalf("round %d: %s.%s value %s counted %d, from scratch %d", round, name, prop, b, v.Count, counts[string(b)])
			}
			listed += v.Count
		}
		if tv.Events != events || tv.Missing != missing || tv.Distinct != len(counts) || listed+tv.Other+missing != events {
			t.Fatalf("round %d: %s.%s: %+v; from scratch %d events, %d missing, %d values %v", round, name, prop, tv, events, missing, len(counts), counts)
		}
	}
	t.Logf("%d funnels with people at a later step, %d cohorts with people returning after their first period", deep, returning)
	if deep == 0 || returning == 0 {
		t.Fatal("the stream tested no conversion or no return: make it denser")
	}
}
