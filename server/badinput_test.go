package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every bad input gets a GraphQL error with a stable code, and a rejected
// call stores nothing.
func TestE2EBadInputIsRejectedAndStoresNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		const identifyQ = `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`
		const trackQ = `mutation($in: TrackInput!) { track(input: $in) { profile { id } } }`
		const batchQ = `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`
		good := ids("email", "ok@example.com")
		deep := map[string]any{"l1": map[string]any{"l2": map[string]any{"l3": map[string]any{"l4": map[string]any{"l5": map[string]any{"l6": 1}}}}}}
		goodEvent := func(id string) map[string]any {
			return map[string]any{"messageId": id, "identifiers": good, "name": "page_viewed"}
		}
		future := time.Now().Add(25 * time.Hour).UTC().Format(time.RFC3339)

		cases := []struct {
			name  string
			query string
			vars  map[string]any
			code  string
		}{
			{"no identifiers", identifyQ, map[string]any{"in": map[string]any{"identifiers": []any{}}}, "BAD_USER_INPUT"},
			{"unknown type", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("shoeSize", "42")}}, "BAD_USER_INPUT"},
			{"empty value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("userId", "")}}, "BAD_USER_INPUT"},
			{"blank value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("userId", "   ")}}, "BAD_USER_INPUT"},
			{"null value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("userId", "null")}}, "BAD_USER_INPUT"},
			{"undefined value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("anonymousId", "undefined")}}, "BAD_USER_INPUT"},
			{"anonymous value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("anonymousId", "Anonymous")}}, "BAD_USER_INPUT"},
			{"zero value", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("crmId", "0")}}, "BAD_USER_INPUT"},
			{"minus one", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("deviceId", "-1")}}, "BAD_USER_INPUT"},
			{"all-zero uuid", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("deviceId", "00000000-0000-0000-0000-000000000000")}}, "BAD_USER_INPUT"},
			{"blocked among good", identifyQ, map[string]any{"in": map[string]any{"identifiers": append(ids("email", "ok@example.com"), ids("userId", "undefined")...)}}, "BAD_USER_INPUT"},
			{"invalid email", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("email", "not-an-email")}}, "BAD_USER_INPUT"},
			{"email with name", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("email", "Ana <ana@example.com>")}}, "BAD_USER_INPUT"},
			{"invalid phone", identifyQ, map[string]any{"in": map[string]any{"identifiers": ids("phone", "call me")}}, "BAD_USER_INPUT"},
			{"dollar trait key", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": map[string]any{"$set": map[string]any{"x": 1}}}}, "BAD_USER_INPUT"},
			{"nested dollar key", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": map[string]any{"a": map[string]any{"$where": "1"}}}}, "BAD_USER_INPUT"},
			{"dotted trait key", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": map[string]any{"a.b": 1}}}, "BAD_USER_INPUT"},
			{"traits too deep", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": deep}}, "BAD_USER_INPUT"},
			{"traits too big", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": map[string]any{"bio": strings.Repeat("x", 17<<10)}}}, "BAD_USER_INPUT"},
			{"traits not an object", identifyQ, map[string]any{"in": map[string]any{"identifiers": good, "traits": []any{1, 2}}}, "BAD_USER_INPUT"},
			{"occurredAt unparseable", trackQ, map[string]any{"in": map[string]any{"messageId": "x1", "identifiers": good, "name": "a", "occurredAt": "yesterday"}}, "BAD_USER_INPUT"},
			{"occurredAt in the future", trackQ, map[string]any{"in": map[string]any{"messageId": "x2", "identifiers": good, "name": "a", "occurredAt": future}}, "BAD_USER_INPUT"},
			{"blank messageId", trackQ, map[string]any{"in": map[string]any{"messageId": " ", "identifiers": good, "name": "a"}}, "BAD_USER_INPUT"},
			{"blank event name", trackQ, map[string]any{"in": map[string]any{"messageId": "x3", "identifiers": good, "name": ""}}, "BAD_USER_INPUT"},
			{"dollar property key", trackQ, map[string]any{"in": map[string]any{"messageId": "x4", "identifiers": good, "name": "a", "properties": map[string]any{"$gt": 1}}}, "BAD_USER_INPUT"},
			{"bad event in a batch", batchQ, map[string]any{"in": []any{goodEvent("b1"), goodEvent("b2"), map[string]any{"messageId": "b3", "identifiers": ids("email", "nope"), "name": "a"}}}, "BAD_USER_INPUT"},
			{"batch too big", batchQ, map[string]any{"in": func() []any {
				var out []any
				for i := 0; i < 501; i++ {
					out = append(out, goodEvent(fmt.Sprintf("big-%d", i)))
				}
				return out
			}()}, "BAD_USER_INPUT"},
			{"first over 100", `{ profiles(first: 101) { nodes { id } } }`, nil, "BAD_USER_INPUT"},
			{"negative first", `{ profiles(first: -1) { nodes { id } } }`, nil, "BAD_USER_INPUT"},
			{"malformed cursor", `{ profiles(after: "garbage") { nodes { id } } }`, nil, "BAD_USER_INPUT"},
			{"malformed cursor payload", `{ profiles(after: "pCREATED_AT_DESC.!!!") { nodes { id } } }`, nil, "BAD_USER_INPUT"},
			{"both id and identifier", `{ profile(id: "x", identifier: {type: "email", value: "a@b.co"}) { id } }`, nil, "BAD_USER_INPUT"},
			{"unknown interaction profile", `mutation { logInteraction(input: {profileId: "nope", kind: CALL}) { id } }`, nil, "NOT_FOUND"},
			{"syntax error", `{ profiles(first: ) }`, nil, "GRAPHQL_PARSE_FAILED"},
			{"unknown field", `{ nope }`, nil, "GRAPHQL_VALIDATION_FAILED"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.gql(t, tok, c.query, c.vars)
				r.requireError(t, 0, c.code)
				for _, e := range r.Errors {
					if strings.Contains(strings.ToLower(e.Message), "goroutine") || strings.Contains(e.Message, "mongo") || strings.Contains(e.Message, "sqlite") {
						t.Fatalf("error leaks internals: %q", e.Message)
					}
				}
			})
		}

		// A malformed timeline cursor, on a real profile (created last, so
		// the "nothing stored" check below counts just this one).
		t.Run("body over 1 MiB", func(t *testing.T) {
			big := `{"query":"{ viewer { workspace } }","variables":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(big))
			req.Header.Set("Content-Type", "application/json")
			s.do(t, req, tok).requireError(t, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
		})

		r := s.gql(t, tok, `{ profiles(first: 100) { nodes { id } } }`, nil)
		r.requireOK(t)
		if strings.Contains(string(r.Data), `"id"`) {
			t.Fatalf("rejected calls stored profiles: %s", r.Data)
		}
		p, _ := identify(t, s, tok, good, nil)
		r = s.gql(t, tok, `query($id: ID) { profile(id: $id) { eventCount timeline(after: "t.AAAA") { nodes { id } } } }`, map[string]any{"id": p.ID})
		r.requireError(t, 0, "BAD_USER_INPUT")
		if got := getProfile(t, s, tok, map[string]any{"id": p.ID}); got.EventCount != 0 {
			t.Fatalf("rejected track calls stored %d events", got.EventCount)
		}
	})
}
