package segment_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// benchRule is segment i of a mixed set: trait + event count, filtered
// event, inactivity, profile field or trait list, nesting. Event names are
// ev0..ev9, so one event touches about a tenth of the event segments.
func benchRule(i int, prev string) rule.Rule {
	name := fmt.Sprint("ev", i%10)
	days := func(n int) *rule.Window {
		return &rule.Window{Last: &rule.Last{Amount: n, Unit: rule.Days}}
	}
	switch i % 5 {
	case 0:
		return rule.Rule{And: []rule.Rule{
			{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
			{Event: &rule.EventCond{Name: name, Count: &rule.CountCond{Op: rule.GTE, Value: 2}, Window: days(7)}},
		}}
	case 1:
		return rule.Rule{Event: &rule.EventCond{Name: name, Where: []rule.PropertyCond{{Key: "amount", Op: rule.GT, Value: float64(i)}},
			Count: &rule.CountCond{Op: rule.GTE, Value: 1}, Window: days(30)}}
	case 2:
		return rule.Rule{Not: &rule.Rule{LastEvent: &rule.InactivityCond{Name: name, NotWithin: rule.Last{Amount: 14, Unit: rule.Days}}}}
	case 3:
		return rule.Rule{Or: []rule.Rule{
			{Trait: &rule.TraitCond{Key: "address.country", Op: rule.In, Values: []any{"FR", "DE"}}},
			{Profile: &rule.ProfileCond{Field: rule.EventCount, Op: rule.GTE, Value: int64(10 + i)}},
		}}
	default:
		return rule.Rule{And: []rule.Rule{
			{InSegment: prev},
			{Event: &rule.EventCond{Name: name, Count: &rule.CountCond{Op: rule.GTE, Value: 3}}},
		}}
	}
}

// benchTrack sets up profiles and segments and tracks events in batches
// of batch (trackBatch-equivalent Track calls).
func benchTrack(b *testing.B, segments, batch, warmup int) {
	e := newEnv(b)
	const profiles = 500
	rng := rand.New(rand.NewPCG(1, 2))
	plans := []string{"free", "pro", "team"}
	countries := []string{"FR", "DE", "US", "JP"}
	for i := 0; i < profiles; i++ {
		_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon(fmt.Sprint("p", i)),
			Traits: map[string]any{"plan": plans[i%3], "address": map[string]any{"country": countries[i%4]}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	prev := ""
	for i := 0; i < segments; i++ {
		s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: fmt.Sprint("s", i), Rule: ptr(benchRule(i, prev))})
		if err != nil {
			b.Fatal(err)
		}
		prev = s.ID
	}
	n := 0
	in := make([]timeline.TrackInput, 0, batch)
	send := func(k int) {
		in = in[:0]
		for j := 0; j < k; j++ {
			n++
			in = append(in, timeline.TrackInput{MessageID: fmt.Sprint("m", n), Identifiers: anon(fmt.Sprint("p", rng.IntN(profiles))),
				Name: fmt.Sprint("ev", rng.IntN(12)), Properties: map[string]any{"amount": float64(rng.IntN(100))}})
		}
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "bench", "inputs", in); err != nil {
			b.Fatal(err)
		}
	}
	// Warm up: most entries happen on the first events of each profile;
	// measure the steady state after them.
	for k := 0; k < warmup; k += 100 {
		send(100)
	}
	b.ResetTimer()
	t0 := time.Now()
	events := 0
	for b.Loop() {
		send(batch)
		events += batch
	}
	b.ReportMetric(float64(events)/time.Since(t0).Seconds(), "events/s")
}

// go test ./membership -run '^$' -bench Track -benchtime 20x
func BenchmarkTrack(b *testing.B) {
	b.Run("50segs/batch100", func(b *testing.B) { benchTrack(b, 50, 100, 0) })
	b.Run("50segs/single", func(b *testing.B) { benchTrack(b, 50, 1, 0) })
	b.Run("50segs/batch100/warm", func(b *testing.B) { benchTrack(b, 50, 100, 5000) })
	b.Run("50segs/single/warm", func(b *testing.B) { benchTrack(b, 50, 1, 5000) })
}
