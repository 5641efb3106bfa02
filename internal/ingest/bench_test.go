package ingest_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

func anon(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.AnonymousID, Value: v}}
}

func ptr(r rule.Rule) *rule.Rule { return &r }

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

// benchEnv is a store with segments benchRule(0..segments-1) and known
// people p0..p{profiles-1} (traits plan and address.country). The
// segments come first, so that setting up costs no segment builds.
func benchEnv(b testing.TB, segments, profiles int) *apptest.Env {
	return benchEnvOver(b, nil, segments, profiles)
}

// benchEnvOver is benchEnv over a Counting around the embedded store, if
// counter is set.
func benchEnvOver(b testing.TB, counter **apptest.Counting, segments, profiles int) *apptest.Env {
	var e *apptest.Env
	if counter != nil {
		sb, err := sqlitestore.Open(b.Context(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		*counter = apptest.NewCounting(sb)
		e = apptest.NewOver(b, *counter, start)
	} else {
		e = apptest.New(b, start)
	}
	prev := ""
	for i := 0; i < segments; i++ {
		s, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: fmt.Sprint("s", i), Rule: ptr(benchRule(i, prev))})
		if err != nil {
			b.Fatal(err)
		}
		prev = s.ID
	}
	plans := []string{"free", "pro", "team"}
	countries := []string{"FR", "DE", "US", "JP"}
	for i := 0; i < profiles; i++ {
		_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon(fmt.Sprint("p", i)),
			Traits: map[string]any{"plan": plans[i%3], "address": map[string]any{"country": countries[i%4]}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// benchTrack tracks events of 500 known people in batches of batch
// (trackBatch-equivalent Track calls), after warmup events.
func benchTrack(b *testing.B, segments, batch, warmup int) {
	const profiles = 500
	e := benchEnv(b, segments, profiles)
	rng := rand.New(rand.NewPCG(1, 2))
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

// benchTrackMixed is the ingest shape in process: clients
// concurrent callers, each sending batches of 100 events of which half
// are by new people (each new person sends a few events) and half by
// 2,000 known ones. One b.Loop iteration is one batch per client.
func benchTrackMixed(b *testing.B, segments, clients int) {
	const known = 2000
	var counter *apptest.Counting
	e := benchEnvOver(b, &counter, segments, known)
	var (
		seq    atomic.Int64
		events atomic.Int64
	)
	batch := func(rng *rand.Rand, client int) {
		in := make([]timeline.TrackInput, 100)
		for j := range in {
			k := seq.Add(1)
			who := fmt.Sprint("p", rng.IntN(known))
			if j%2 == 0 {
				who = fmt.Sprintf("new-%d-%d", client, k/4) // about 4 events per new person
			}
			in[j] = timeline.TrackInput{MessageID: fmt.Sprint("m", k), Identifiers: anon(who),
				Name: fmt.Sprint("ev", rng.IntN(12)), Properties: map[string]any{"amount": float64(rng.IntN(100))}}
		}
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "bench", "inputs", in); err != nil {
			b.Error(err)
			return
		}
		events.Add(100)
	}
	counter.Reset()
	engine := counter.Backend.(*sqlitestore.Backend)
	groups0, writes0 := engine.GroupStats()
	b.ResetTimer()
	t0 := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Go(func() { batch(rand.New(rand.NewPCG(uint64(c), uint64(seq.Load()))), c) })
		}
		wg.Wait()
	}
	b.ReportMetric(float64(events.Load())/time.Since(t0).Seconds(), "events/s")
	// What one event costs the engine: calls and documents written.
	n := float64(events.Load())
	b.ReportMetric(float64(counter.Calls())/n, "calls/event")
	b.ReportMetric(float64(counter.Writes())/n, "writes/event")
	groups, writes := engine.GroupStats()
	b.ReportMetric(float64(writes-writes0)/float64(max(groups-groups0, 1)), "calls/commit")
	b.Log("per event:\n" + counter.Summary(n))
}

// go test ./internal/ingest -run '^$' -bench Track -benchtime 20x
func BenchmarkTrack(b *testing.B) {
	b.Run("50segs/batch100", func(b *testing.B) { benchTrack(b, 50, 100, 0) })
	b.Run("50segs/single", func(b *testing.B) { benchTrack(b, 50, 1, 0) })
	b.Run("50segs/batch100/warm", func(b *testing.B) { benchTrack(b, 50, 100, 5000) })
	b.Run("50segs/single/warm", func(b *testing.B) { benchTrack(b, 50, 1, 5000) })
	b.Run("50segs/4x100/halfnew", func(b *testing.B) { benchTrackMixed(b, 50, 4) })
	b.Run("0segs/4x100/halfnew", func(b *testing.B) { benchTrackMixed(b, 0, 4) })
}
