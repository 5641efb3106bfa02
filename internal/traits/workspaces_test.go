package traits_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// trackIn tracks one event of visitor v in tn and returns its profile id.
func (e *env) trackIn(t *testing.T, tn store.Tenant, msg, v, name string) string {
	t.Helper()
	at := start.Add(-time.Hour)
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, tn, "tester", "inputs", []timeline.TrackInput{{MessageID: msg, Name: name, OccurredAt: &at,
		Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}}})
	if err != nil {
		t.Fatalf("track: %v", err)
	}
	return res[len(res)-1].Profile.ID
}

// value is computed trait key of profile pid in tn.
func (e *env) value(t *testing.T, tn store.Tenant, pid, key string) any {
	t.Helper()
	p, err := profile.Get(e.Ctx, tn, pid)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.tr.Values(e.Ctx, tn, p, []string{key}, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v[key]
}

// Issue 15: ids are unique across the workspaces of a store, so a
// definition stored under its key as _id belonged to the first workspace
// that defined the key, and defining it in any other workspace failed
// ("is being changed concurrently; retry"). Each workspace has its own
// definition of a key: defined, backfilled, redefined and deleted
// independently.
func TestDefineSameKeyTwoWorkspaces(t *testing.T) {
	e := newEnv(t)
	ws1, ws2 := e.Tenant, e.Store.Tenant("ws2")
	p1 := e.trackIn(t, ws1, "a1", "v", "order")
	p2 := e.trackIn(t, ws2, "b1", "v", "purchase")
	e.trackIn(t, ws2, "b2", "v", "purchase")

	d1, err := e.tr.Define(e.Ctx, ws1, traits.Input{Key: "orders", Kind: "COUNT", Event: "order"})
	if err != nil {
		t.Fatalf("define in ws1: %v", err)
	}
	d2, err := e.tr.Define(e.Ctx, ws2, traits.Input{Key: "orders", Kind: "COUNT", Event: "purchase"})
	if err != nil {
		t.Fatalf("define the same key in ws2: %v", err)
	}
	if d1.ID == d2.ID || d1.ID == "orders" || d2.ID == "orders" {
		t.Fatalf("definition ids: %q and %q (want fresh, distinct ids)", d1.ID, d2.ID)
	}
	e.tr.Wait()
	for _, c := range []struct {
		tn    store.Tenant
		pid   string
		event string
		want  int64
	}{{ws1, p1, "order", 1}, {ws2, p2, "purchase", 2}} {
		d, err := e.tr.Get(e.Ctx, c.tn, "orders")
		if err != nil || d.Event != c.event || d.Backfill.Status != traits.Done || d.DefVersion != 1 {
			t.Fatalf("%s: %+v %v", c.tn.Workspace(), d, err)
		}
		if v := e.value(t, c.tn, c.pid, "orders"); v != c.want {
			t.Fatalf("%s: orders = %v, want %v", c.tn.Workspace(), v, c.want)
		}
	}

	// Redefining in ws2 keeps its document (a new version) and leaves ws1's alone.
	r2, err := e.tr.Define(e.Ctx, ws2, traits.Input{Key: "orders", Kind: "COUNT", Event: "purchase"})
	if err != nil || r2.ID != d2.ID || r2.DefVersion != 2 {
		t.Fatalf("redefine in ws2: %+v %v", r2, err)
	}
	if d, err := e.tr.Get(e.Ctx, ws1, "orders"); err != nil || d.DefVersion != 1 || d.Event != "order" {
		t.Fatalf("ws1 after redefining in ws2: %+v %v", d, err)
	}
	// Deleting in ws1 leaves ws2's.
	if ok, err := e.tr.Delete(e.Ctx, ws1, "orders"); err != nil || !ok {
		t.Fatalf("delete in ws1: %v %v", ok, err)
	}
	e.tr.Wait()
	if _, err := e.tr.Get(e.Ctx, ws1, "orders"); err == nil {
		t.Fatal("ws1's definition is still there after its delete")
	}
	if d, err := e.tr.Get(e.Ctx, ws2, "orders"); err != nil || d.DefVersion != 2 || d.Event != "purchase" || d.Backfill.Status != traits.Done {
		t.Fatalf("ws2 after deleting in ws1: %+v %v", d, err)
	}
	if v := e.value(t, ws2, p2, "orders"); v != int64(2) {
		t.Fatalf("ws2: orders = %v after deleting in ws1", v)
	}
	if p, err := profile.Get(e.Ctx, ws1, p1); err != nil {
		t.Fatal(err)
	} else if st, ok := p.Computed["orders"]; ok {
		t.Fatalf("ws1: orders state %+v left after its delete", st)
	}
}

// A data dir written before issue 15 holds definitions whose _id is their
// key: they are still listed, read, backfilled, redefined (in place) and
// deleted, and another workspace can define the same key.
func TestLegacyDefinitionID(t *testing.T) {
	e := newEnv(t)
	pid := e.trackIn(t, e.Tenant, "a1", "v", "order")
	now := start.Truncate(time.Millisecond)
	old := traits.Definition{ID: "orders", Key: "orders", Kind: "COUNT", Event: "order", Rev: 1, DefVersion: 1,
		CreatedAt: now, UpdatedAt: now, Backfill: traits.Backfill{Status: traits.Pending}, Version: 1}
	if err := e.Tenant.C(traits.ComputedTraits).Insert(e.Ctx, old); err != nil {
		t.Fatal(err)
	}
	// Resume finds it (as after a restart) and backfills it.
	if err := e.Store.Tenant(store.SystemWorkspace).C(traits.TraitWorkspaces).Put(e.Ctx, map[string]any{"_id": "ws1", "ws": "ws1"}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.tr.Resume(e.Ctx, e.Store); err != nil || n != 1 {
		t.Fatalf("resume: %d %v", n, err)
	}
	e.tr.Wait()
	d, err := e.tr.Get(e.Ctx, e.Tenant, "orders")
	if err != nil || d.ID != "orders" || d.Backfill.Status != traits.Done {
		t.Fatalf("legacy definition: %+v %v", d, err)
	}
	if v := e.value(t, e.Tenant, pid, "orders"); v != int64(1) {
		t.Fatalf("orders = %v after the legacy definition's backfill", v)
	}
	if list, err := e.tr.List(e.Ctx, e.Tenant); err != nil || len(list) != 1 || list[0].ID != "orders" {
		t.Fatalf("list: %+v %v", list, err)
	}

	// Another workspace defines the same key.
	ws2 := e.Store.Tenant("ws2")
	if _, err := e.tr.Define(e.Ctx, ws2, traits.Input{Key: "orders", Kind: "COUNT", Event: "purchase"}); err != nil {
		t.Fatalf("define in ws2 next to a legacy definition: %v", err)
	}

	// Redefined in place: still one document, under the old id.
	r, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "orders", Kind: "COUNT", Event: "order"})
	if err != nil || r.ID != "orders" || r.DefVersion != 2 {
		t.Fatalf("redefine legacy: %+v %v", r, err)
	}
	e.tr.Wait()
	if n := e.Count(t, traits.ComputedTraits, traits.ComputedTraitsByKey); n != 1 {
		t.Fatalf("%d definitions after redefining the legacy one", n)
	}
	if d, err := e.tr.Get(e.Ctx, e.Tenant, "orders"); err != nil || d.Backfill.Status != traits.Done || d.DefVersion != 2 {
		t.Fatalf("redefined legacy: %+v %v", d, err)
	}

	// Deleted: gone here, still there in ws2.
	if ok, err := e.tr.Delete(e.Ctx, e.Tenant, "orders"); err != nil || !ok {
		t.Fatalf("delete legacy: %v %v", ok, err)
	}
	e.tr.Wait()
	if n := e.Count(t, traits.ComputedTraits, traits.ComputedTraitsByKey); n != 0 {
		t.Fatalf("%d definitions after deleting the legacy one", n)
	}
	if d, err := e.tr.Get(e.Ctx, ws2, "orders"); err != nil || d.Event != "purchase" {
		t.Fatalf("ws2 after deleting ws1's legacy definition: %+v %v", d, err)
	}
}
