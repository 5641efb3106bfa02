package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkSegmentEnteredDelivery: an order tracked (POST track) for a
// fresh profile → the websocket subscriber of the segment "≥ 1
// order_completed in the last 7 days" receives its ENTERED. Measured from
// sending the mutation, so the figure includes the track (identify, event
// insert, features, re-evaluation, membership records) and the delivery.
// "local": subscriber and writer on one server; "cross-instance": two
// servers on one data dir, subscriber on the second (outbox tailing).
//
//	go test ./server -run '^$' -bench SegmentEnteredDelivery -benchtime 300x
func BenchmarkSegmentEnteredDelivery(b *testing.B) {
	for _, name := range []string{"local", "cross-instance"} {
		b.Run(name, func(b *testing.B) {
			s1 := startServer(b, serverOptions{})
			sub := s1
			if name == "cross-instance" {
				sub = startServer(b, serverOptions{DataDir: s1.DataDir, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
			}
			tok := s1.token(b, "bench")
			r := s1.gql(b, tok, `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"name": "buyers", "rule": ordersRule(1)}})
			r.requireOK(b)
			var seg struct{ CreateSegment struct{ ID string } }
			r.decode(b, &seg)
			c := connectWS(b, sub, tok)
			op := c.subscribe(b, membershipSub, map[string]any{"s": seg.CreateSegment.ID})
			recv := wsMemRecv(b, c, op)
			untilSegmentLive(b, s1, tok, 1, recv)

			run := time.Now().UnixNano()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A random pause puts events at random phases of the
				// tailer's poll.
				b.StopTimer()
				time.Sleep(time.Duration(rand.Int64N(int64(60 * time.Millisecond))))
				b.StartTimer()
				start := time.Now()
				trackEvent(b, s1, tok, fmt.Sprintf("buyer-%d-%d@example.com", run, i), "order_completed")
				m, ok := recv(10 * time.Second)
				if !ok || m.Kind != "ENTERED" {
					b.Fatalf("got %+v %v", m, ok)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
