package timeline_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
)

// TestReadBeforeAllWindows: the merged read of several timelines, which
// looks back a day, then 8, 64 and 512 days, then over the rest, pages
// through items spread over three years (and a few in the future, and
// many within one millisecond) exactly as merging each timeline read
// alone does, for page sizes that end inside and across its windows.
func TestReadBeforeAllWindows(t *testing.T) {
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	e := apptest.New(t, start)
	s := e.Services
	var people []string
	var inputs []timeline.TrackInput
	for p := range 7 {
		email := fmt.Sprintf("w%d@example.com", p)
		for j := range 30 {
			// Spread from 3 years back to a day ahead; every 5th shares
			// one instant with others.
			at := start.Add(24*time.Hour - time.Duration((p*7919+j*104729)%(3*365*24))*time.Hour)
			if j%5 == 0 {
				at = start.Add(-40 * 24 * time.Hour)
			}
			inputs = append(inputs, timeline.TrackInput{MessageID: fmt.Sprint(p, "-", j), Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}},
				Name: "page_viewed", OccurredAt: &at})
		}
	}
	res, err := s.Ingest.TrackEvents(e.Ctx, e.Tenant, "test", "inputs", inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(res); i += 30 {
		people = append(people, res[i].Event.ProfileID)
	}
	// The reference: each timeline read whole (a person's own pages),
	// merged, newest first.
	var want []string
	for _, p := range people {
		page, err := timeline.Read(e.Ctx, e.Tenant, p, 100, "", timeline.Filter{})
		if err != nil || page.HasNext {
			t.Fatalf("timeline of %s: %v (more: %v)", p, err, page.HasNext)
		}
		for _, ev := range page.Items {
			want = append(want, ev.OccurredAt.UTC().Format("2006-01-02T15:04:05.000")+" "+ev.ID)
		}
	}
	slices.SortFunc(want, func(a, b string) int { return -strings.Compare(a, b) })
	if len(want) != 7*30 {
		t.Fatalf("%d items stored", len(want))
	}
	for _, size := range []int{1, 7, 20, 64} {
		var got []string
		var after *timeline.Position
		for range 1000 {
			page, err := timeline.ReadBeforeAll(e.Ctx, e.Tenant, people, after, size, nil, start)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page {
				got = append(got, ev.OccurredAt.UTC().Format("2006-01-02T15:04:05.000")+" "+ev.ID)
			}
			if len(page) < size {
				break
			}
			last := page[len(page)-1]
			after = &timeline.Position{At: last.OccurredAt, ID: last.ID}
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %d items, want %d; first difference at %d", size, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
