package traits_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// scored100k inserts 100,000 profile documents with traits and tallies
// directly, two in three of them buyers.
func scored100k(b *testing.B) *env {
	env := newEnv(b)
	now := env.Clock.Now()
	const n = 100_000
	docs := make([]any, 0, 5000)
	for i := range n {
		p := profile.New(store.NewID(), now.Add(-200*24*time.Hour))
		p.Traits = map[string]any{"plan": "pro", "email": fmt.Sprintf("user%d@example.com", i), "firstName": "Ada"}
		p.Tally = &scores.Tally{}
		for d := range i % 30 {
			at := now.Add(-time.Duration((i*7+d*13)%120) * 24 * time.Hour)
			p.Tally.Add(at, i%3 != 0 && d%4 == 0, float64(10+i%90), now)
		}
		docs = append(docs, p)
		if len(docs) == cap(docs) || i == n-1 {
			if _, err := env.Tenant.C(profile.Profiles).InsertMany(env.Ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	return env
}

// BenchmarkRank100k: profiles(byScore: CHURN_RISK, first: 50) over
// 100,000 profiles.
//
//	go test ./traits -run '^$' -bench Rank100k -benchtime 5x
func BenchmarkRank100k(b *testing.B) {
	env := scored100k(b)
	if _, err := env.tr.RefreshSummary(env.Ctx, env.Tenant, true); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		page, err := env.tr.Rank(env.Ctx, env.Tenant, traits.RankQuery{Key: scores.KeyChurnRisk, First: 50})
		if err != nil || len(page.Profiles) != 50 || !page.HasNext {
			b.Fatal(len(page.Profiles), err)
		}
	}
}

// BenchmarkSummary100k: the scheduled workspace summary (RFM boundaries,
// typical gap) over 100,000 profiles, about 60,000 of them buyers.
//
//	go test ./traits -run '^$' -bench Summary100k -benchtime 5x
func BenchmarkSummary100k(b *testing.B) {
	env := scored100k(b)
	b.ResetTimer()
	for b.Loop() {
		if done, err := env.tr.RefreshSummary(env.Ctx, env.Tenant, true); err != nil || !done {
			b.Fatal(done, err)
		}
	}
}
