package membership_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/halo-cdp/halo/identity"
	"github.com/halo-cdp/halo/membership"
	"github.com/halo-cdp/halo/segment"
	"github.com/halo-cdp/halo/timeline"
)

// benchRule is segment i of a mixed set: trait + event count, filtered
// event, inactivity, profile field or trait list, nesting. Event names are
// ev0..ev9, so one event touches about a tenth of the event segments.
func benchRule(i int, prev string) segment.Rule {
	name := fmt.Sprint("ev", i%10)
	days := func(n int) *segment.Window {
		return &segment.Window{Last: &segment.Last{Amount: n, Unit: segment.Days}}
	}
	switch i % 5 {
	case 0:
		return segment.Rule{And: []segment.Rule{
			{Trait: &segment.TraitCond{Key: "plan", Op: segment.EQ, Value: "pro"}},
			{Event: &segment.EventCond{Name: name, Count: &segment.CountCond{Op: segment.GTE, Value: 2}, Window: days(7)}},
		}}
	case 1:
		return segment.Rule{Event: &segment.EventCond{Name: name, Where: []segment.PropertyCond{{Key: "amount", Op: segment.GT, Value: float64(i)}},
			Count: &segment.CountCond{Op: segment.GTE, Value: 1}, Window: days(30)}}
	case 2:
		return segment.Rule{Not: &segment.Rule{LastEvent: &segment.InactivityCond{Name: name, NotWithin: segment.Last{Amount: 14, Unit: segment.Days}}}}
	case 3:
		return segment.Rule{Or: []segment.Rule{
			{Trait: &segment.TraitCond{Key: "address.country", Op: segment.In, Values: []any{"FR", "DE"}}},
			{Profile: &segment.ProfileCond{Field: segment.EventCount, Op: segment.GTE, Value: int64(10 + i)}},
		}}
	default:
		return segment.Rule{And: []segment.Rule{
			{InSegment: prev},
			{Event: &segment.EventCond{Name: name, Count: &segment.CountCond{Op: segment.GTE, Value: 3}}},
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
		s, err := e.seg.Create(e.Ctx, e.Tenant, membership.CreateInput{Name: fmt.Sprint("s", i), Rule: ptr(benchRule(i, prev))})
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
		if _, err := e.Services.Timeline.Track(e.Ctx, e.Tenant, "bench", "inputs", in); err != nil {
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
