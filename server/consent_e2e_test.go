package main

// GraphQL and websocket tests of consent: what the mutations, fields and
// subscriptions map to and from the consent service. The consent rules
// (channel override, lawful basis, expiry, history, export filtering,
// input checks) are tested beside the code, in internal/consent.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const consentStateFields = `profileId purpose channel status lawfulBasis grantedAt capturedAt expiresAt source`

type gqlConsentState struct {
	ProfileID   string     `json:"profileId"`
	Purpose     string     `json:"purpose"`
	Channel     string     `json:"channel"`
	Status      string     `json:"status"`
	LawfulBasis string     `json:"lawfulBasis"`
	GrantedAt   *time.Time `json:"grantedAt"`
	CapturedAt  time.Time  `json:"capturedAt"`
	ExpiresAt   *time.Time `json:"expiresAt"`
	Source      *string    `json:"source"`
}

// setConsent records one decision for the person with email and returns
// the resulting state.
func setConsent(t testing.TB, s *testServer, tok, email string, in map[string]any) gqlConsentState {
	t.Helper()
	in["identifier"] = map[string]any{"type": "email", "value": email}
	r := s.gql(t, tok, `mutation($in: SetConsentInput!) { setConsent(input: $in) { `+consentStateFields+` } }`, map[string]any{"in": in})
	r.requireOK(t)
	var out struct{ SetConsent gqlConsentState }
	r.decode(t, &out)
	return out.SetConsent
}

func canContact(t testing.TB, s *testServer, tok, pid, purpose, channel string) bool {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID!, $p: String!, $c: ConsentChannel!) { profile(id: $id) { canContact(purpose: $p, channel: $c) } }`,
		map[string]any{"id": pid, "p": purpose, "c": channel})
	r.requireOK(t)
	var out struct {
		Profile struct{ CanContact bool }
	}
	r.decode(t, &out)
	return out.Profile.CanContact
}

func consentRule(purpose, channel, status string) map[string]any {
	return map[string]any{"consent": map[string]any{"purpose": purpose, "channel": channel, "status": status}}
}

// TestConsentGraphQLRoundTrip: every consent mutation and field once,
// on every engine: inputs reach the service (default channel, proof,
// expiresAt, the choices of setConsents and identify), states come back
// with grantedAt only when GRANTED, consentHistory pages by its cursors,
// canContact and consent segment rules read what was set.
func TestConsentGraphQLRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		s.gql(t, tok, `mutation { definePurpose(input: {key: "service_updates", description: "Service notices", lawfulBasis: LEGITIMATE_INTEREST}) { key } }`, nil).requireOK(t)
		byEmail := createSegment(t, s, tok, map[string]any{"name": "marketing email", "rule": consentRule("marketing", "EMAIL", "GRANTED")})

		anyState := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "status": "GRANTED", "source": "cookie-banner", "proof": map[string]any{"form": "v3"}})
		pid := anyState.ProfileID
		if anyState.Channel != "ANY" || anyState.Status != "GRANTED" || anyState.LawfulBasis != "CONSENT" || anyState.GrantedAt == nil || anyState.Source == nil || *anyState.Source != "cookie-banner" {
			t.Fatalf("ANY state %+v", anyState)
		}
		if !canContact(t, s, tok, pid, "marketing", "EMAIL") || members(t, s, tok, byEmail.ID) != 1 {
			t.Fatal("ANY GRANTED: not allowed on EMAIL, or not in the email segment")
		}
		exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "DENIED", "expiresAt": exp.Format(time.RFC3339)})
		if st.Channel != "EMAIL" || st.Status != "DENIED" || st.GrantedAt != nil || st.ExpiresAt == nil || !st.ExpiresAt.Equal(exp) {
			t.Fatalf("EMAIL state %+v", st)
		}
		if canContact(t, s, tok, pid, "marketing", "EMAIL") || members(t, s, tok, byEmail.ID) != 0 {
			t.Fatal("EMAIL DENIED: canContact or the segment did not follow")
		}

		r := s.gql(t, tok, `mutation($in: SetConsentsInput!) { setConsents(input: $in) { purpose channel status } }`, map[string]any{"in": map[string]any{
			"profileId": pid, "choices": []map[string]any{
				{"purpose": "analytics", "status": "GRANTED", "source": "banner"},
				{"purpose": "service_updates", "channel": "SMS", "status": "WITHDRAWN", "source": "banner"},
			},
		}})
		r.requireOK(t)
		var batch struct {
			SetConsents []struct{ Purpose, Channel, Status string }
		}
		r.decode(t, &batch)
		if len(batch.SetConsents) != 2 || batch.SetConsents[1].Purpose+":"+batch.SetConsents[1].Channel+":"+batch.SetConsents[1].Status != "service_updates:SMS:WITHDRAWN" {
			t.Fatalf("setConsents %+v", batch.SetConsents)
		}
		s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{
			"identifiers": ids("email", "ana@example.com"), "consent": []map[string]any{{"purpose": "profiling", "status": "DENIED"}},
		}}).requireOK(t)

		r = s.gql(t, tok, `query($id: ID!) { profile(id: $id) { consent { purpose channel status } consentHistory(first: 3) { nodes { purpose channel status source proof } pageInfo { hasNextPage endCursor } } } }`, map[string]any{"id": pid})
		r.requireOK(t)
		var out struct {
			Profile struct {
				Consent        []struct{ Purpose, Channel, Status string }
				ConsentHistory struct {
					Nodes []struct {
						Purpose, Channel, Status string
						Source                   *string
						Proof                    map[string]any
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		r.decode(t, &out)
		var got []string
		for _, c := range out.Profile.Consent {
			got = append(got, c.Purpose+":"+c.Channel+":"+c.Status)
		}
		want := []string{"analytics:ANY:GRANTED", "marketing:ANY:GRANTED", "marketing:EMAIL:DENIED", "profiling:ANY:DENIED", "service_updates:SMS:WITHDRAWN"}
		if !slices.Equal(got, want) {
			t.Fatalf("consent %v, want %v", got, want)
		}
		h := out.Profile.ConsentHistory
		if len(h.Nodes) != 3 || h.Nodes[0].Purpose != "profiling" || !h.PageInfo.HasNextPage {
			t.Fatalf("history page 1 %+v", h)
		}
		r = s.gql(t, tok, `query($id: ID!, $after: String) { profile(id: $id) { consentHistory(first: 10, after: $after) { nodes { purpose channel status source proof } pageInfo { hasNextPage } } } }`, map[string]any{"id": pid, "after": h.PageInfo.EndCursor})
		r.requireOK(t)
		r.decode(t, &out)
		h = out.Profile.ConsentHistory
		last := h.Nodes[len(h.Nodes)-1]
		if len(h.Nodes) != 2 || h.PageInfo.HasNextPage || last.Purpose != "marketing" || last.Channel != "ANY" || last.Source == nil || *last.Source != "cookie-banner" || last.Proof["form"] != "v3" {
			t.Fatalf("history page 2 %+v", h)
		}

		r = s.gql(t, tok, `{ consentPurposes { key lawfulBasis builtIn } }`, nil)
		r.requireOK(t)
		var ps struct {
			ConsentPurposes []struct {
				Key, LawfulBasis string
				BuiltIn          bool
			}
		}
		r.decode(t, &ps)
		if n := len(ps.ConsentPurposes); n != 6 || !ps.ConsentPurposes[0].BuiltIn || ps.ConsentPurposes[5].Key != "service_updates" || ps.ConsentPurposes[5].LawfulBasis != "LEGITIMATE_INTEREST" || ps.ConsentPurposes[5].BuiltIn {
			t.Fatalf("purposes %+v", ps.ConsentPurposes)
		}
	})
}

func members(t testing.TB, s *testServer, tok, segID string) int {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID!) { segment(id: $id) { size } }`, map[string]any{"id": segID})
	r.requireOK(t)
	var out struct{ Segment struct{ Size int } }
	r.decode(t, &out)
	return out.Segment.Size
}

