package analytics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
)

// An instance that did not give the numbers (a restart, another
// instance) finds them in the store, more than one look-up's worth, and
// gives none twice: the same 1,100 people, folded by two instances, are
// 1,100 people.
func TestActivityNumbersFromAnotherInstance(t *testing.T) {
	start := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	e := apptest.New(t, start)
	const people = 1100
	track := func(round int) {
		t.Helper()
		for from := 0; from < people; from += 100 {
			var ins []timeline.TrackInput
			for p := from; p < from+100; p++ {
				at := start.Add(-time.Duration(round*24+p%20) * time.Hour)
				ins = append(ins, timeline.TrackInput{MessageID: fmt.Sprintf("r%d-p%d", round, p), Identifiers: []identity.Identifier{{Type: "anonymousId", Value: fmt.Sprintf("a%d", p)}}, Name: "page_viewed", OccurredAt: &at})
			}
			if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", ins); err != nil {
				t.Fatal(err)
			}
		}
	}
	one := e.Services.Analytics
	track(0)
	if err := one.Roll(e.Ctx, e.Store, time.Now(), []string{"ws1"}, false); err != nil {
		t.Fatal(err)
	}
	track(1)
	other := analytics.New(analytics.Deps{Now: func() time.Time { return start }})
	if err := other.Roll(e.Ctx, e.Store, time.Now(), []string{"ws1"}, false); err != nil {
		t.Fatalf("a second instance's fold: %v", err)
	}
	for _, an := range []*analytics.Service{one, other} {
		v, err := an.ActiveProfiles(e.Ctx, e.Tenant, analytics.SeriesQuery{Since: start.Add(-4 * 24 * time.Hour), Until: start, Interval: analytics.Day})
		if err != nil {
			t.Fatal(err)
		}
		if v.Total != people {
			t.Fatalf("%d people active, want %d", v.Total, people)
		}
	}
}
