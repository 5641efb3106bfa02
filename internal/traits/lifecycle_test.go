package traits_test

import (
	"slices"
	"testing"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
)

// TestComputedTraitLifecycle: a computed trait's life over the real
// wiring: bad input refused at its field; define → the backfill counts
// the events stored before; values after the backfill and after a track
// (which publishes profile.updated with the keys it moved); a segment on
// the trait; redefinition is a new version; delete removes it.
func TestComputedTraitLifecycle(t *testing.T) {
	e := newEnv(t)
	log := &apptest.Recorder{}
	e.Services.Publish(log)
	order := func(msg string, revenue float64) string {
		return e.track(t, []timeline.TrackInput{{MessageID: msg, Name: "order_completed", Properties: map[string]any{"revenue": revenue, "sku": "A-1"},
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "ann"}}}})
	}
	// Stored before the definitions: counted by their backfill.
	pid := order("o1", 10)

	_, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "rev", Kind: "SUM", Event: "order_completed"})
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != "input.property" {
		t.Fatalf("SUM without a property: %v, want BAD_USER_INPUT at input.property", err)
	}
	orders := traits.Input{Key: "orders", Kind: "COUNT", Event: "order_completed"}
	e.defineAll(t, []traits.Input{orders,
		{Key: "revenue_30d", Kind: "SUM", Event: "order_completed", Property: "revenue", Window: last(30, rule.Days)}})
	e.tr.Wait()
	list, err := e.tr.List(e.Ctx, e.Tenant)
	if err != nil || len(list) != 2 {
		t.Fatalf("definitions: %+v %v", list, err)
	}
	for _, d := range list {
		if b := d.Backfill; b.Status != traits.Done || b.Processed != b.Total || b.Total != 1 {
			t.Fatalf("%s: backfill %+v", d.Key, b)
		}
	}

	values := func() map[string]any {
		t.Helper()
		v, err := e.tr.Values(e.Ctx, e.Tenant, e.Profile(t, pid), nil, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := values(); v["orders"] != int64(1) || v["revenue_30d"] != 10.0 {
		t.Fatalf("after the backfill: %v", v)
	}
	if _, err := e.tr.Values(e.Ctx, e.Tenant, e.Profile(t, pid), []string{"nope"}, e.Clock.Now()); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("an unknown key: %v, want BAD_USER_INPUT", err)
	}

	// A segment on a computed trait; an unknown key is refused.
	repeat := func(key string) (*segment.Segment, error) {
		return e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "repeat " + key, Rule: &rule.Rule{
			Computed: &rule.ComputedCond{Key: key, Op: rule.GTE, Value: 2}}})
	}
	if _, err := repeat("nope"); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("segment on an unknown key: %v, want BAD_USER_INPUT", err)
	}
	seg, err := repeat("orders")
	if err != nil {
		t.Fatal(err)
	}

	m := log.Len()
	order("o2", 5.5)
	ups := log.Of(m, realtime.ProfileUpdated, pid)
	if len(ups) != 1 {
		t.Fatalf("profile.updated after a computed value changed: %+v", ups)
	}
	if keys, _ := ups[0].Payload["computed"].([]string); !slices.Contains(keys, "orders") {
		t.Fatalf("profile.updated names %v, want orders among them", ups[0].Payload["computed"])
	}
	if v := values(); v["orders"] != int64(2) || v["revenue_30d"] != 15.5 {
		t.Fatalf("after track: %v", v)
	}
	if n, err := segment.Size(e.Ctx, e.Tenant, seg.ID); err != nil || n != 1 {
		t.Fatalf("segment on orders >= 2: %d members %v", n, err)
	}

	// Redefinition is a new version; delete removes it.
	if d, err := e.tr.Define(e.Ctx, e.Tenant, orders); err != nil || d.DefVersion != 2 {
		t.Fatalf("redefine: %+v %v", d, err)
	}
	if ok, err := e.tr.Delete(e.Ctx, e.Tenant, "revenue_30d"); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	e.tr.Wait()
	if d, err := e.tr.Get(e.Ctx, e.Tenant, "revenue_30d"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("deleted definition still there: %+v %v", d, err)
	}
}
