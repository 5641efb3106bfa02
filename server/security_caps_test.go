package main

// Hostile segment definitions against the per-workspace caps (issue 14,
// item 7): rules of many or-ed event conditions with distinct filters made
// every createSegment backfill a new counter into every profile. With
// small caps in the server's environment, each refusal is asserted by its
// exact code, field and message, and by a digest of the whole store
// (workspace and system workspace) before and after: nothing is stored.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/segment"
)

// capsEnv are the caps of the test server: 3 active segments, 4 distinct
// event features, 3 event/lastEvent nodes per rule.
var capsEnv = map[string]string{
	"HALO_MAX_SEGMENTS":       "3",
	"HALO_MAX_EVENT_FEATURES": "4",
	"HALO_MAX_RULE_EVENTS":    "3",
}

// evNode is an event node counting name, with an optional amount filter
// (a distinct filter is a distinct feature).
func evNode(name string, gt ...int) map[string]any {
	ev := map[string]any{"name": name, "count": map[string]any{"op": "GTE", "value": 1}}
	if len(gt) > 0 {
		ev["where"] = []any{map[string]any{"key": "amount", "op": "GT", "value": gt[0]}}
	}
	return map[string]any{"event": ev}
}

func orRule(nodes ...map[string]any) map[string]any {
	list := make([]any, len(nodes))
	for i, n := range nodes {
		list[i] = n
	}
	return map[string]any{"or": list}
}

const (
	capsCreate  = `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id } }`
	capsUpdate  = `mutation($id: ID!, $in: UpdateSegmentInput!) { updateSegment(id: $id, input: $in) { id version } }`
	capsArchive = `mutation($id: ID!) { archiveSegment(id: $id) { id status } }`
	capsPreview = `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`
)

