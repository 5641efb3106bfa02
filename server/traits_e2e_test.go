package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestComputedTraitsAPI proves the computed traits' GraphQL wiring
// through the real server: scopes, bad input with its field path, define
// → backfill DONE (visible through computedTraits), values on
// Profile.computed, profileUpdated over SSE when a track changes a value,
// and delete. The rules (backfill, values, windows, segments on traits,
// versions, workspaces) are tested in internal/traits.
func TestComputedTraitsAPI(t *testing.T) {
	s := startServer(t, serverOptions{})
	admin := s.token(t, "acme")
	reader := s.token(t, "acme", "profiles:read", "events:write", "segments:read")

	// Events stored before the definition are backfilled.
	track := func(msg, visitor string, revenue float64) string {
		r := s.gql(t, admin, `mutation($m: String!, $v: String!, $r: Float!) { track(input: {messageId: $m, identifiers: [{type: "anonymousId", value: $v}], name: "order_completed", properties: {revenue: $r, sku: "A-1"}}) { profile { id } } }`,
			map[string]any{"m": msg, "v": visitor, "r": revenue})
		r.requireOK(t)
		var out struct {
			Track struct{ Profile struct{ ID string } }
		}
		r.decode(t, &out)
		return out.Track.Profile.ID
	}
	pid := track("o1", "ann", 10)

	define := `mutation($in: DefineComputedTraitInput!) { defineComputedTrait(input: $in) { key kind version backfill { status } } }`
	orders := map[string]any{"key": "orders", "kind": "COUNT", "event": "order_completed"}
	s.gql(t, reader, define, map[string]any{"in": orders}).requireError(t, 200, "FORBIDDEN")
	bad := s.gql(t, admin, define, map[string]any{"in": map[string]any{"key": "rev", "kind": "SUM", "event": "order_completed"}})
	bad.requireError(t, 200, "BAD_USER_INPUT")
	if f, _ := bad.Errors[0].Extensions["field"].(string); f != "input.property" {
		t.Fatalf("bad input field %q: %s", f, bad.Body)
	}
	r := s.gql(t, admin, define, map[string]any{"in": orders})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"key":"orders","kind":"COUNT","version":1`) {
		t.Fatalf("defineComputedTrait: %s", r.Data)
	}

	// Backfill progress, through GraphQL, until DONE.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.gql(t, reader, `{ computedTraits { key version backfill { status processed total finishedAt } } }`, nil)
		r.requireOK(t)
		var out struct {
			ComputedTraits []struct {
				Key      string
				Backfill struct {
					Status           string
					Processed, Total int
				}
			}
		}
		r.decode(t, &out)
		done := len(out.ComputedTraits) == 1
		for _, c := range out.ComputedTraits {
			done = done && c.Backfill.Status == "DONE" && c.Backfill.Processed == c.Backfill.Total && c.Backfill.Total == 1
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill not DONE: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	values := func() map[string]any {
		r := s.gql(t, reader, `query($p: ID) { profile(id: $p) { computed } }`, map[string]any{"p": pid})
		r.requireOK(t)
		var out struct {
			Profile struct{ Computed map[string]any }
		}
		r.decode(t, &out)
		return out.Profile.Computed
	}
	if v := values(); v["orders"] != 1.0 {
		t.Fatalf("after backfill: %v", v)
	}
	s.gql(t, reader, `query($p: ID) { profile(id: $p) { computed(keys: ["nope"]) } }`, map[string]any{"p": pid}).requireError(t, 200, "BAD_USER_INPUT")

	// profile.updated reaches a subscriber when a track changes a value.
	sub := sseSubscribe(t, s, reader, `subscription($p: ID!) { profileUpdated(id: $p) { id computed } }`, map[string]any{"p": pid})
	time.Sleep(100 * time.Millisecond) // let the subscription register
	track("o2", "ann", 5.5)
	select {
	case data := <-sub:
		if !strings.Contains(string(data), `"orders":2`) {
			t.Fatalf("profileUpdated: %s", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no profileUpdated after a computed value changed")
	}
	if v := values(); v["orders"] != 2.0 {
		t.Fatalf("after track: %v", v)
	}

	del := s.gql(t, admin, `mutation { deleteComputedTrait(key: "orders") }`, nil)
	del.requireOK(t)
	var gone map[string]any
	_ = json.Unmarshal(s.gql(t, reader, `{ computedTrait(key: "orders") { key } }`, nil).Data, &gone)
	if gone["computedTrait"] != nil {
		t.Fatalf("deleted definition still there: %v", gone)
	}
}
