package segment_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/tools/seed"
)

// TestFigures loads the demo workspace (1,000 profiles, ~25,000 events) and
// reports: preview time (features computed from events, then maintained),
// segment build time, and track throughput with N active segments. It
// asserts nothing about speed. About a minute (creating 50 segments over
// the demo data): run with HALO_SEGMENT_FIGURES=1 go test -v -run Figures.
func TestFigures(t *testing.T) {
	if os.Getenv("HALO_SEGMENT_FIGURES") == "" {
		t.Skip("set HALO_SEGMENT_FIGURES=1 to measure")
	}
	e := newEnv(t)
	now := time.Now().UTC()
	if _, err := seed.Load(e.Ctx, e.Store, "ws1", seed.Options{Seed: 1, Now: now.Truncate(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Set(now)
	rl := func(i int) rule.Rule {
		return rule.Rule{And: []rule.Rule{
			{Event: &rule.EventCond{Name: "order_completed", Where: []rule.PropertyCond{{Key: "revenue", Op: rule.GT, Value: float64(i)}},
				Count: &rule.CountCond{Op: rule.GTE, Value: 1}, Window: &rule.Window{Last: &rule.Last{Amount: 30 + i, Unit: rule.Days}}}},
			{Not: &rule.Rule{LastEvent: &rule.InactivityCond{Name: "page_viewed", NotWithin: rule.Last{Amount: 14, Unit: rule.Days}}}},
		}}
	}
	t0 := time.Now()
	n, _, err := e.seg.Preview(e.Ctx, e.Tenant, rl(0), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("preview over the demo data, features from events: %v (%d match)", time.Since(t0).Round(time.Millisecond), n)
	t0 = time.Now()
	s0, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "s0", Rule: ptr(rl(0))})
	if err != nil {
		t.Fatal(err)
	}
	size, _ := segment.Size(e.Ctx, e.Tenant, s0.ID)
	t.Logf("createSegment (backfill + build): %v (%d members)", time.Since(t0).Round(time.Millisecond), size)
	t0 = time.Now()
	n2, _, err := e.seg.Preview(e.Ctx, e.Tenant, rl(0), now)
	if err != nil || n2 != n {
		t.Fatalf("preview with maintained features: %d vs %d (%v)", n2, n, err)
	}
	t.Logf("preview over the demo data, maintained features: %v", time.Since(t0).Round(time.Millisecond))

	throughput := func(label string) {
		const events = 1000
		in := make([]timeline.TrackInput, 0, 100)
		t0 := time.Now()
		for i := 0; i < events; i++ {
			in = append(in, timeline.TrackInput{MessageID: fmt.Sprintf("%s-%d", label, i), Identifiers: anon(fmt.Sprintf("bench-%d", i%50)),
				Name: "order_completed", Properties: map[string]any{"revenue": float64(i % 100)}})
			if len(in) == cap(in) {
				if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "bench", "inputs", in); err != nil {
					t.Fatal(err)
				}
				in = in[:0]
			}
		}
		d := time.Since(t0)
		t.Logf("track throughput (%s, batches of 100, 50 profiles): %.0f events/s", label, events/d.Seconds())
	}
	throughput("1 segment")
	for i := 1; i < 50; i++ {
		if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: fmt.Sprint("s", i), Rule: ptr(rl(i))}); err != nil {
			t.Fatal(err)
		}
	}
	throughput("50 segments")
	t0 = time.Now()
	for i := 0; i < 200; i++ {
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "bench", "input", []timeline.TrackInput{{MessageID: fmt.Sprint("single-", i),
			Identifiers: anon(fmt.Sprintf("bench-%d", i%50)), Name: "order_completed", Properties: map[string]any{"revenue": 10.0}}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("track one event per call, 50 segments: %.0f events/s", 200/time.Since(t0).Seconds())
}

func ptr(r rule.Rule) *rule.Rule { return &r }
