package traits_test

import "testing"

// TestRefreshSummaryInfo: a forced refresh returns the summary it made.
func TestRefreshSummaryInfo(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	if i, err := e.tr.RefreshSummaryInfo(e.Ctx, e.Tenant); err != nil || i == nil || i.Buyers != 0 {
		t.Fatalf("no buyers: %+v %v", i, err)
	}
	msg := 0
	e.orders(t, "a", 3, 20, start.Add(-2*day), day, &msg)
	e.orders(t, "b", 2, 10, start.Add(-3*day), day, &msg)
	e.tr.Wait()
	i, err := e.tr.RefreshSummaryInfo(e.Ctx, e.Tenant)
	if err != nil || i == nil || i.Buyers != 2 {
		t.Fatalf("two buyers: %+v %v", i, err)
	}
	if stored, err := e.tr.SummaryInfo(e.Ctx, e.Tenant); err != nil || stored == nil || !stored.At.Equal(i.At) || stored.Buyers != 2 {
		t.Fatalf("stored: %+v %v, want %+v", stored, err, i)
	}
}
