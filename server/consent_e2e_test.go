package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
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

func TestConsentChannelOverrideAndReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		s.gql(t, tok, `mutation { definePurpose(input: {key: "service_updates", description: "Service notices", lawfulBasis: LEGITIMATE_INTEREST}) { key } }`, nil).requireOK(t)

		// Gated segments: marketing by email, and people who denied it.
		byEmail := createSegment(t, s, tok, map[string]any{"name": "marketing email", "rule": consentRule("marketing", "EMAIL", "GRANTED")})
		denied := createSegment(t, s, tok, map[string]any{"name": "marketing email denied", "rule": consentRule("marketing", "EMAIL", "DENIED")})

		anyState := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "status": "GRANTED", "source": "cookie-banner", "proof": map[string]any{"form": "v3"}})
		pid := anyState.ProfileID
		if anyState.Channel != "ANY" || anyState.Status != "GRANTED" || anyState.LawfulBasis != "CONSENT" || anyState.GrantedAt == nil || anyState.Source == nil || *anyState.Source != "cookie-banner" {
			t.Fatalf("ANY state %+v", anyState)
		}
		for _, ch := range []string{"EMAIL", "SMS", "ANY"} {
			if !canContact(t, s, tok, pid, "marketing", ch) {
				t.Fatalf("ANY GRANTED: canContact(marketing, %s) false", ch)
			}
		}
		if members(t, s, tok, byEmail.ID) != 1 {
			t.Fatal("ANY GRANTED: not in the email segment")
		}

		// The channel's own record overrides ANY, for that channel only.
		st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "DENIED"})
		if st.Channel != "EMAIL" || st.Status != "DENIED" || st.GrantedAt != nil {
			t.Fatalf("EMAIL state %+v", st)
		}
		if canContact(t, s, tok, pid, "marketing", "EMAIL") {
			t.Fatal("EMAIL DENIED overrides ANY GRANTED, but canContact(marketing, EMAIL) is true")
		}
		if !canContact(t, s, tok, pid, "marketing", "SMS") || !canContact(t, s, tok, pid, "marketing", "ANY") {
			t.Fatal("EMAIL DENIED must not change SMS / ANY")
		}
		if members(t, s, tok, byEmail.ID) != 0 || members(t, s, tok, denied.ID) != 1 {
			t.Fatal("EMAIL DENIED: segments did not follow")
		}
		// A record captured before the current one is history only.
		old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		st = setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED", "capturedAt": old})
		if st.Status != "DENIED" || canContact(t, s, tok, pid, "marketing", "EMAIL") {
			t.Fatalf("an older record changed the state: %+v", st)
		}

		// Lawful basis without a record: CONSENT no, others yes, unless objected.
		if canContact(t, s, tok, pid, "analytics", "WEB") {
			t.Fatal("analytics (CONSENT) without a record is allowed")
		}
		if !canContact(t, s, tok, pid, "service_updates", "EMAIL") {
			t.Fatal("service_updates (LEGITIMATE_INTEREST) without a record is refused")
		}

		// A banner submission sets several at once; identify carries consent too.
		r := s.gql(t, tok, `mutation($in: SetConsentsInput!) { setConsents(input: $in) { purpose channel status } }`, map[string]any{"in": map[string]any{
			"profileId": pid, "choices": []map[string]any{
				{"purpose": "analytics", "status": "GRANTED", "source": "banner"},
				{"purpose": "service_updates", "channel": "SMS", "status": "WITHDRAWN", "source": "banner"},
			},
		}})
		r.requireOK(t)
		if canContact(t, s, tok, pid, "service_updates", "SMS") || !canContact(t, s, tok, pid, "analytics", "WEB") {
			t.Fatal("setConsents not applied")
		}
		r = s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id consent { purpose channel status } } } }`, map[string]any{"in": map[string]any{
			"identifiers": ids("email", "ana@example.com"), "consent": []map[string]any{{"purpose": "profiling", "status": "DENIED"}},
		}})
		r.requireOK(t)

		// Reads: the current states, and the log newest first.
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
		if len(h.Nodes) != 3 || h.PageInfo.HasNextPage || last.Purpose != "marketing" || last.Channel != "ANY" || last.Proof["form"] != "v3" {
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
		if len(ps.ConsentPurposes) != 6 || ps.ConsentPurposes[0].Key != "analytics" || ps.ConsentPurposes[5].Key != "service_updates" || ps.ConsentPurposes[5].BuiltIn {
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

func TestConsentExpiryExitsSegment(t *testing.T) {
	clock := app.NewManualClock(time.Now().UTC())
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "newsletter", "rule": consentRule("marketing", "EMAIL", "GRANTED")})

	start := clock.Now()
	exp := start.Add(48 * time.Hour).Format(time.RFC3339Nano)
	st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED", "expiresAt": exp})
	pid := st.ProfileID
	if st.ExpiresAt == nil || !canContact(t, s, tok, pid, "marketing", "EMAIL") {
		t.Fatalf("granted state %+v", st)
	}
	if h := history(t, s, tok, seg.ID); len(h) != 1 || h[0].Kind != "ENTERED" || h[0].Cause != "consent" {
		t.Fatalf("history %+v", h)
	}

	// One day on: still granted, still a member.
	clock.Set(start.Add(24 * time.Hour))
	if !canContact(t, s, tok, pid, "marketing", "EMAIL") {
		t.Fatal("granted before expiry")
	}
	// Past expiresAt: not granted, and the sweeper takes ana out (cause time).
	clock.Set(start.Add(49 * time.Hour))
	if canContact(t, s, tok, pid, "marketing", "EMAIL") {
		t.Fatal("still granted after expiry")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := history(t, s, tok, seg.ID)
		if len(h) == 2 {
			if h[0].Kind != "EXITED" || h[0].Cause != "time" || h[0].Profile.ID != pid {
				t.Fatalf("history %+v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EXITED after expiry: %+v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := s.gql(t, tok, `query($id: ID!) { profile(id: $id) { consent { purpose } consentHistory { nodes { status expiresAt } } } }`, map[string]any{"id": pid})
	r.requireOK(t)
	var out struct {
		Profile struct {
			Consent        []struct{ Purpose string }
			ConsentHistory struct{ Nodes []struct{ Status string } }
		}
	}
	r.decode(t, &out)
	if len(out.Profile.Consent) != 0 || len(out.Profile.ConsentHistory.Nodes) != 1 {
		t.Fatalf("after expiry: %+v", out.Profile)
	}
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
	// At once: recorded before setConsent returned...
	if h := history(t, s, tok, seg.ID); h[0].Kind != "EXITED" || h[0].Cause != "consent" || h[0].Profile.ID != p.ID {
		t.Fatalf("history right after the withdrawal: %+v", h[0])
	}
	// ...and pushed to the subscriber.
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

// TestConsentExportNeverLeaks: 1,000 profiles with random consent for
// marketing on ANY and EMAIL (some expiring), one segment holding all of
// them; exportSegment(marketing, EMAIL) must return exactly the people
// allowed (the channel's live record, else ANY's, else no), page by page.
func TestConsentExportNeverLeaks(t *testing.T) {
	clock := app.NewManualClock(time.Now().UTC().Truncate(time.Millisecond))
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)

	start := clock.Now()
	statuses := []string{"GRANTED", "DENIED", "WITHDRAWN"}
	type rec struct {
		status  string
		expires time.Time // zero: never
	}
	type person struct {
		email     string
		any, mail *rec
	}
	people := make([]person, 1000)
	var inputs []map[string]any
	for i := range people {
		p := person{email: fmt.Sprintf("p%04d@example.com", i)}
		var choices []map[string]any
		for _, ch := range []string{"ANY", "EMAIL"} {
			if rng.IntN(3) == 0 {
				continue // no record
			}
			r := &rec{status: statuses[rng.IntN(3)]}
			c := map[string]any{"purpose": "marketing", "channel": ch, "status": r.status, "source": "import"}
			if rng.IntN(3) == 0 {
				r.expires = start.Add(time.Duration(1+rng.IntN(4)) * time.Hour) // half expire before the export
				c["expiresAt"] = r.expires.Format(time.RFC3339Nano)
			}
			choices = append(choices, c)
			if ch == "ANY" {
				p.any = r
			} else {
				p.mail = r
			}
		}
		people[i] = p
		inputs = append(inputs, map[string]any{
			"messageId": fmt.Sprintf("signup-%d", i), "identifiers": ids("email", p.email, "anonymousId", fmt.Sprintf("anon-%d", i)),
			"name": "signup", "traits": map[string]any{"firstName": fmt.Sprintf("P%d", i), "plan": "free"}, "consent": choices,
		})
	}
	for i := 0; i < len(inputs); i += 500 {
		r := s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": inputs[i : i+500]})
		r.requireOK(t)
	}
	seg := createSegment(t, s, tok, map[string]any{"name": "signed up", "rule": map[string]any{"event": map[string]any{"name": "signup"}}})
	if n := members(t, s, tok, seg.ID); n != 1000 {
		t.Fatalf("segment has %d members", n)
	}

	clock.Set(start.Add(150 * time.Minute))
	now := clock.Now()
	live := func(r *rec) bool { return r != nil && (r.expires.IsZero() || now.Before(r.expires)) }
	want := map[string]bool{}
	for _, p := range people {
		switch {
		case live(p.mail):
			want[p.email] = p.mail.status == "GRANTED"
		case live(p.any):
			want[p.email] = p.any.status == "GRANTED"
		}
	}

	got := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("export does not end")
		}
		vars := map[string]any{"s": seg.ID, "first": 1 + rng.IntN(150), "types": []string{"email"}, "traits": []string{"plan"}}
		if after != "" {
			vars["after"] = after
		}
		r := s.gql(t, tok, `query($s: ID!, $first: Int, $after: String, $types: [String!], $traits: [String!]) {
  exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, first: $first, after: $after, identifierTypes: $types, traits: $traits) {
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
		if len(out.ExportSegment.Nodes) > vars["first"].(int) {
			t.Fatalf("page of %d for first %d", len(out.ExportSegment.Nodes), vars["first"])
		}
		for _, n := range out.ExportSegment.Nodes {
			if len(n.Identifiers) != 1 || n.Identifiers[0].Type != "email" || len(n.Traits) != 1 || n.Traits["plan"] != "free" {
				t.Fatalf("exported %+v", n)
			}
			email := n.Identifiers[0].Value
			if !want[email] {
				t.Fatalf("exported %s without consent for marketing on EMAIL (seed %d)", email, seed)
			}
			if got[email] {
				t.Fatalf("exported %s twice", email)
			}
			got[email] = true
		}
		if !out.ExportSegment.PageInfo.HasNextPage {
			break
		}
		after = *out.ExportSegment.PageInfo.EndCursor
	}
	allowed := 0
	for email, ok := range want {
		if ok {
			allowed++
			if !got[email] {
				t.Fatalf("%s has consent but was not exported (seed %d)", email, seed)
			}
		}
	}
	if allowed < 100 || allowed > 900 {
		t.Fatalf("degenerate: %d allowed", allowed)
	}
	t.Logf("%d of 1000 exported", allowed)
}

func TestConsentBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	other := s.token(t, "globex")
	st := setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "status": "GRANTED"})
	seg := createSegment(t, s, tok, map[string]any{"name": "all", "rule": map[string]any{"profile": map[string]any{"field": "EVENT_COUNT", "op": "GTE", "value": 0}}})
	email := map[string]any{"type": "email", "value": "bob@example.com"}
	future := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339)

	const set = `mutation($in: SetConsentInput!) { setConsent(input: $in) { status } }`
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		tok, code   string
		field       string
	}{
		{"no person", set, map[string]any{"in": map[string]any{"purpose": "marketing", "status": "GRANTED"}}, tok, "BAD_USER_INPUT", "input"},
		{"both persons", set, map[string]any{"in": map[string]any{"profileId": st.ProfileID, "identifier": email, "purpose": "marketing", "status": "GRANTED"}}, tok, "BAD_USER_INPUT", "input"},
		{"unknown purpose", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "spam", "status": "GRANTED"}}, tok, "BAD_USER_INPUT", "input.purpose"},
		{"expires before captured", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "capturedAt": past, "expiresAt": past}}, tok, "BAD_USER_INPUT", "input.expiresAt"},
		{"already expired", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "capturedAt": past, "expiresAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}, tok, "BAD_USER_INPUT", "input.expiresAt"},
		{"captured in the future", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "capturedAt": future}}, tok, "BAD_USER_INPUT", "input.capturedAt"},
		{"long source", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "source": strings.Repeat("x", 201)}}, tok, "BAD_USER_INPUT", "input.source"},
		{"proof not an object", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "proof": []any{1}}}, tok, "BAD_USER_INPUT", "input.proof"},
		{"proof injection", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED", "proof": map[string]any{"$where": 1}}}, tok, "BAD_USER_INPUT", "input.proof"},
		{"unknown profile", set, map[string]any{"in": map[string]any{"profileId": "nope", "purpose": "marketing", "status": "GRANTED"}}, tok, "NOT_FOUND", ""},
		{"other workspace's profile", set, map[string]any{"in": map[string]any{"profileId": st.ProfileID, "purpose": "marketing", "status": "GRANTED"}}, other, "NOT_FOUND", ""},
		{"no scope", set, map[string]any{"in": map[string]any{"identifier": email, "purpose": "marketing", "status": "GRANTED"}}, s.token(t, "acme", auth.ScopeProfilesWrite), "FORBIDDEN", ""},
		{"batch: second choice bad", `mutation($in: SetConsentsInput!) { setConsents(input: $in) { status } }`, map[string]any{"in": map[string]any{"identifier": email, "choices": []any{
			map[string]any{"purpose": "marketing", "status": "GRANTED"}, map[string]any{"purpose": "nope", "status": "GRANTED"}}}}, tok, "BAD_USER_INPUT", "input.choices[1].purpose"},
		{"batch: empty", `mutation($in: SetConsentsInput!) { setConsents(input: $in) { status } }`, map[string]any{"in": map[string]any{"identifier": email, "choices": []any{}}}, tok, "BAD_USER_INPUT", "input.choices"},
		{"identify: bad consent", `mutation($in: IdentifyInput!) { identify(input: $in) { created } }`, map[string]any{"in": map[string]any{"identifiers": []any{email}, "consent": []any{map[string]any{"purpose": "nope", "status": "GRANTED"}}}}, tok, "BAD_USER_INPUT", "input.consent[0].purpose"},
		{"track: bad consent", `mutation($in: TrackInput!) { track(input: $in) { duplicate } }`, map[string]any{"in": map[string]any{"messageId": "m-bad", "identifiers": []any{email}, "name": "x", "consent": []any{map[string]any{"purpose": "marketing", "status": "GRANTED", "source": strings.Repeat("x", 300)}}}}, tok, "BAD_USER_INPUT", "input.consent[0].source"},
		{"define: bad key", `mutation { definePurpose(input: {key: "Bad Key"}) { key } }`, nil, tok, "BAD_USER_INPUT", "input.key"},
		{"define: built-in", `mutation { definePurpose(input: {key: "marketing", lawfulBasis: CONTRACT}) { key } }`, nil, tok, "BAD_USER_INPUT", "input.key"},
		{"define: no scope", `mutation { definePurpose(input: {key: "loyalty"}) { key } }`, nil, s.token(t, "acme", auth.ScopeSegmentsWrite), "FORBIDDEN", ""},
		{"canContact: unknown purpose", `query($id: ID!) { profile(id: $id) { canContact(purpose: "nope", channel: EMAIL) } }`, map[string]any{"id": st.ProfileID}, tok, "BAD_USER_INPUT", "purpose"},
		{"history: bad cursor", `query($id: ID!) { profile(id: $id) { consentHistory(after: "x") { nodes { id } } } }`, map[string]any{"id": st.ProfileID}, tok, "BAD_USER_INPUT", "after"},
		{"rule: unknown purpose", `mutation { createSegment(input: {name: "x", rule: {not: {consent: {purpose: "nope"}}}}) { id } }`, nil, tok, "BAD_USER_INPUT", "input.rule.not.consent.purpose"},
		{"preview: unknown purpose", `{ segmentPreview(rule: {consent: {purpose: "nope"}}) { count } }`, nil, tok, "BAD_USER_INPUT", "rule.consent.purpose"},
		{"export: unknown segment", `{ exportSegment(segmentId: "nope", purpose: "marketing", channel: EMAIL) { nodes { profileId } } }`, nil, tok, "NOT_FOUND", ""},
		{"export: unknown purpose", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "nope", channel: EMAIL) { nodes { profileId } } }`, map[string]any{"s": seg.ID}, tok, "BAD_USER_INPUT", "purpose"},
		{"export: first 0", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, first: 0) { nodes { profileId } } }`, map[string]any{"s": seg.ID}, tok, "BAD_USER_INPUT", "first"},
		{"export: first 1001", `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL, first: 1001) { nodes { profileId } } }`, map[string]any{"s": seg.ID}, tok, "BAD_USER_INPUT", "first"},
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
	// Nothing of the refused calls was stored: bob does not exist, ana's log holds one record.
	r := s.gql(t, tok, `{ profile(identifier: {type: "email", value: "bob@example.com"}) { id } }`, nil)
	var out struct{ Profile *struct{ ID string } }
	r.decode(t, &out)
	if out.Profile != nil {
		t.Fatalf("a refused call created bob: %s", r.Body)
	}
	r = s.gql(t, tok, `query($id: ID!) { profile(id: $id) { consentHistory { nodes { id } } } }`, map[string]any{"id": st.ProfileID})
	r.requireOK(t)
	if n := strings.Count(string(r.Data), `"id"`); n != 1 {
		t.Fatalf("ana's log: %s", r.Data)
	}
}
