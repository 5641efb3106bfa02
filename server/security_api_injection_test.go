package main

import (
	"strings"
	"testing"
)

// injectionCases sends MongoDB operators, dotted paths and prototype keys
// wherever user JSON or strings reach the store: they are refused, or
// taken as literal values, never as operators.
func (w *secWorld) injectionCases(t *testing.T) {
	s := w.s
	tok := s.token(t, "acme")
	email := ids("email", secEmail)
	identifyQ := `mutation($i: [IdentifierInput!]!, $t: JSON) { identify(input: {identifiers: $i, traits: $t}) { profile { id } } }`
	trackQ := `mutation($i: [IdentifierInput!]!, $p: JSON, $t: JSON) { track(input: {messageId: "inj-1", identifiers: $i, name: "a", properties: $p, traits: $t}) { profile { id } } }`
	consentQ := `mutation($p: ID!, $proof: JSON) { setConsent(input: {profileId: $p, purpose: "marketing", status: GRANTED, proof: $proof}) { status } }`
	segQ := `mutation($r: SegmentRuleInput) { createSegment(input: {name: "injected", rule: $r}) { id } }`
	trait := func(key string, value any) map[string]any {
		return map[string]any{"trait": map[string]any{"key": key, "op": "EQ", "value": value}}
	}

	cases := []struct {
		name, query string
		vars        map[string]any
		code        string
	}{
		{"$where in traits", identifyQ, map[string]any{"i": email, "t": map[string]any{"$where": "sleep(1000)"}}, "BAD_USER_INPUT"},
		{"$gt nested in traits", identifyQ, map[string]any{"i": email, "t": map[string]any{"plan": map[string]any{"$gt": ""}}}, "BAD_USER_INPUT"},
		{"$set in traits", identifyQ, map[string]any{"i": email, "t": map[string]any{"$set": map[string]any{"plan": "free"}}}, "BAD_USER_INPUT"},
		{"dotted trait key", identifyQ, map[string]any{"i": email, "t": map[string]any{"plan.tier": "gold"}}, "BAD_USER_INPUT"},
		{"$where in event properties", trackQ, map[string]any{"i": email, "p": map[string]any{"$where": "1"}}, "BAD_USER_INPUT"},
		{"$ne deep in event properties", trackQ, map[string]any{"i": email, "p": map[string]any{"a": []any{map[string]any{"$ne": nil}}}}, "BAD_USER_INPUT"},
		{"$inc in track traits", trackQ, map[string]any{"i": email, "t": map[string]any{"$inc": map[string]any{"score": 1}}}, "BAD_USER_INPUT"},
		{"$where in interaction properties", `mutation($p: ID!, $x: JSON) { logInteraction(input: {profileId: $p, kind: NOTE, properties: $x}) { id } }`,
			map[string]any{"p": w.profile, "x": map[string]any{"$where": "1"}}, "BAD_USER_INPUT"},
		{"$where in consent proof", consentQ, map[string]any{"p": w.profile, "proof": map[string]any{"$where": "1"}}, "BAD_USER_INPUT"},
		{"dotted key in consent proof", consentQ, map[string]any{"p": w.profile, "proof": map[string]any{"form.version": 2}}, "BAD_USER_INPUT"},
		{"operator as a rule's trait key", segQ, map[string]any{"r": trait("$where", "1")}, "BAD_USER_INPUT"},
		{"operator in a rule's trait path", segQ, map[string]any{"r": trait("plan.$gt", "")}, "BAD_USER_INPUT"},
		{"operator as an account rule's trait key", segQ, map[string]any{"r": map[string]any{"account": map[string]any{"traits": []any{trait("$where", "1")["trait"]}}}}, "BAD_USER_INPUT"},
		{"operator in an account rule's trait path", segQ, map[string]any{"r": map[string]any{"account": map[string]any{"traits": []any{trait("tier.$gt", "")["trait"]}}}}, "BAD_USER_INPUT"},
		{"operator as an event filter key", segQ, map[string]any{"r": map[string]any{"event": map[string]any{"name": "order_completed", "where": []any{map[string]any{"key": "$where", "op": "EQ", "value": 1}}}}}, "BAD_USER_INPUT"},
		{"object as an identifier value", `query($v: String!) { profile(identifier: {type: "email", value: $v}) { id } }`, map[string]any{"v": map[string]any{"$gt": ""}}, "GRAPHQL_VALIDATION_FAILED"},
		{"object as a profile id", `query($p: ID) { profile(id: $p) { id } }`, map[string]any{"p": map[string]any{"$ne": nil}}, "GRAPHQL_VALIDATION_FAILED"},
		{"object as a segment id", `mutation($s: ID!) { archiveSegment(id: $s) { id } }`, map[string]any{"s": map[string]any{"$gt": ""}}, "GRAPHQL_VALIDATION_FAILED"},
		{"operator as a purpose key", `mutation { definePurpose(input: {key: "$where"}) { key } }`, nil, "BAD_USER_INPUT"},
		{"operator as an identifier type", `mutation { setIdentifierType(input: {name: "$where"}) { name } }`, nil, "BAD_USER_INPUT"},
		{"$where in account traits", `mutation($t: JSON) { createAccount(input: {name: "Inj", traits: $t}) { id } }`, map[string]any{"t": map[string]any{"$where": "1"}}, "BAD_USER_INPUT"},
		{"operator as an account identifier type", `mutation { createAccount(input: {name: "Inj", identifiers: [{type: "$where", value: "1"}]}) { id } }`, nil, "BAD_USER_INPUT"},
		{"object as an account domain", `mutation($d: [String!]) { createAccount(input: {name: "Inj", domains: $d}) { id } }`, map[string]any{"d": []any{map[string]any{"$gt": ""}}}, "GRAPHQL_VALIDATION_FAILED"},
		{"operator as an ad-hoc sort trait", `{ profiles(sortBy: {by: TRAIT, trait: "$where"}) { totalCount } }`, nil, "BAD_USER_INPUT"},
		{"dotted identifier type", `mutation { setIdentifierType(input: {name: "email.x"}) { name } }`, nil, "BAD_USER_INPUT"},
		{"operator as a ticket's identifier type", `mutation { openTicket(input: {identifier: {type: "$where", value: "1"}, subject: "x"}) { id } }`, nil, "BAD_USER_INPUT"},
		{"object as a ticket's subject", `mutation($s: String!, $p: ID!) { openTicket(input: {profileId: $p, subject: $s}) { id } }`, map[string]any{"p": w.profile, "s": map[string]any{"$gt": ""}}, "GRAPHQL_VALIDATION_FAILED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { w.hostile(t, tok, c.query, c.vars, c.code) })
	}

	// A rule's value is a value: {"$gt": ""} matches a trait equal to that
	// object (nobody), not every profile with a plan.
	for _, c := range []struct {
		name string
		rule map[string]any
	}{
		{"operator object as a trait value", trait("plan", map[string]any{"$gt": ""})},
		{"operator object as an event filter value", map[string]any{"event": map[string]any{"name": "order_completed", "where": []any{map[string]any{"key": "revenue", "op": "EQ", "value": map[string]any{"$ne": nil}}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := w.snapshot(t)
			r := s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`, map[string]any{"r": c.rule})
			if len(r.Errors) > 0 {
				// Refusing it is fine too; anything but an operator.
				r.requireError(t, 0, "BAD_USER_INPUT")
			} else if !strings.Contains(string(r.Data), `"count":0`) {
				t.Fatalf("an operator in a rule value matched profiles: %s", r.Data)
			}
			requireUnchanged(t, before, w.snapshot(t))
		})
	}

	// Search is an indexed prefix read: regex syntax matches nothing.
	for _, q := range []string{".*", "^a", "an.*", "[a-z]+", `{"$gt": ""}`} {
		t.Run("search "+q, func(t *testing.T) {
			r := s.gql(t, tok, `query($q: String) { profiles(search: $q, first: 100) { nodes { id } } }`, map[string]any{"q": q})
			r.requireOK(t)
			if strings.Contains(string(r.Data), `"id"`) {
				t.Fatalf("search %q matched: %s", q, r.Data)
			}
		})
	}
	// So is an account search.
	for _, q := range []string{".*", "^A", "[a-z]+", `{"$gt": ""}`} {
		t.Run("account search "+q, func(t *testing.T) {
			r := s.gql(t, tok, `query($q: String) { accounts(search: $q, first: 100) { totalCount nodes { id } } }`, map[string]any{"q": q})
			r.requireOK(t)
			if strings.Contains(string(r.Data), `"id"`) || !strings.Contains(string(r.Data), `"totalCount":0`) {
				t.Fatalf("account search %q matched: %s", q, r.Data)
			}
		})
	}
	// A queue's assignee is a value: operator text matches nobody.
	for _, a := range []string{`{"$ne": null}`, ".*", "$where"} {
		t.Run("ticket assignee "+a, func(t *testing.T) {
			r := s.gql(t, tok, `query($a: String) { tickets(filter: {assignee: $a}) { totalCount nodes { id } } }`, map[string]any{"a": a})
			r.requireOK(t)
			if !strings.Contains(string(r.Data), `"totalCount":0`) {
				t.Fatalf("assignee %q matched: %s", a, r.Data)
			}
		})
	}
	t.Run("search prefix still works", func(t *testing.T) {
		r := s.gql(t, tok, `{ profiles(search: "an", first: 100) { nodes { id } } }`, nil)
		r.requireOK(t)
		if !strings.Contains(string(r.Data), w.profile) {
			t.Fatalf("search an: %s", r.Data)
		}
	})

	// __proto__ and constructor are plain keys in Go and in BSON: stored as
	// given on the one profile, nothing else gains them.
	t.Run("prototype keys are plain keys", func(t *testing.T) {
		p, _ := identify(t, s, tok, ids("email", "proto@acme.test"), map[string]any{"__proto__": map[string]any{"admin": true}, "constructor": map[string]any{"prototype": map[string]any{"admin": true}}})
		got := getProfile(t, s, tok, map[string]any{"id": p.ID})
		if proto, _ := got.Traits["__proto__"].(map[string]any); proto["admin"] != true {
			t.Fatalf("__proto__ not stored as given: %v", got.Traits)
		}
		other := getProfile(t, s, tok, map[string]any{"id": w.profile})
		if _, ok := other.Traits["admin"]; ok {
			t.Fatalf("another profile gained the key: %v", other.Traits)
		}
		r := s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`,
			map[string]any{"r": map[string]any{"trait": map[string]any{"key": "__proto__.admin", "op": "EQ", "value": true}}})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"count":1`) {
			t.Fatalf("a rule on __proto__.admin: %s", r.Data)
		}
	})
}
