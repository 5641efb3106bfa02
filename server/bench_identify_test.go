package main

import (
	"fmt"
	"testing"
)

// BenchmarkIdentify measures identify through the real HTTP server and
// GraphQL stack on the embedded store (p50/p95 of one request, like the
// read benchmarks): new is a person never seen (anonymousId, email and
// userId claimed, profile created); known is one of 1,000 existing people
// identified again by one email with a trait change.
//
//	go test ./server -run '^$' -bench Identify -benchtime 1000x
func BenchmarkIdentify(b *testing.B) {
	const q = `mutation($in: IdentifyInput!) { identify(input: $in) { created profile { id } } }`
	b.Run("new", func(b *testing.B) {
		s := startServer(b, serverOptions{})
		tok := s.token(b, "bench")
		b.ResetTimer()
		measure(b, func(i int) {
			s.gql(b, tok, q, map[string]any{"in": map[string]any{
				"identifiers": ids("anonymousId", fmt.Sprintf("anon-%d", i), "email", fmt.Sprintf("new%d@example.com", i), "userId", fmt.Sprintf("user-%d", i)),
				"traits":      map[string]any{"plan": "free", "firstName": "Ann"},
			}}).requireOK(b)
		})
	})
	b.Run("known", func(b *testing.B) {
		s := startServer(b, serverOptions{})
		tok := s.token(b, "bench")
		const pool = 1000
		for p := range pool {
			s.gql(b, tok, q, map[string]any{"in": map[string]any{
				"identifiers": ids("anonymousId", fmt.Sprintf("anon-%d", p), "email", fmt.Sprintf("known%d@example.com", p), "userId", fmt.Sprintf("user-%d", p)),
				"traits":      map[string]any{"plan": "free"},
			}}).requireOK(b)
		}
		b.ResetTimer()
		measure(b, func(i int) {
			s.gql(b, tok, q, map[string]any{"in": map[string]any{
				"identifiers": ids("email", fmt.Sprintf("known%d@example.com", i%pool)),
				"traits":      map[string]any{"visits": i},
			}}).requireOK(b)
		})
	})
}