func TestSecuritySegmentCaps(t *testing.T) {
	s := startServer(t, serverOptions{Env: capsEnv})
	st := secStore(t, s)
	tok := s.token(t, "acme")
	now := time.Now().UTC()
	for i := range 3 {
		track(t, s, tok, fmt.Sprint("caps-", i), ids("anonymousId", fmt.Sprint("a", i)), "a", now.Add(-time.Minute))
	}

	// refused sends one call that must be refused with BAD_USER_INPUT on
	// field with exactly message, storing nothing.
	refused := func(t *testing.T, query string, vars map[string]any, field, message string) {
		t.Helper()
		before := takeStoreDigest(t, st, "acme")
		r := s.gql(t, tok, query, vars)
		r.requireError(t, 0, "BAD_USER_INPUT")
		if len(r.Errors) != 1 {
			t.Fatalf("want one error: %s", r.Body)
		}
		e := r.Errors[0]
		if got, _ := e.Extensions["field"].(string); got != field {
			t.Errorf("field %q, want %q: %s", got, field, r.Body)
		}
		if want := field + ": " + message; e.Message != want {
			t.Errorf("message\n  %q\nwant\n  %q", e.Message, want)
		}
		noData(t, r, "createSegment")
		noData(t, r, "updateSegment")
		requireStoreDigest(t, st, "acme", before)
	}
	create := func(t *testing.T, in map[string]any) string {
		t.Helper()
		return createSegment(t, s, tok, in).ID
	}

	// One static segment (a slot, no features) and one dynamic counting
	// a and b: 2 segments, 2 features.
	create(t, map[string]any{"name": "list", "kind": "STATIC"})
	ab := create(t, map[string]any{"name": "ab", "rule": orRule(evNode("a"), evNode("b"))})

	const (
		nodesMsg    = "a rule has at most 3 event and lastEvent nodes"
		segmentsMsg = "this workspace has 3 active segments, the most it may have; archive one to make room"
	)
	featuresMsg := func(n int) string {
		return fmt.Sprintf("with this rule the active segments of this workspace would count %d distinct events (each event name with its filters, each lastEvent name), more than the 4 allowed; reuse the events other segments count, or archive segments", n)
	}

	t.Run("rule over the event-node cap", func(t *testing.T) {
		// The shape, shortened: or-ed events with distinct filters.
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "wide",
			"rule": orRule(evNode("a", 1), evNode("a", 2), evNode("a", 3), evNode("a", 4))}},
			"input.rule.or[3].event", nodesMsg)
	})
	t.Run("repeated nodes count as nodes", func(t *testing.T) {
		// One feature, four nodes: the node cap is on the rule's size.
		rule := orRule(evNode("a"), evNode("a"), map[string]any{"lastEvent": map[string]any{"name": "a", "notWithin": map[string]any{"amount": 1, "unit": "DAYS"}}},
			map[string]any{"not": evNode("a")})
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "wide", "rule": rule}}, "input.rule.or[3].not.event", nodesMsg)
	})
	t.Run("preview over the event-node cap", func(t *testing.T) {
		refused(t, capsPreview, map[string]any{"r": orRule(evNode("a", 1), evNode("a", 2), evNode("a", 3), evNode("a", 4))},
			"rule.or[3].event", nodesMsg)
	})
	t.Run("create over the feature cap", func(t *testing.T) {
		// a, b counted already; c, d, e would make 5.
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "cde", "rule": orRule(evNode("c"), evNode("d"), evNode("e"))}},
			"input.rule", featuresMsg(5))
	})

	// Features already counted count once: a, b, c is one new feature (3).
	abc := create(t, map[string]any{"name": "abc", "rule": orRule(evNode("a"), evNode("b"), evNode("c"))})

	t.Run("segment over the segment cap", func(t *testing.T) {
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "extra", "kind": "STATIC"}}, "input", segmentsMsg)
		// Even one that counts nothing new.
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "extra", "rule": evNode("a")}}, "input", segmentsMsg)
	})
	t.Run("update within the caps", func(t *testing.T) {
		// At the segment cap, an update adds no segment; adding d makes 4
		// features, the cap: only the new one counts.
		r := s.gql(t, tok, capsUpdate, map[string]any{"id": ab, "in": map[string]any{"rule": orRule(evNode("a"), evNode("b"), evNode("d", 1))}})
		r.requireOK(t)
	})
	t.Run("update over the feature cap", func(t *testing.T) {
		// ab drops b (abc still counts it) and adds e: a b c d(>1) e = 5.
		refused(t, capsUpdate, map[string]any{"id": ab, "in": map[string]any{"rule": orRule(evNode("a"), evNode("d", 1), evNode("e"))}},
			"input.rule", featuresMsg(5))
	})
	t.Run("update over the event-node cap", func(t *testing.T) {
		refused(t, capsUpdate, map[string]any{"id": ab, "in": map[string]any{"rule": orRule(evNode("a"), evNode("b"), evNode("d", 1), evNode("a", 9))}},
			"input.rule.or[3].event", nodesMsg)
	})
	t.Run("update replacing features at the cap", func(t *testing.T) {
		// ab swaps d(>1) for e: still 4 features, allowed at the cap.
		r := s.gql(t, tok, capsUpdate, map[string]any{"id": ab, "in": map[string]any{"rule": orRule(evNode("a"), evNode("b"), evNode("e"))}})
		r.requireOK(t)
		// A rename at the caps changes no count.
		r = s.gql(t, tok, capsUpdate, map[string]any{"id": ab, "in": map[string]any{"name": "ab-renamed"}})
		r.requireOK(t)
	})
	t.Run("archive frees a slot", func(t *testing.T) {
		s.gql(t, tok, capsArchive, map[string]any{"id": abc}).requireOK(t)
		// abc's segment slot and its feature c are free again: ab counts
		// a, b, e; f makes 4.
		create(t, map[string]any{"name": "abf", "rule": orRule(evNode("a"), evNode("f"))})
		refused(t, capsCreate, map[string]any{"in": map[string]any{"name": "extra", "kind": "STATIC"}}, "input", segmentsMsg)
	})
	t.Run("caps are per workspace", func(t *testing.T) {
		g := s.token(t, "globex")
		for i := range 3 {
			createSegment(t, s, g, map[string]any{"name": fmt.Sprint("g", i), "rule": orRule(evNode(fmt.Sprint("g", i)))})
		}
	})
}

// TestSegmentCapsConfig: the caps' environment variables, their defaults
// and their bounds.
func TestSegmentCapsConfig(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SegmentLimits != segment.DefaultLimits {
		t.Fatalf("defaults %+v, want %+v", cfg.SegmentLimits, segment.DefaultLimits)
	}
	cfg, err = loadConfig(func(k string) string { return capsEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	if want := (segment.Limits{Segments: 3, EventFeatures: 4, RuleEvents: 3}); cfg.SegmentLimits != want {
		t.Fatalf("got %+v, want %+v", cfg.SegmentLimits, want)
	}
	for name, v := range map[string]string{
		"HALO_MAX_SEGMENTS":       "0",
		"HALO_MAX_EVENT_FEATURES": "many",
		"HALO_MAX_RULE_EVENTS":    "101", // a rule has at most 100 nodes
	} {
		_, err := loadConfig(func(k string) string {
			if k == name {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, v, err)
		}
	}
}
