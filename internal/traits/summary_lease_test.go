package traits_test

import (
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/traits"
)

// Issue 15: the score summary and the score settings are one document per
// workspace. A workspace whose summary (or settings) another workspace of
// the same store made first must still get its own: the seed's forced
// refresh and the background one claim the demo workspace's lease after
// another workspace (used in production mode) made its summary.
func TestSummaryPerWorkspace(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	other := e.Store.Tenant("ws2")
	msg := 0
	e.orders(t, "a", 3, 20, start.Add(-2*day), day, &msg)
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
		t.Fatalf("refresh ws1: %v %v", ok, err)
	}
	if _, err := e.tr.SetScoreSettings(e.Ctx, e.Tenant, traits.ScoreSettings{OrderEvent: "order_completed", RevenueProperty: "revenue"}, "t"); err != nil {
		t.Fatalf("score settings of ws1: %v", err)
	}
	e.tr.Wait()

	// A second engine (another process on the same data, as the demo seed
	// is) and this one, in the other workspace.
	second := app.New(e.Clock.Now).Traits
	t.Cleanup(second.Wait)
	for _, tr := range []*traits.Engine{second, e.tr} {
		if ok, err := tr.RefreshSummary(e.Ctx, other, true); err != nil || !ok {
			t.Fatalf("refresh ws2: %v %v", ok, err)
		}
	}
	if _, err := second.SetScoreSettings(e.Ctx, other, traits.ScoreSettings{OrderEvent: "purchase", RevenueProperty: "amount"}, "t"); err != nil {
		t.Fatalf("score settings of ws2: %v", err)
	}
	second.Wait()
	s1, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil || s1.OrderEvent != "order_completed" {
		t.Fatalf("ws1 settings: %+v %v", s1, err)
	}
	s2, err := e.tr.ScoreSettings(e.Ctx, other)
	if err != nil || s2.OrderEvent != "purchase" {
		t.Fatalf("ws2 settings: %+v %v", s2, err)
	}
	i1, err := e.tr.SummaryInfo(e.Ctx, e.Tenant)
	if err != nil || i1 == nil || i1.Buyers != 1 {
		t.Fatalf("ws1 summary: %+v %v", i1, err)
	}
	i2, err := e.tr.SummaryInfo(e.Ctx, other)
	if err != nil || i2 == nil || i2.Buyers != 0 {
		t.Fatalf("ws2 summary: %+v %v", i2, err)
	}
}

// Start-up work (the demo seed's forced refresh, its own engine) and the
// server's background refresh claim one workspace's summary lease at the
// same time, over and over: each either refreshes or finds the other at
// it, and none fails.
func TestSummaryConcurrentClaims(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	msg := 0
	e.orders(t, "a", 3, 20, start.Add(-2*day), day, &msg)
	seed := app.New(e.Clock.Now).Traits
	t.Cleanup(seed.Wait)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := map[string]int{}
	for name, tr := range map[string]*traits.Engine{"seed": seed, "background": e.tr} {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 15 {
					ok, err := tr.RefreshSummary(e.Ctx, e.Tenant, true)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					if ok {
						mu.Lock()
						done[name]++
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if done["seed"]+done["background"] == 0 {
		t.Fatal("no refresh went through")
	}
	// Nobody holds the lease afterwards: either engine refreshes at once.
	for _, tr := range []*traits.Engine{seed, e.tr} {
		if ok, err := tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
			t.Fatalf("refresh after the race: %v %v", ok, err)
		}
	}
	if i, err := e.tr.SummaryInfo(e.Ctx, e.Tenant); err != nil || i == nil || i.Buyers != 1 || time.Since(i.At) < 0 {
		t.Fatalf("summary: %+v %v", i, err)
	}
}
