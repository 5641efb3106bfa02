package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestNaturalKeysPerWorkspace: every workspace document that is found by
// a name or key the client picks (consent purpose, identifier type,
// segment name, PII settings, score settings, computed trait) is written
// with the same key in two workspaces of one data dir, created and then
// changed, and each workspace reads back its own. Ids are unique across
// workspaces (issue 15): a key used as _id would make the second
// workspace's write fail.
func TestNaturalKeysPerWorkspace(t *testing.T) {
	s := startServer(t, serverOptions{})
	wss := []string{"acme", "globex"}
	tokens := map[string]string{}
	for _, ws := range wss {
		tokens[ws] = s.token(t, ws)
	}
	// Each write, with a value that differs by workspace and round.
	writes := []struct {
		name, query string
		vars        func(v string) map[string]any
	}{
		{"definePurpose", `mutation($d: String!) { definePurpose(input: {key: "loyalty", description: $d}) { key } }`,
			func(v string) map[string]any { return map[string]any{"d": v} }},
		{"setIdentifierType", `mutation { setIdentifierType(input: {name: "loyaltyCard"}) { name } }`,
			func(string) map[string]any { return nil }},
		{"setPIISettings", `mutation($k: String!) { setPIISettings(traitKeys: [$k], identifierTypes: ["email"]) { traitKeys } }`,
			func(v string) map[string]any { return map[string]any{"k": v} }},
		{"setScoreSettings", `mutation($e: String!) { setScoreSettings(input: {orderEvent: $e, revenueProperty: "revenue"}) { orderEvent } }`,
			func(v string) map[string]any { return map[string]any{"e": v} }},
		{"defineComputedTrait", `mutation($e: String!) { defineComputedTrait(input: {key: "orders", kind: COUNT, event: $e}) { key } }`,
			func(v string) map[string]any { return map[string]any{"e": v} }},
	}
	for round := 1; round <= 2; round++ {
		for _, ws := range wss {
			v := fmt.Sprintf("%s_%d", ws, round)
			for _, w := range writes {
				r := s.gql(t, tokens[ws], w.query, w.vars(v))
				if len(r.Errors) > 0 {
					t.Fatalf("%s in %s (round %d): %s", w.name, ws, round, r.Body)
				}
			}
		}
	}
	// A segment of the same name in each workspace.
	segIDs := map[string]string{}
	for _, ws := range wss {
		r := s.gql(t, tokens[ws], `mutation { createSegment(input: {name: "vip", kind: STATIC}) { id } }`, nil)
		r.requireOK(t)
		var out struct{ CreateSegment struct{ ID string } }
		r.decode(t, &out)
		segIDs[ws] = out.CreateSegment.ID
	}
	if segIDs["acme"] == segIDs["globex"] {
		t.Fatalf("one segment id for both workspaces: %v", segIDs)
	}

	for _, ws := range wss {
		v := ws + "_2"
		r := s.gql(t, tokens[ws], `{
			consentPurposes { key description }
			identifierTypes { name }
			piiSettings { traitKeys }
			scoreSettings { orderEvent }
			computedTrait(key: "orders") { event version }
			segments { nodes { id name } }
		}`, nil)
		r.requireOK(t)
		var out struct {
			ConsentPurposes []struct{ Key, Description string }
			IdentifierTypes []struct{ Name string }
			PIISettings     struct{ TraitKeys []string }
			ScoreSettings   struct{ OrderEvent string }
			ComputedTrait   struct {
				Event   string
				Version int
			}
			Segments struct{ Nodes []struct{ ID, Name string } }
		}
		r.decode(t, &out)
		purpose := ""
		for _, p := range out.ConsentPurposes {
			if p.Key == "loyalty" {
				purpose = p.Description
			}
		}
		types := 0
		for _, it := range out.IdentifierTypes {
			if it.Name == "loyaltyCard" {
				types++
			}
		}
		got := []any{purpose, types, out.PIISettings.TraitKeys, out.ScoreSettings.OrderEvent, out.ComputedTrait.Event, out.ComputedTrait.Version, out.Segments.Nodes}
		want := []any{v, 1, []string{v}, v, v, 2, []struct{ ID, Name string }{{segIDs[ws], "vip"}}}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("%s reads\n%s\nwant\n%s", ws, g, w)
		}
	}
}
