package traits_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// A RUNNING backfill whose owner holds a live lease is left alone by
// another engine's Resume (two instances never run one backfill at once);
// once the lease lapses (the owner died), Resume takes it over and
// finishes it.
func TestBackfillLease(t *testing.T) {
	e := newEnv(t)
	e.track(t, []timeline.TrackInput{{MessageID: "m1", Name: "order", Properties: map[string]any{"revenue": 10.0},
		Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "a"}}}})
	if _, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "orders", Kind: "COUNT", Event: "order"}); err != nil {
		t.Fatal(err)
	}
	e.tr.Wait()
	setBackfill := func(b traits.Backfill) {
		t.Helper()
		var d traits.Definition
		if err := e.Tenant.C(traits.ComputedTraits).FindOne(e.Ctx, store.Query{Index: traits.ComputedTraitsByKey, Eq: []any{"orders"}}, &d); err != nil {
			t.Fatal(err)
		}
		d.Backfill = b
		if err := e.Tenant.C(traits.ComputedTraits).Put(e.Ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	status := func() traits.Backfill {
		t.Helper()
		d, err := e.tr.Get(e.Ctx, e.Tenant, "orders")
		if err != nil {
			t.Fatal(err)
		}
		return d.Backfill
	}
	// Another instance is running it: nothing starts here.
	other := traits.Backfill{Status: traits.Running, Total: 1, Owner: "other-instance", LeaseUntil: time.Now().Add(time.Minute)}
	setBackfill(other)
	second := traits.New(traits.Deps{Now: e.Clock.Now})
	if n, err := second.Resume(e.Ctx, e.Store); err != nil || n != 0 {
		t.Fatalf("resumed %d (%v) under a live lease", n, err)
	}
	second.Wait()
	if b := status(); b.Status != traits.Running || b.Owner != "other-instance" {
		t.Fatalf("a live lease was taken: %+v", b)
	}
	// The owner died: its lease lapses and Resume finishes the job.
	other.LeaseUntil = time.Now().Add(-time.Second)
	setBackfill(other)
	if n, err := second.Resume(e.Ctx, e.Store); err != nil || n != 1 {
		t.Fatalf("resumed %d (%v) after the lease lapsed", n, err)
	}
	second.Wait()
	if b := status(); b.Status != traits.Done || b.Processed != b.Total || b.Owner != "" || !b.LeaseUntil.IsZero() {
		t.Fatalf("after takeover: %+v", b)
	}
}
