package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// limitCases sends operations that cost too much: each is refused before
// any resolver runs, with the code and extensions.limit of its limit.
func (w *secWorld) limitCases(t *testing.T) {
	s := w.s
	tok := s.token(t, "acme")
	seg := map[string]any{"s": w.static}

	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: %s", i, field)
		}
		b.WriteString(" }")
		return b.String()
	}
	// fragments f0..fn-1 where each spreads the previous one twice: 2^n
	// copies of viewer { workspace } in a document of a few hundred bytes.
	bomb := func(n int) string {
		var b strings.Builder
		b.WriteString("query { ...f" + fmt.Sprint(n-1) + " }\nfragment f0 on Query { viewer { workspace } }\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "fragment f%d on Query { ...f%d ...f%d }\n", i, i-1, i-1)
		}
		return b.String()
	}
	identifies := func(n int) string {
		var b strings.Builder
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, ` m%d: identify(input: {identifiers: [{type: "email", value: "alias%d@acme.test"}]}) { profile { id } }`, i, i)
		}
		b.WriteString(" }")
		return b.String()
	}

	cases := []struct {
		name, query string
		vars        map[string]any
		code, limit string
	}{
		{"depth bomb", `query($s: ID!) { segment(id: $s) { members { edges { node { segments { segment { members { edges { node { segments { segment { id } } } } } } } } } } } }`, seg, "GRAPHQL_VALIDATION_FAILED", "depth"},
		{"depth 11 through fragments", `query($s: ID!) { segment(id: $s) { ...m } } fragment m on Segment { members { edges { node { segments { segment { members { edges { node { segments { segment { id } } } } } } } } } } }`, seg, "GRAPHQL_VALIDATION_FAILED", "depth"},
		{"1,000 aliases", aliases(1000, "viewer { workspace }"), nil, "GRAPHQL_VALIDATION_FAILED", "aliases"},
		{"51 aliases", aliases(51, "__typename"), nil, "GRAPHQL_VALIDATION_FAILED", "aliases"},
		{"51 identify calls in one mutation", identifies(51), nil, "GRAPHQL_VALIDATION_FAILED", "aliases"},
		{"fragment bomb (2^20 fields)", bomb(20), nil, "GRAPHQL_VALIDATION_FAILED", "fields"},
		{"fragment cycle", `query { ...a } fragment a on Query { viewer { workspace } ...b } fragment b on Query { ...a }`, nil, "GRAPHQL_VALIDATION_FAILED", ""},
		{"nested pages multiply", `{ profiles(first: 100) { nodes { timeline(first: 100) { nodes { id name } } } } }`, nil, "GRAPHQL_VALIDATION_FAILED", "complexity"},
		{"segment members with their timelines", `query($s: ID!) { segment(id: $s) { members(first: 100) { nodes { id timeline(first: 50) { nodes { id properties } } } } } }`, seg, "GRAPHQL_VALIDATION_FAILED", "complexity"},
		{"huge first", `{ profiles(first: 2147483647) { nodes { id } } }`, nil, "BAD_USER_INPUT", ""},
		{"first beyond 32 bits", `{ profiles(first: 99999999999) { nodes { id } } }`, nil, "BAD_USER_INPUT", ""},
		{"huge nested first", `query($s: ID!) { segment(id: $s) { members(first: 1000000) { nodes { id } } } }`, seg, "BAD_USER_INPUT", ""},
		{"negative first", `query($p: ID) { profile(id: $p) { timeline(first: -5) { nodes { id } } } }`, map[string]any{"p": w.profile}, "BAD_USER_INPUT", ""},
		{"introspection __schema", `{ __schema { types { name } } }`, nil, "GRAPHQL_VALIDATION_FAILED", "introspection"},
		{"introspection __type", `{ __type(name: "Profile") { fields { name } } }`, nil, "GRAPHQL_VALIDATION_FAILED", "introspection"},
		{"introspection in a fragment", `{ ...i } fragment i on Query { __schema { queryType { name } } }`, nil, "GRAPHQL_VALIDATION_FAILED", "introspection"},
		{"trackBatch of 501", `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": events(501)}, "BAD_USER_INPUT", ""},
		{"setConsents of 51", `mutation($p: ID!, $c: [ConsentChoiceInput!]!) { setConsents(input: {profileId: $p, choices: $c}) { status } }`,
			map[string]any{"p": w.profile, "c": choices(51)}, "BAD_USER_INPUT", ""},
		{"static segment of 10,001", `mutation($s: ID!, $p: [ID!]) { addToStaticSegment(segmentId: $s, profileIds: $p) { size } }`,
			map[string]any{"s": w.static, "p": repeatID(w.profile, 10_001)}, "BAD_USER_INPUT", ""},
		{"21 identifiers", `mutation($i: [IdentifierInput!]!) { identify(input: {identifiers: $i}) { profile { id } } }`, map[string]any{"i": anonIDs(21)}, "BAD_USER_INPUT", ""},
		{"two operations, no name", `query a { viewer { workspace } } query b { viewer { workspace } }`, nil, "GRAPHQL_VALIDATION_FAILED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := w.hostile(t, tok, c.query, c.vars, c.code)
			if c.limit != "" && r.Errors[0].Extensions["limit"] != c.limit {
				t.Errorf("want extensions.limit %q: %s", c.limit, truncateBody(r.Body))
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing it took %v", d)
			}
		})
	}

	// Several operations in one JSON array: gqlgen's transports take one
	// operation per request, and the array is refused as a bad body.
	t.Run("batched operations in a JSON array", func(t *testing.T) {
		w.hostileDo(t, "BAD_USER_INPUT", func() gqlResponse {
			body := `[{"query":"mutation { identify(input: {identifiers: [{type: \"email\", value: \"batch1@acme.test\"}]}) { created } }"},` +
				`{"query":"mutation { identify(input: {identifiers: [{type: \"email\", value: \"batch2@acme.test\"}]}) { created } }"}]`
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			r := s.do(t, req, tok)
			if r.Status != http.StatusBadRequest {
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
			return r
		})
	})

	// What the screens of the README and the e2e tests ask stays within
	// the limits.
	legit := []struct{ name, query string }{
		{"360 view", `query($p: ID) { profile(id: $p) { id traits eventCount lastSeenAt identifiers { type value } consent { purpose channel status } segments { segment { id name } enteredAt } merges { id kind at } timeline(first: 100) { edges { cursor node { kind name occurredAt properties } } pageInfo { hasNextPage endCursor } } } }`},
		{"profile list", `{ profiles(first: 100) { edges { cursor node { id traits eventCount lastSeenAt identifiers { type value } } } pageInfo { hasNextPage endCursor } } }`},
		{"segment page", `query($s: ID!) { segment(id: $s) { id name size rule members(first: 100) { edges { enteredAt node { id traits identifiers { type value } } } pageInfo { hasNextPage endCursor } } history(first: 20) { nodes { kind at cause profile { id } } } } }`},
		{"export of 1,000", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, first: 1000) { nodes { profileId identifiers { type value } traits } pageInfo { endCursor } } }`},
		{"depth 10", `query($s: ID!) { segment(id: $s) { members(first: 5) { edges { node { segments { segment { members(first: 5) { edges { node { id } } } } } } } } } }`},
		{"50 aliases", aliases(50, "__typename")},
	}
	for _, c := range legit {
		t.Run("allowed: "+c.name, func(t *testing.T) {
			s.gql(t, tok, c.query, map[string]any{"p": w.profile, "s": w.static}).requireOK(t)
		})
	}
}

func events(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"messageId": fmt.Sprintf("over-%d", i), "identifiers": ids("email", "over@acme.test"), "name": "page_viewed"}
	}
	return out
}

func choices(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"purpose": "analytics", "status": "GRANTED"}
	}
	return out
}

func repeatID(id string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = id
	}
	return out
}

func anonIDs(n int) []map[string]any {
	var out []map[string]any
	for i := range n {
		out = append(out, map[string]any{"type": "anonymousId", "value": fmt.Sprintf("anon-over-%d", i)})
	}
	return out
}

func truncateBody(b []byte) string {
	if len(b) > 500 {
		return string(b[:500]) + "…"
	}
	return string(b)
}

var _ = json.Marshal