type gqlMemberChange struct {
	Kind, Cause string
	Profile     struct{ ID string }
}

func history(t testing.TB, s *testServer, tok, segID string) []gqlMemberChange {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID!) { segment(id: $id) { history(first: 100) { nodes { kind cause profile { id } } } } }`, map[string]any{"id": segID})
	r.requireOK(t)
	var out struct {
		Segment struct {
			History struct{ Nodes []gqlMemberChange }
		}
	}
	r.decode(t, &out)
	return out.Segment.History.Nodes
}

var consentWarm atomic.Int64

func TestConsentWithdrawalExitsAtOnceWebsocket(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "sms marketing", "rule": map[string]any{"and": []any{
		consentRule("marketing", "SMS", "GRANTED"),
		map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}},
	}}})
	// Traits alone do not let ana in.
	p, _ := identify(t, s, tok, ids("email", "ana@example.com"), map[string]any{"plan": "pro"})

	byProfile := connectWS(t, s, tok)
	opConsent := byProfile.subscribe(t, `subscription($p: ID!) { consentChanged(profileId: $p) { `+consentStateFields+` } }`, map[string]any{"p": p.ID})

	ws := connectWS(t, s, tok)
	recv := wsMemRecv(t, ws, ws.subscribe(t, membershipSub, map[string]any{"s": seg.ID}))
	// Warm up: fresh pro profiles granting SMS until the subscription delivers.
	deadline := time.Now().Add(15 * time.Second)
	for live := false; !live; {
		if time.Now().After(deadline) {
			t.Fatal("subscription never became live")
		}
		email := fmt.Sprintf("warm-%d@example.com", consentWarm.Add(1))
		identify(t, s, tok, ids("email", email), map[string]any{"plan": "pro"})
		setConsent(t, s, tok, email, map[string]any{"purpose": "marketing", "channel": "SMS", "status": "GRANTED"})
		if m, ok := recv(300 * time.Millisecond); ok {
			if m.Kind != "ENTERED" || m.Cause != "consent" {
				t.Fatalf("warm-up %+v", m)
			}
			live = true
			for ok {
				_, ok = recv(200 * time.Millisecond)
			}
		}
	}

	setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "status": "GRANTED", "source": "crm"})
	if m, ok := recv(5 * time.Second); !ok || m.Kind != "ENTERED" || m.Cause != "consent" || m.profileID() != p.ID {
		t.Fatalf("grant: %+v %v", m, ok)
	}
	st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "SMS", "status": "WITHDRAWN", "source": "sms-stop"})
	if st.Status != "WITHDRAWN" {
		t.Fatalf("state %+v", st)
	}
	// That the exit is recorded before setConsent returns is
	// internal/consent's TestConsentWithdrawalExitsAtOnce; here, the push.
	if m, ok := recv(5 * time.Second); !ok || m.Kind != "EXITED" || m.Cause != "consent" || m.profileID() != p.ID {
		t.Fatalf("withdrawal: %+v %v", m, ok)
	}

	// consentChanged saw both of ana's changes, in order.
	for _, want := range []string{"ANY:GRANTED", "SMS:WITHDRAWN"} {
		var out struct{ ConsentChanged gqlConsentState }
		if err := json.Unmarshal(byProfile.next(t, opConsent, 5*time.Second), &out); err != nil {
			t.Fatal(err)
		}
		c := out.ConsentChanged
		if c.ProfileID != p.ID || c.Purpose != "marketing" || c.Channel+":"+c.Status != want {
			t.Fatalf("consentChanged %+v, want %s", c, want)
		}
	}
}

// TestConsentExportPagesOverGraphQL: exportSegment's arguments reach the
// export (purpose, channel, first, identifierTypes, traits) and its
// cursors page through it: endCursor skips the members without consent
// after the last one returned, so pages of one return each allowed person
// once. Which people are allowed is internal/consent's
// TestConsentExportNeverLeaks.
func TestConsentExportPagesOverGraphQL(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	choices := [][]map[string]any{
		{{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED"}},
		{{"purpose": "marketing", "status": "GRANTED"}},
		{{"purpose": "marketing", "status": "GRANTED"}, {"purpose": "marketing", "channel": "EMAIL", "status": "DENIED"}},
		nil,
		{{"purpose": "marketing", "status": "DENIED"}},
		{{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED"}},
		nil,
	}
	want := map[string]bool{"p0@example.com": true, "p1@example.com": true, "p5@example.com": true}
	var inputs []map[string]any
	for i, c := range choices {
		inputs = append(inputs, map[string]any{
			"messageId": fmt.Sprintf("signup-%d", i), "identifiers": ids("email", fmt.Sprintf("p%d@example.com", i), "anonymousId", fmt.Sprintf("anon-%d", i)),
			"name": "signup", "traits": map[string]any{"firstName": fmt.Sprintf("P%d", i), "plan": "free"}, "consent": c,
		})
	}
	s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": inputs}).requireOK(t)
	seg := createSegment(t, s, tok, map[string]any{"name": "signed up", "rule": map[string]any{"event": map[string]any{"name": "signup"}}})
	if n := members(t, s, tok, seg.ID); n != len(choices) {
		t.Fatalf("segment has %d members", n)
	}

	got := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(choices) {
			t.Fatal("export does not end")
		}
		vars := map[string]any{"s": seg.ID, "types": []string{"email"}, "traits": []string{"plan"}}
		if after != "" {
			vars["after"] = after
		}
		r := s.gql(t, tok, `query($s: ID!, $after: String, $types: [String!], $traits: [String!]) {
  exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, first: 1, after: $after, identifierTypes: $types, traits: $traits) {
    nodes { profileId identifiers { type value } traits } pageInfo { hasNextPage endCursor } } }`, vars)
		r.requireOK(t)
		var out struct {
			ExportSegment struct {
				Nodes []struct {
					ProfileID   string
					Identifiers []gqlIdentifier
					Traits      map[string]any
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		r.decode(t, &out)
		if len(out.ExportSegment.Nodes) > 1 {
			t.Fatalf("page of %d for first 1", len(out.ExportSegment.Nodes))
		}
		for _, n := range out.ExportSegment.Nodes {
			if len(n.Identifiers) != 1 || n.Identifiers[0].Type != "email" || len(n.Traits) != 1 || n.Traits["plan"] != "free" {
				t.Fatalf("exported %+v", n)
			}
			email := n.Identifiers[0].Value
			if !want[email] || got[email] {
				t.Fatalf("exported %s (allowed: %v, already exported: %v)", email, want[email], got[email])
			}
			got[email] = true
		}
		if !out.ExportSegment.PageInfo.HasNextPage {
			break
		}
		after = *out.ExportSegment.PageInfo.EndCursor
	}
	if len(got) != len(want) {
		t.Fatalf("exported %v, want %v", got, want)
	}
}

// TestConsentBadInput: what only the API decides (scopes, the token's
// workspace, cursors, the field paths the resolvers give) and that the
// service's refusals reach extensions.code and extensions.field; the
// service's own checks are internal/consent's TestConsentBadInput.
func TestConsentBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	other := s.token(t, "globex")
	st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "status": "GRANTED"})
	seg := createSegment(t, s, tok, map[string]any{"name": "all", "rule": map[string]any{"profile": map[string]any{"field": "EVENT_COUNT", "op": "GTE", "value": 0}}})
	email := map[string]any{"type": "email", "value": "bob@example.com"}

	const set = `mutation($in: SetConsentInput!) { setConsent(input: $in) { status } }`
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		tok, code   string
		field       string
	}{
		{"no person", set, map[string]any{"in": map[string]any{"purpose": "marketing", "status": "GRANTED"}}, tok, "BAD_USER_INPUT", "input"},
		{"unknown purpose", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "spam", "status": "GRANTED"}}, tok, "BAD_USER_INPUT", "input.purpose"},
		{"other workspace's profile", set, map[string]any{"in": map[string]any{"profileId": st.ProfileID, "purpose": "marketing", "status": "GRANTED"}}, other, "NOT_FOUND", ""},
		{"no scope", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED"}}, s.token(t, "acme", auth.ScopeProfilesWrite), "FORBIDDEN", ""},
		{"batch: second choice bad", `mutation($in: SetConsentsInput!) { setConsents(input: $in) { status } }`, map[string]any{"in": map[string]any{"identifier": email, "choices": []any{
			map[string]any{"purpose": "marketing", "status": "GRANTED"}, map[string]any{"purpose": "nope", "status": "GRANTED"}}}}, tok, "BAD_USER_INPUT", "input.choices[1].purpose"},
		{"track: bad consent", `mutation($in: TrackInput!) { track(input: $in) { duplicate } }`, map[string]any{"in": map[string]any{"messageId": "m-bad", "identifiers": []any{email}, "name": "x", "consent": []any{map[string]any{"purpose": "marketing", "status": "GRANTED", "source": strings.Repeat("x", 300)}}}}, tok, "BAD_USER_INPUT", "input.consent[0].source"},
		{"define: no scope", `mutation { definePurpose(input: {key: "loyalty"}) { key } }`, nil, s.token(t, "acme", auth.ScopeSegmentsWrite), "FORBIDDEN", ""},
		{"history: bad cursor", `query($id: ID!) { profile(id: $id) { consentHistory(after: "x") { nodes { id } } } }`, map[string]any{"id": st.ProfileID}, tok, "BAD_USER_INPUT", "after"},
		{"rule: unknown purpose", `mutation { createSegment(input: {name: "x", rule: {not: {consent: {purpose: "nope"}}}}) { id } }`, nil, tok, "BAD_USER_INPUT", "input.rule.not.consent.purpose"},
		{"preview: unknown purpose", `{ segmentPreview(rule: {consent: {purpose: "nope"}}) { count } }`, nil, tok, "BAD_USER_INPUT", "rule.consent.purpose"},
		{"export: bad cursor", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, after: "export.x") { nodes { profileId } } }`, map[string]any{"s": seg.ID}, tok, "BAD_USER_INPUT", "after"},
		{"export: other workspace", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL) { nodes { profileId } } }`, map[string]any{"s": seg.ID}, other, "NOT_FOUND", ""},
		{"export: no scope", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL) { nodes { profileId } } }`, map[string]any{"s": seg.ID}, s.token(t, "acme", auth.ScopeProfilesRead), "FORBIDDEN", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, c.tok, c.query, c.vars)
			if len(r.Errors) == 0 {
				t.Fatalf("no error: %s", r.Body)
			}
			e := r.Errors[0]
			if e.Code() != c.code {
				t.Fatalf("code %s, want %s: %s", e.Code(), c.code, r.Body)
			}
			if f, _ := e.Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
	// The refused calls named bob: none created him.
	r := s.gql(t, tok, `{ profile(identifier: {type: "email", value: "bob@example.com"}) { id } }`, nil)
	var out struct{ Profile *struct{ ID string } }
	r.decode(t, &out)
	if out.Profile != nil {
		t.Fatalf("a refused call created bob: %s", r.Body)
	}
}
