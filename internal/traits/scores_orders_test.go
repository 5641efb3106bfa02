package traits_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/scores"
)

// TestScoreSettingsSwitch switches the order event and value property:
// every profile is recounted from its events (hand-checked), new events
// count under the new settings, and bad input, refused at its field,
// changes nothing.
func TestScoreSettingsSwitch(t *testing.T) {
	e := newEnv(t)
	now := start
	// ana: two order_completed worth 100 and three purchases.
	ana := e.event(t, "ana@example.com", "order_completed", now.Add(-20*day), map[string]any{"revenue": 100})
	e.event(t, "ana@example.com", "order_completed", now.Add(-10*day), map[string]any{"revenue": 100})
	for i, v := range []float64{10, 20, 30} {
		e.event(t, "ana@example.com", "purchase", now.Add(-time.Duration(15-5*i)*day), map[string]any{"amount": map[string]any{"value": v, "currency": "EUR"}})
	}
	// ben: one purchase without a numeric value (an order worth 0), one order_completed.
	ben := e.event(t, "ben@example.com", "purchase", now.Add(-3*day), map[string]any{"amount": map[string]any{"value": "12.5"}})
	e.event(t, "ben@example.com", "order_completed", now.Add(-2*day), map[string]any{"revenue": 50})

	if _, a := e.scoresOf(t, ana); a.Orders != 2 || a.Revenue != 200 {
		t.Fatalf("before: ana %+v", a)
	}
	if _, b := e.scoresOf(t, ben); b.Orders != 1 || b.Revenue != 50 {
		t.Fatalf("before: ben %+v", b)
	}

	set, err := e.tr.SetScoreSettings(e.Ctx, e.Tenant, traits.ScoreSettings{OrderEvent: "purchase", RevenueProperty: "amount.value"}, "tester")
	if err != nil || set.OrderEvent != "purchase" || set.RevenueProperty != "amount.value" || !set.UpdatedAt.Equal(now) {
		t.Fatalf("set settings: %+v %v", set, err)
	}
	e.tr.Wait()
	st, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if b := st.Backfill; b.Status != traits.Done || b.Processed != b.Total || b.Total != 2 || st.OrderEvent != "purchase" || st.RevenueProperty != "amount.value" {
		t.Fatalf("after the recount: %+v", st)
	}

	if _, a := e.scoresOf(t, ana); a.Orders != 3 || a.Revenue != 60 || !a.FirstOrder.Equal(now.Add(-15*day)) || !a.LastOrder.Equal(now.Add(-5*day)) {
		t.Fatalf("after: ana %+v", a)
	}
	if _, b := e.scoresOf(t, ben); b.Orders != 1 || b.Revenue != 0 || !b.LastOrder.Equal(now.Add(-3*day)) {
		t.Fatalf("after: ben %+v", b)
	}
	// New events count under the new settings.
	e.event(t, "ana@example.com", "purchase", time.Time{}, map[string]any{"amount": map[string]any{"value": 40}})
	e.event(t, "ana@example.com", "order_completed", time.Time{}, map[string]any{"revenue": 1000})
	if s, a := e.scoresOf(t, ana); a.Orders != 4 || a.Revenue != 100 || !a.LastOrder.Equal(now) || s.ChurnRisk != 0 {
		t.Fatalf("after new events: ana %+v %+v", s, a)
	}

	// Bad input: refused at a field path, nothing changed.
	for _, tc := range []struct {
		name, event, prop, field string
	}{
		{"empty event", "", "amount", "input.orderEvent"},
		{"blank event", "   ", "amount", "input.orderEvent"},
		{"empty path segment", "purchase", "a..b", "input.revenueProperty"},
		{"empty property", "purchase", "", "input.revenueProperty"},
		{"operator in path", "purchase", "amount.$gt", "input.revenueProperty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.tr.SetScoreSettings(e.Ctx, e.Tenant, traits.ScoreSettings{OrderEvent: tc.event, RevenueProperty: tc.prop}, "tester")
			if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != tc.field {
				t.Fatalf("got %v, want BAD_USER_INPUT at %s", err, tc.field)
			}
		})
	}
	e.tr.Wait()
	again, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil || again.ScoreSettings != st.ScoreSettings || !again.UpdatedAt.Equal(st.UpdatedAt) || again.Backfill.Status != st.Backfill.Status ||
		again.Backfill.Processed != st.Backfill.Processed || again.Backfill.Total != st.Backfill.Total || again.Backfill.Error != st.Backfill.Error {
		t.Fatalf("settings changed by bad input: %+v %v, were %+v", again, err, st)
	}
	if _, a := e.scoresOf(t, ana); a.Orders != 4 || a.Revenue != 100 {
		t.Fatalf("after bad input: ana %+v", a)
	}
}

// TestScoresAfterMerge: a merge recounts the survivor's scores from the
// events of both profiles, and the ranking no longer lists the merged one.
func TestScoresAfterMerge(t *testing.T) {
	e := newEnv(t)
	now := start
	visitor := []identity.Identifier{{Type: identity.AnonymousID, Value: "visitor-1"}}
	mia := []identity.Identifier{{Type: identity.Email, Value: "mia@example.com"}}
	msg := 0
	order := func(ids []identity.Identifier, ago int, value float64) string {
		msg++
		at := now.Add(-time.Duration(ago) * day)
		return e.track(t, []timeline.TrackInput{{MessageID: fmt.Sprint("mg-", msg), Identifiers: ids, Name: traits.DefaultOrderEvent,
			OccurredAt: &at, Properties: map[string]any{"revenue": value}}})
	}
	anon := order(visitor, 20, 50)
	order(visitor, 10, 50)
	known := order(mia, 5, 30)
	if anon == known {
		t.Fatal("one profile before the merge")
	}
	res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "tester"}, ingest.IdentifyInput{Identifiers: append(slices.Clone(visitor), mia...)})
	if err != nil || len(res.Merged) != 1 {
		t.Fatalf("merge: %+v %v", res, err)
	}
	surv, gone := res.Profile.ID, res.Merged[0]
	if _, in := e.scoresOf(t, surv); in.Orders != 3 || in.Revenue != 130 || !in.FirstOrder.Equal(now.Add(-20*day)) || !in.LastOrder.Equal(now.Add(-5*day)) {
		t.Fatalf("survivor's scores after the merge: %+v", in)
	}
	nodes := e.rankAll(t, traits.RankQuery{Key: scores.KeyOrders})
	if got := rankedIDs(nodes); !slices.Equal(got, []string{surv}) || nodes[0].in.Orders != 3 {
		t.Fatalf("ranking after the merge: %+v (merged away: %s)", nodes, gone)
	}
}
