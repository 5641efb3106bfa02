package app_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// TestNaturalKeysPerWorkspace: every workspace document that is found by
// a name or key the client picks (consent purpose, identifier type,
// segment name, PII settings, score settings, computed trait) is written
// with the same key in two workspaces of one store, created and then
// changed, and each workspace reads back its own. The rule spans the
// domains, so it is checked here, over all of them at once. Ids are
// unique across workspaces (issue 15): a key used as _id would make the
// second workspace's write fail.
func TestNaturalKeysPerWorkspace(t *testing.T) {
	e := apptest.New(t, start, app.WithTraitsSettle(0))
	t.Cleanup(e.Services.Traits.Wait)
	ctx, s := e.Ctx, e.Services
	wss := map[string]store.Tenant{"ws1": e.Tenant, "ws2": e.Store.Tenant("ws2")}
	names := []string{"ws1", "ws2"}
	// Each write, with a value that differs by workspace and round.
	writes := []struct {
		name  string
		write func(tn store.Tenant, v string) error
	}{
		{"DefinePurpose", func(tn store.Tenant, v string) error {
			_, err := s.Consent.DefinePurpose(ctx, tn, consent.PurposeInput{Key: "loyalty", Description: &v})
			return err
		}},
		{"PatchType", func(tn store.Tenant, _ string) error {
			_, err := identity.PatchType(ctx, tn, "loyaltyCard", identity.TypePatch{})
			return err
		}},
		{"SetPIISettings", func(tn store.Tenant, v string) error {
			_, err := s.Privacy.SetPIISettings(ctx, tn, privacy.PIISettings{TraitKeys: []string{v}, IdentifierTypes: []string{"email"}}, "tester")
			return err
		}},
		{"SetScoreSettings", func(tn store.Tenant, v string) error {
			_, err := s.Traits.SetScoreSettings(ctx, tn, traits.ScoreSettings{OrderEvent: v, RevenueProperty: "revenue"}, "tester")
			return err
		}},
		{"Define", func(tn store.Tenant, v string) error {
			_, err := s.Traits.Define(ctx, tn, traits.Input{Key: "orders", Kind: "COUNT", Event: v})
			return err
		}},
	}
	for round := 1; round <= 2; round++ {
		for _, ws := range names {
			v := fmt.Sprintf("%s_%d", ws, round)
			for _, w := range writes {
				if err := w.write(wss[ws], v); err != nil {
					t.Fatalf("%s in %s (round %d): %v", w.name, ws, round, err)
				}
			}
		}
	}
	// A segment of the same name in each workspace.
	segIDs := map[string]string{}
	for _, ws := range names {
		seg, err := s.Segments.Create(ctx, wss[ws], segment.CreateInput{Name: "vip", Kind: segment.Static})
		if err != nil {
			t.Fatalf("segment in %s: %v", ws, err)
		}
		segIDs[ws] = seg.ID
	}
	if segIDs["ws1"] == segIDs["ws2"] {
		t.Fatalf("one segment id for both workspaces: %v", segIDs)
	}
	s.Traits.Wait()

	type seg struct{ ID, Name string }
	for _, ws := range names {
		tn, v := wss[ws], ws+"_2"
		purposes, err := s.Consent.Purposes(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		purpose := ""
		for _, p := range purposes {
			if p.Key == "loyalty" {
				purpose = p.Description
			}
		}
		types, err := identity.LoadTypes(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		loyaltyCards := 0
		for _, it := range types.List() {
			if it.Name == "loyaltyCard" {
				loyaltyCards++
			}
		}
		pii, err := privacy.LoadPIISettings(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		scoreSettings, err := s.Traits.ScoreSettings(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		def, err := s.Traits.Get(ctx, tn, "orders")
		if err != nil {
			t.Fatal(err)
		}
		list, _, _, err := s.Segments.List(ctx, tn, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		var segs []seg
		for _, x := range list {
			segs = append(segs, seg{x.ID, x.Name})
		}
		got := []any{purpose, loyaltyCards, pii.TraitKeys, scoreSettings.OrderEvent, def.Event, def.DefVersion, segs}
		want := []any{v, 1, []string{v}, v, v, int64(2), []seg{{segIDs[ws], "vip"}}}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("%s reads\n%s\nwant\n%s", ws, g, w)
		}
	}
}
