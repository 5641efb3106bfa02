package traits_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

// benchDefs is n definitions of mixed kinds over events ev0..ev9, every
// other one windowed (30 days or 6 hours).
func benchDefs(n int) []traits.Input {
	var out []traits.Input
	for i := range n {
		k := agg.Kinds[i%len(agg.Kinds)]
		in := traits.Input{Key: fmt.Sprintf("t%d", i), Kind: string(k), Event: fmt.Sprint("ev", i%10)}
		switch {
		case k == agg.Count:
		case k.Numeric():
			in.Property = "amount"
		default:
			in.Property = "color"
		}
		switch i % 4 {
		case 1:
			in.Window = last(30, rule.Days)
		case 3:
			in.Window = last(6, rule.Hours)
		}
		out = append(out, in)
	}
	return out
}

// benchTrack tracks events for 500 profiles (12 event names, so 10 of
// 12 are counted by some definition) in batches, after warmup events.
func benchTrack(b *testing.B, defs, batch, warmup int) {
	env := newEnv(b)
	env.defineAll(b, benchDefs(defs))
	env.tr.Wait()
	const profiles = 500
	rng := rand.New(rand.NewPCG(1, 2))
	colors := []string{"red", "green", "blue", "black", "white"}
	n := 0
	in := make([]timeline.TrackInput, 0, batch)
	send := func(k int) {
		in = in[:0]
		for range k {
			n++
			at := env.Clock.Now().Add(-time.Duration(rng.IntN(48*60)) * time.Minute)
			in = append(in, timeline.TrackInput{MessageID: fmt.Sprint("m", n), OccurredAt: &at,
				Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: fmt.Sprint("p", rng.IntN(profiles))}},
				Name:        fmt.Sprint("ev", rng.IntN(12)), Properties: map[string]any{"amount": float64(rng.IntN(100)), "color": colors[rng.IntN(len(colors))]}})
		}
		if _, err := env.Services.Ingest.TrackEvents(env.Ctx, env.Tenant, "bench", "inputs", in); err != nil {
			b.Fatal(err)
		}
	}
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
	if docs, err := env.Tenant.C(profile.Profiles).Find(env.Ctx, store.Query{Index: profile.ProfilesByCreated}); err == nil {
		total, comp := 0, 0
		for _, d := range docs {
			total += len(d.Raw)
			if v, err := d.Raw.LookupErr("computed"); err == nil {
				comp += len(v.Value)
			}
		}
		b.ReportMetric(float64(total)/float64(len(docs)), "B/profile")
		b.ReportMetric(float64(comp)/float64(len(docs)), "Bcomputed/profile")
	}
}

// go test ./traits -run '^$' -bench TrackComputed -benchtime 60x
func BenchmarkTrackComputed(b *testing.B) {
	for _, defs := range []int{0, 20} {
		b.Run(fmt.Sprintf("%ddefs/batch100/warm", defs), func(b *testing.B) { benchTrack(b, defs, 100, 5000) })
		b.Run(fmt.Sprintf("%ddefs/single/warm", defs), func(b *testing.B) { benchTrack(b, defs, 1, 5000) })
	}
}
