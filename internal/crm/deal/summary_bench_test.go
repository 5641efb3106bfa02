package deal_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/deal/dealtest"
)

// BenchmarkPipelineSummary100k: pipelineSummary of the default pipeline
// over 100,000 deals (inserted directly, spread over its stages, two
// currencies): the tally kept by deal writes, read per call; the one
// recount that builds it is reported as recount-ms. The CRM issue asks
// < 50 ms; see BENCHMARKS.md.
//
//	go test ./internal/crm/deal -run '^$' -bench PipelineSummary100k -benchtime 5x
func BenchmarkPipelineSummary100k(b *testing.B) {
	e := apptest.New(b, start)
	const n = 100_000
	docs := make([]any, 0, 5000)
	for i := 0; i < n; i++ {
		d := dealtest.Spread(i, start)
		docs = append(docs, d)
		if len(docs) == cap(docs) || i == n-1 {
			if _, err := e.Tenant.C(deal.Deals).InsertMany(e.Ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	// The deals were stored directly, so the first summary counts them
	// into the pipeline's tally; later ones read the tally.
	began := time.Now()
	if _, err := e.Services.Deals.Summarize(e.Ctx, e.Tenant, deal.DefaultKey); err != nil {
		b.Fatal(err)
	}
	recount := time.Since(began)
	b.ResetTimer()
	for range b.N {
		s, err := e.Services.Deals.Summarize(e.Ctx, e.Tenant, deal.DefaultKey)
		if err != nil || s.Won != n/6 {
			b.Fatalf("summary: %+v %v", s, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(recount.Milliseconds()), "recount-ms")
}
