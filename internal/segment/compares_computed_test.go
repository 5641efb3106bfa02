package segment_test

import (
	"fmt"
	"testing"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits"
)

// TestComparesComputed: an active segment comparing the key is found past
// the first page of segments; other keys, and archived segments, are not.
func TestComparesComputed(t *testing.T) {
	e := newEnv(t)
	if _, err := e.Services.Traits.Define(e.Ctx, e.Tenant, traits.Input{Key: "orders", Kind: "COUNT", Event: "order"}); err != nil {
		t.Fatal(err)
	}
	e.Services.Traits.Wait()
	compares := func(key string) bool {
		t.Helper()
		ok, err := e.seg.ComparesComputed(e.Ctx, e.Tenant, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if compares("orders") {
		t.Fatal("no segments: compared")
	}
	for i := range 100 { // one full page before the one that compares
		e.create(t, fmt.Sprintf("a%03d", i), rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}})
	}
	buyers := e.create(t, "buyers", rule.Rule{Computed: &rule.ComputedCond{Key: "orders", Op: rule.GTE, Value: 1}})
	if !compares("orders") {
		t.Fatal("active segment on the second page: not compared")
	}
	if compares("plan") || compares("nope") {
		t.Fatal("other keys: compared")
	}
	if _, err := e.seg.Archive(e.Ctx, e.Tenant, buyers.ID); err != nil {
		t.Fatal(err)
	}
	if compares("orders") {
		t.Fatal("archived segment: compared")
	}
}
