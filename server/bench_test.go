package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Benchmarks of the two reads a CRM screen makes, through the real HTTP
// server and GraphQL stack, on each engine. Data: benchProfiles profiles ×
// 50 events plus one profile with 500, so pages come from a populated
// index. They report the median (p50) and p95 latency of one request.
// FerretDB filters and sorts in Go (every read is a collection scan), so
// the MongoDB-engine run uses fewer profiles to finish in reasonable time;
// its figures say how FerretDB behaves, not how MongoDB would.
//
//	go test ./server -run '^$' -bench . -benchtime 200x
func BenchmarkProfileByIdentifier(b *testing.B) {
	benchEachEngine(b, func(b *testing.B, s *testServer, tok string) {
		q := `query($v: String!) { profile(identifier: {type: "email", value: $v}) { id eventCount traits identifiers { type value } } }`
		measure(b, func(i int) {
			s.gql(b, tok, q, map[string]any{"v": fmt.Sprintf("bench%d@example.com", i%benchProfiles(s))}).requireOK(b)
		})
	})
}

func BenchmarkTimelinePage50(b *testing.B) {
	benchEachEngine(b, func(b *testing.B, s *testServer, tok string) {
		q := `query($after: String) { profile(identifier: {type: "userId", value: "heavy"}) { timeline(first: 50, after: $after) { edges { node { id name occurredAt properties } } pageInfo { endCursor hasNextPage } } } }`
		var after any
		measure(b, func(int) {
			r := s.gql(b, tok, q, map[string]any{"after": after})
			r.requireOK(b)
			var out struct{ Profile gqlProfile }
			r.decode(b, &out)
			after = out.Profile.Timeline.PageInfo.EndCursor
			if !out.Profile.Timeline.PageInfo.HasNextPage {
				after = nil // wrap around: 10 pages of 50
			}
		})
	})
}

func benchEachEngine(b *testing.B, fn func(b *testing.B, s *testServer, tok string)) {
	for _, name := range []string{"sqlite", "mongodb"} {
		b.Run(name, func(b *testing.B) {
			env := map[string]string{}
			if name == "mongodb" {
				env["MONGODB_URI"] = freshMongoDatabase(b)
			}
			s := startServer(b, serverOptions{Env: env})
			tok := s.token(b, "bench")
			seedBench(b, s, tok)
			b.ResetTimer()
			fn(b, s, tok)
		})
	}
}

func seedBench(b *testing.B, s *testServer, tok string) {
	base := time.Now().Add(-30 * 24 * time.Hour).UTC()
	q := `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`
	var batch []any
	flush := func() {
		s.gql(b, tok, q, map[string]any{"in": batch}).requireOK(b)
		batch = batch[:0]
	}
	for p := 0; p < benchProfiles(s); p++ {
		for e := 0; e < 50; e++ {
			batch = append(batch, map[string]any{"messageId": fmt.Sprintf("b-%d-%d", p, e), "identifiers": ids("email", fmt.Sprintf("bench%d@example.com", p)),
				"name": "page_viewed", "occurredAt": base.Add(time.Duration(p*50+e) * time.Minute).Format(time.RFC3339), "properties": map[string]any{"path": "/p"}})
			if len(batch) == 500 {
				flush()
			}
		}
	}
	for e := 0; e < 500; e++ {
		batch = append(batch, map[string]any{"messageId": fmt.Sprintf("h-%d", e), "identifiers": ids("userId", "heavy"),
			"name": "product_viewed", "occurredAt": base.Add(time.Duration(e) * time.Minute).Format(time.RFC3339), "properties": map[string]any{"sku": "SKU-1"}})
	}
	flush()
}

// measure runs op b.N times and reports p50 and p95 latency in µs.
func measure(b *testing.B, op func(i int)) {
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		start := time.Now()
		op(i)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds()), "p95-µs")
}

func benchProfiles(s *testServer) int {
	if s.Config.MongoURI != "" {
		return 10
	}
	return 100
}
