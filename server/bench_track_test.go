package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTrackBatch measures trackBatch through the real HTTP server
// and GraphQL stack on the embedded store, in the scale harness's shape
// (4 clients, batches of 100, half the events by new people, half by
// 2,000 known ones) but with no segments: beside internal/ingest's
// BenchmarkTrack (the write path alone), it shows what HTTP and GraphQL
// add. One iteration is one batch per client.
//
//	go test ./server -run '^$' -bench TrackBatch -benchtime 20x -cpuprofile cpu.out
func BenchmarkTrackBatch(b *testing.B) {
	const q = `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`
	s := startServer(b, serverOptions{Env: map[string]string{"HALO_LOG_LEVEL": "warn"}})
	tok := s.token(b, "bench")
	const known, clients = 2000, 4
	var seq atomic.Int64
	batch := func(client int) []any {
		in := make([]any, 100)
		for j := range in {
			k := seq.Add(1)
			who := fmt.Sprint("p", k%known)
			if j%2 == 0 {
				who = fmt.Sprintf("new-%d-%d", client, k/4)
			}
			in[j] = map[string]any{"messageId": fmt.Sprint("m", k), "identifiers": ids("anonymousId", who),
				"name": fmt.Sprint("ev", k%12), "properties": map[string]any{"amount": k % 100}}
		}
		return in
	}
	for range known / 100 { // the known people exist
		in := make([]any, 100)
		for j := range in {
			k := seq.Add(1)
			in[j] = map[string]any{"messageId": fmt.Sprint("m", k), "identifiers": ids("anonymousId", fmt.Sprint("p", k%known)), "name": "seen"}
		}
		s.gql(b, tok, q, map[string]any{"in": in}).requireOK(b)
	}
	b.ResetTimer()
	t0 := time.Now()
	events := 0
	for b.Loop() {
		var wg sync.WaitGroup
		res := make([]gqlResponse, clients)
		for c := range clients {
			in := batch(c)
			wg.Go(func() { res[c] = s.gql(b, tok, q, map[string]any{"in": in}) })
		}
		wg.Wait()
		for _, r := range res {
			r.requireOK(b)
		}
		events += clients * 100
	}
	b.ReportMetric(float64(events)/time.Since(t0).Seconds(), "events/s")
}
