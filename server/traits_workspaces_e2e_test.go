package main

import (
	"testing"
	"time"
)

// TestComputedTraitSameKeyTwoWorkspaces: document ids are unique across
// the workspaces of a data dir, so a definition stored under its key as
// _id belonged to the first workspace that defined the key, and every
// other workspace's defineComputedTrait of that key failed ("is being
// changed concurrently; retry"). Each workspace defines, backfills,
// redefines and deletes its own.
func TestComputedTraitSameKeyTwoWorkspaces(t *testing.T) {
	s := startServer(t, serverOptions{})
	tokens := map[string]string{"acme": s.token(t, "acme"), "globex": s.token(t, "globex")}
	track := func(tok, msg, event string) {
		s.gql(t, tok, `mutation($m: String!, $e: String!) { track(input: {messageId: $m, identifiers: [{type: "anonymousId", value: "v"}], name: $e}) { profile { id } } }`,
			map[string]any{"m": msg, "e": event}).requireOK(t)
	}
	// Different events per workspace, so the definitions (and values) differ.
	events := map[string]string{"acme": "order_completed", "globex": "purchase"}
	track(tokens["acme"], "a1", "order_completed")
	track(tokens["globex"], "g1", "purchase")
	track(tokens["globex"], "g2", "purchase")

	define := `mutation($in: DefineComputedTraitInput!) { defineComputedTrait(input: $in) { key event version } }`
	for _, ws := range []string{"acme", "globex"} {
		r := s.gql(t, tokens[ws], define, map[string]any{"in": map[string]any{"key": "orders", "kind": "COUNT", "event": events[ws]}})
		r.requireOK(t)
		var out struct {
			DefineComputedTrait struct {
				Key, Event string
				Version    int
			}
		}
		r.decode(t, &out)
		if d := out.DefineComputedTrait; d.Key != "orders" || d.Event != events[ws] || d.Version != 1 {
			t.Fatalf("%s: defineComputedTrait: %s", ws, r.Body)
		}
	}

	type trait struct {
		Key, Event string
		Version    int
		Backfill   struct {
			Status string
			Total  int
		}
	}
	get := func(ws string) *trait {
		r := s.gql(t, tokens[ws], `{ computedTrait(key: "orders") { key event version backfill { status total } } }`, nil)
		r.requireOK(t)
		var out struct{ ComputedTrait *trait }
		r.decode(t, &out)
		return out.ComputedTrait
	}
	values := func(ws string) map[string]any {
		r := s.gql(t, tokens[ws], `{ profile(identifier: {type: "anonymousId", value: "v"}) { computed } }`, nil)
		r.requireOK(t)
		var out struct {
			Profile struct{ Computed map[string]any }
		}
		r.decode(t, &out)
		return out.Profile.Computed
	}
	// Each backfills in its own workspace.
	deadline := time.Now().Add(10 * time.Second)
	for _, ws := range []string{"acme", "globex"} {
		for {
			c := get(ws)
			if c == nil || c.Event != events[ws] {
				t.Fatalf("%s: computedTrait: %+v", ws, c)
			}
			if c.Backfill.Status == "DONE" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: backfill not DONE: %+v", ws, c)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if v := values("acme"); v["orders"] != 1.0 {
		t.Fatalf("acme values: %v", v)
	}
	if v := values("globex"); v["orders"] != 2.0 {
		t.Fatalf("globex values: %v", v)
	}

	// Redefining in one leaves the other's version alone; so does deleting.
	s.gql(t, tokens["globex"], define, map[string]any{"in": map[string]any{"key": "orders", "kind": "COUNT", "event": events["globex"]}}).requireOK(t)
	if a, g := get("acme"), get("globex"); a == nil || a.Version != 1 || g == nil || g.Version != 2 {
		t.Fatalf("after redefining in globex: acme %+v, globex %+v", a, g)
	}
	s.gql(t, tokens["acme"], `mutation { deleteComputedTrait(key: "orders") }`, nil).requireOK(t)
	if a, g := get("acme"), get("globex"); a != nil || g == nil || g.Version != 2 || g.Event != events["globex"] {
		t.Fatalf("after deleting in acme: acme %+v, globex %+v", a, g)
	}
}
