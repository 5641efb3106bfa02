package segment_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// BenchmarkPreview100k: segmentPreview over 100,000 profile documents with
// traits and maintained counters (inserted directly), one active segment
// maintaining the features the rule reads.
//
//	go test ./membership -run '^$' -bench Preview100k -benchtime 3x
func BenchmarkPreview100k(b *testing.B) {
	e := newEnv(b)
	rl := rule.Rule{And: []rule.Rule{
		{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
		{Event: &rule.EventCond{Name: "order_completed", Count: &rule.CountCond{Op: rule.GTE, Value: 2}, Window: &rule.Window{Last: &rule.Last{Amount: 30, Unit: rule.Days}}}},
		{Not: &rule.Rule{LastEvent: &rule.InactivityCond{Name: "page_viewed", NotWithin: rule.Last{Amount: 14, Unit: rule.Days}}}},
	}}
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "maintains", Rule: &rl}); err != nil {
		b.Fatal(err)
	}
	feats := rule.Features(rl)
	plans := []string{"free", "pro", "team"}
	const n = 100_000
	docs := make([]any, 0, 5000)
	for i := 0; i < n; i++ {
		p := profile.New(store.NewID(), start.Add(-90*24*time.Hour))
		p.Traits = map[string]any{"plan": plans[i%3], "email": fmt.Sprintf("user%d@example.com", i), "firstName": "Ada", "address": map[string]any{"country": "FR", "city": "Paris"}}
		for d := 0; d < i%12; d++ {
			at := start.Add(-time.Duration((i*7+d*13)%40) * 24 * time.Hour)
			for _, f := range feats {
				c := p.Features[f.Key]
				c.Add(at)
				p.Features[f.Key] = c
			}
		}
		docs = append(docs, p)
		if len(docs) == cap(docs) || i == n-1 {
			if _, err := e.Tenant.C(profile.Profiles).InsertMany(e.Ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	b.ResetTimer()
	for b.Loop() {
		count, sample, err := e.seg.Preview(e.Ctx, e.Tenant, rl, start)
		if err != nil || len(sample) == 0 {
			b.Fatal(count, err)
		}
	}
}
