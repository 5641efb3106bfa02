package main

// GraphQL and websocket tests of PII masking: every way personal data
// reaches a client (payloads, queries, lists, previews, subscriptions,
// exports, merge records, timelines) is masked without pii:read and in
// clear with it. What the settings mask, and their checks, are
// internal/privacy's tests.

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const piiSettingsQuery = `query { piiSettings { traitKeys identifierTypes } }`

const setPIISettingsMutation = `mutation($k: [String!]!, $t: [String!]!) { setPIISettings(traitKeys: $k, identifierTypes: $t) { traitKeys identifierTypes } }`

type gqlPIISettings struct {
	TraitKeys       []string `json:"traitKeys"`
	IdentifierTypes []string `json:"identifierTypes"`
}

func piiSettings(t *testing.T, s *testServer, tok string) gqlPIISettings {
	t.Helper()
	r := s.gql(t, tok, piiSettingsQuery, nil)
	r.requireOK(t)
	var out struct{ PiiSettings gqlPIISettings }
	r.decode(t, &out)
	return out.PiiSettings
}

func setPIISettings(t *testing.T, s *testServer, tok string, keys, types []string) gqlResponse {
	t.Helper()
	if keys == nil {
		keys = []string{}
	}
	if types == nil {
		types = []string{}
	}
	return s.gql(t, tok, setPIISettingsMutation, map[string]any{"k": keys, "t": types})
}

// identifierMap is a profile's identifiers by type (one value per type in
// these tests).
func identifierMap(p gqlProfile) map[string]string {
	out := map[string]string{}
	for _, id := range p.Identifiers {
		out[id.Type] = id.Value
	}
	return out
}

// profilesPage runs profiles (list, or search when search != "") and
// returns its nodes.
func profilesPage(t *testing.T, s *testServer, tok, search string) []gqlProfile {
	t.Helper()
	vars := map[string]any{}
	if search != "" {
		vars["q"] = search
	}
	r := s.gql(t, tok, `query($q: String) { profiles(first: 50, search: $q) { nodes { `+profileFields+` } } }`, vars)
	r.requireOK(t)
	var out struct {
		Profiles struct{ Nodes []gqlProfile }
	}
	r.decode(t, &out)
	return out.Profiles.Nodes
}

// TestPIIMaskingE2E: on every engine, the identify payload, profile (by
// id and by identifier), profiles (listed and searched) and a segment
// preview's sample are masked without pii:read and in clear with it;
// searching needs pii:read; the settings need privacy:admin to change and
// a change shows at once.
func TestPIIMaskingE2E(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		admin := s.token(t, "acme") // every scope: pii:read and privacy:admin
		// May read and write profiles and read segments, but not see personal data.
		masked := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite, auth.ScopeSegmentsRead)
		inClear := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopePIIRead, auth.ScopeSegmentsRead)

		traits := map[string]any{
			"firstName": "Ana", "lastName": "Costa", "email": "ana.costa@example.com", "plan": "pro",
			"address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
			"ssn":     "123-45-6789", "visits": int64(3),
		}
		wantMasked := map[string]any{
			"firstName": "A***", "lastName": "C***", "email": "a***@example.com", "plan": "pro",
			"address": map[string]any{"street": "1***", "city": "L***"},
			"ssn":     "123-45-6789", "visits": 3.0,
		}
		wantMaskedIDs := map[string]string{"email": "a***@example.com", "phone": "+1********00", "userId": "u-1"}
		wantClear := map[string]any{
			"firstName": "Ana", "lastName": "Costa", "email": "ana.costa@example.com", "plan": "pro",
			"address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
			"ssn":     "123-45-6789", "visits": 3.0,
		}
		wantClearIDs := map[string]string{"email": "ana.costa@example.com", "phone": "+15550100000", "userId": "u-1"}
		check := func(what string, p gqlProfile, wantTraits map[string]any, wantIDs map[string]string) {
			t.Helper()
			if !reflect.DeepEqual(p.Traits, wantTraits) {
				t.Errorf("%s: traits %v, want %v", what, p.Traits, wantTraits)
			}
			if got := identifierMap(p); !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("%s: identifiers %v, want %v", what, got, wantIDs)
			}
		}

		// The identify payload is masked for the caller who sent the data.
		p, _ := identify(t, s, masked, ids("email", "Ana.Costa@example.com", "phone", "+1 555 010 0000", "userId", "u-1"), traits)
		check("identify payload", p, wantMasked, wantMaskedIDs)
		// A second person, so lists hold more than one.
		identify(t, s, admin, ids("email", "bo@example.org"), map[string]any{"firstName": "Bo"})

		// profile, by id and by an identifier the caller already knows.
		byID := map[string]any{"id": p.ID}
		byEmail := map[string]any{"identifier": map[string]any{"type": "email", "value": "ana.costa@example.com"}}
		for _, v := range []map[string]any{byID, byEmail} {
			check("profile without pii:read", *getProfile(t, s, masked, v), wantMasked, wantMaskedIDs)
			check("profile with pii:read", *getProfile(t, s, inClear, v), wantClear, wantClearIDs)
		}

		// Search matches personal data: without pii:read it is refused
		// (a prefix search would be an oracle, and cursors carry the term).
		for _, q := range []string{"ana.co", "costa", "b"} {
			s.gql(t, masked, `query($q: String) { profiles(first: 5, search: $q) { nodes { id } pageInfo { endCursor } } }`, map[string]any{"q": q}).
				requireError(t, 200, "FORBIDDEN")
		}
		// profiles, listed (both tokens) and searched (by an identifier
		// prefix and by a name, with pii:read).
		for _, q := range []string{"", "ana.co", "costa"} {
			for _, c := range []struct {
				tok    string
				traits map[string]any
				ids    map[string]string
			}{{masked, wantMasked, wantMaskedIDs}, {inClear, wantClear, wantClearIDs}} {
				if q != "" && c.tok == masked {
					continue // refused above
				}
				found := false
				for _, n := range profilesPage(t, s, c.tok, q) {
					if n.ID == p.ID {
						found = true
						check("profiles(search: "+q+")", n, c.traits, c.ids)
					} else if q == "" && c.tok == masked && n.Traits["firstName"] != "B***" {
						t.Errorf("second profile in the list: %v", n.Traits)
					}
				}
				if !found {
					t.Errorf("profiles(search: %q) did not return %s", q, p.ID)
				}
			}
		}

		// A segment preview's sample is masked the same.
		rule := map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}
		r := s.gql(t, masked, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { sample { `+profileFields+` } } }`, map[string]any{"r": rule})
		r.requireOK(t)
		var pv struct {
			SegmentPreview struct{ Sample []gqlProfile }
		}
		r.decode(t, &pv)
		if len(pv.SegmentPreview.Sample) != 1 {
			t.Fatalf("preview sample: %s", r.Body)
		}
		check("segment preview", pv.SegmentPreview.Sample[0], wantMasked, wantMaskedIDs)

		// The settings are readable by anyone in the workspace; changing
		// them needs privacy:admin (pii:read is not enough).
		if got := piiSettings(t, s, masked); !reflect.DeepEqual(got.IdentifierTypes, []string{"email", "phone"}) || len(got.TraitKeys) == 0 {
			t.Fatalf("default settings %+v", got)
		}
		for _, tok := range []string{masked, inClear} {
			wantError(t, setPIISettings(t, s, tok, []string{"ssn"}, nil), "FORBIDDEN", "")
		}
		wantError(t, setPIISettings(t, s, admin, []string{"ssn"}, []string{"email", "loyaltyCard"}), "BAD_USER_INPUT", "identifierTypes[1]")

		// A change is returned as stored and masks by the new settings at
		// once (which values: internal/privacy's TestPIIMaskingStoredProfile).
		r = setPIISettings(t, s, admin, []string{"ssn", "address.street", "email", "email"}, []string{"email"})
		r.requireOK(t)
		var set struct{ SetPIISettings gqlPIISettings }
		r.decode(t, &set)
		want := gqlPIISettings{TraitKeys: []string{"ssn", "address.street", "email"}, IdentifierTypes: []string{"email"}}
		if !reflect.DeepEqual(set.SetPIISettings, want) {
			t.Fatalf("setPIISettings returned %+v, want %+v", set.SetPIISettings, want)
		}
		if got := piiSettings(t, s, masked); !reflect.DeepEqual(got, want) {
			t.Fatalf("piiSettings after the change %+v", got)
		}
		wantMasked2 := map[string]any{
			"firstName": "Ana", "lastName": "Costa", "email": "a***@example.com", "plan": "pro",
			"address": map[string]any{"street": "1***", "city": "Lisbon"},
			"ssn":     "1***", "visits": 3.0,
		}
		wantMaskedIDs2 := map[string]string{"email": "a***@example.com", "phone": "+15550100000", "userId": "u-1"}
		check("profile after the change", *getProfile(t, s, masked, byID), wantMasked2, wantMaskedIDs2)
		check("profile with pii:read after the change", *getProfile(t, s, inClear, byID), wantClear, wantClearIDs)
	})
}

// TestPIIMaskingSubscription: profileUpdated is masked by the same field
// resolvers, with the subscriber's token.
func TestPIIMaskingSubscription(t *testing.T) {
	s := startServer(t, serverOptions{})
	admin := s.token(t, "acme")
	masked := s.token(t, "acme", auth.ScopeProfilesRead)
	p, _ := identify(t, s, admin, ids("userId", "u-9"), nil)

	c := connectWS(t, s, masked)
	op := c.subscribe(t, `subscription($id: ID!) { profileUpdated(id: $id) { id traits identifiers { type value } } }`, map[string]any{"id": p.ID})
	var got struct {
		ProfileUpdated gqlProfile `json:"profileUpdated"`
	}
	// Live once the resolver has subscribed: write until an update comes.
	deadline := time.Now().Add(10 * time.Second)
	for got.ProfileUpdated.ID == "" && time.Now().Before(deadline) {
		identify(t, s, admin, ids("userId", "u-9", "email", "zoe@example.com"), map[string]any{"name": "Zoe Diaz", "plan": "free"})
		select {
		case m := <-c.msgs:
			if m.ID != op || m.Type != "next" {
				t.Fatalf("unexpected %s %s", m.Type, m.Payload)
			}
			var pl struct{ Data json.RawMessage }
			if err := json.Unmarshal(m.Payload, &pl); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(pl.Data, &got); err != nil {
				t.Fatal(err)
			}
		case <-time.After(300 * time.Millisecond):
		}
	}
	u := got.ProfileUpdated
	if u.ID != p.ID || u.Traits["name"] != "Z***" || u.Traits["plan"] != "free" {
		t.Fatalf("profileUpdated traits %+v", u)
	}
	if got := identifierMap(u); got["email"] != "z***@example.com" || got["userId"] != "u-9" {
		t.Fatalf("profileUpdated identifiers %v", got)
	}
}

// TestPIIMaskingSegmentExport: exportSegment's members are masked like
// profiles.
func TestPIIMaskingSegmentExport(t *testing.T) {
	s := startServer(t, serverOptions{})
	admin := s.token(t, "acme")
	masked := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeSegmentsRead)
	r := s.gql(t, admin, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{
		"identifiers": ids("email", "ana@example.com", "phone", "+447700900123", "userId", "u-1"),
		"traits":      map[string]any{"firstName": "Ana", "plan": "pro"},
		"consent":     []map[string]any{{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED"}},
	}})
	r.requireOK(t)
	seg := createSegment(t, s, admin, map[string]any{"name": "pros", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}})

	export := func(tok string) (traits map[string]any, identifiers map[string]string) {
		t.Helper()
		r := s.gql(t, tok, `query($id: ID!) { exportSegment(segmentId: $id, purpose: "marketing", channel: EMAIL) { nodes { profileId traits identifiers { type value } } } }`, map[string]any{"id": seg.ID})
		r.requireOK(t)
		var out struct {
			ExportSegment struct{ Nodes []gqlProfile }
		}
		r.decode(t, &out)
		if len(out.ExportSegment.Nodes) != 1 {
			t.Fatalf("export: %s", r.Body)
		}
		n := out.ExportSegment.Nodes[0]
		return n.Traits, identifierMap(n)
	}
	traits, got := export(masked)
	if !reflect.DeepEqual(traits, map[string]any{"firstName": "A***", "plan": "pro"}) ||
		!reflect.DeepEqual(got, map[string]string{"email": "a***@example.com", "phone": "+44********23", "userId": "u-1"}) {
		t.Fatalf("export without pii:read: %v %v", traits, got)
	}
	traits, got = export(admin)
	if traits["firstName"] != "Ana" || got["email"] != "ana@example.com" || got["phone"] != "+447700900123" {
		t.Fatalf("export with pii:read: %v %v", traits, got)
	}
}

// Merge records and identify conflicts show identifier values and trait
// values too: masked the same way without pii:read.
func TestPIIMaskingMergeRecordsAndConflicts(t *testing.T) {
	s := startServer(t, serverOptions{})
	masked := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite)
	inClear := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopePIIRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite)
	// The older profile has the email; the younger one a phone and a
	// contested first name. Identifying both merges the younger into it.
	a, _ := identify(t, s, inClear, ids("email", "zoe@example.com"), map[string]any{"firstName": "Zoe"})
	identify(t, s, inClear, ids("anonymousId", "dev-9", "phone", "+1 555 010 9999"), map[string]any{"firstName": "Zoey"})
	identify(t, s, inClear, ids("email", "zoe@example.com", "anonymousId", "dev-9"), nil)

	const q = `query($id: ID!) { profile(id: $id) { merges { identifiers { type value } traits { key won lost } } } }`
	type merges struct {
		Profile struct {
			Merges []struct {
				Identifiers []gqlIdentifier
				Traits      []struct {
					Key       string
					Won, Lost any
				}
			}
		}
	}
	read := func(tok string) merges {
		r := s.gql(t, tok, q, map[string]any{"id": a.ID})
		r.requireOK(t)
		var out merges
		r.decode(t, &out)
		if len(out.Profile.Merges) != 1 {
			t.Fatalf("merges: %s", r.Data)
		}
		return out
	}
	values := func(m merges) string {
		var b strings.Builder
		for _, id := range m.Profile.Merges[0].Identifiers {
			b.WriteString(id.Type + "=" + id.Value + " ")
		}
		for _, d := range m.Profile.Merges[0].Traits {
			b.WriteString(d.Key + ":" + fmtAny(d.Won) + "/" + fmtAny(d.Lost) + " ")
		}
		return b.String()
	}
	if got := values(read(inClear)); !strings.Contains(got, "phone=+15550109999") || !strings.Contains(got, "firstName:") || !strings.Contains(got, "Zoe") {
		t.Fatalf("with pii:read: %s", got)
	}
	got := values(read(masked))
	if strings.Contains(got, "5550109999") || strings.Contains(got, "Zoe") || !strings.Contains(got, "phone=+1********99") || !strings.Contains(got, "Z***") {
		t.Fatalf("without pii:read: %s", got)
	}

	// A unique-type conflict reports the other value: masked too when the
	// type is PII (email by default).
	if r := setPIISettings(t, s, s.token(t, "acme"), []string{"firstName"}, []string{"email", "phone", "userId"}); r.Errors != nil {
		t.Fatalf("settings: %s", r.Body)
	}
	identify(t, s, inClear, ids("userId", "u-zoe", "email", "zoe@example.com"), nil)
	const idq = `mutation($in: IdentifyInput!) { identify(input: $in) { conflicts { type values } } }`
	in := map[string]any{"in": map[string]any{"identifiers": ids("email", "zoe@example.com", "userId", "u-other")}}
	for tok, want := range map[string]string{inClear: "u-other", masked: "u***"} {
		r := s.gql(t, tok, idq, in)
		r.requireOK(t)
		if !strings.Contains(string(r.Data), want) || (tok == masked && strings.Contains(string(r.Data), "u-zoe")) {
			t.Fatalf("conflicts: %s, want %s", r.Data, want)
		}
	}
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Event properties under a PII trait key are masked in timelines too;
// other properties are not.
func TestPIIMaskingEventProperties(t *testing.T) {
	s := startServer(t, serverOptions{})
	masked := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeEventsWrite)
	inClear := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopePIIRead)
	r := s.gql(t, masked, `mutation($in: TrackInput!) { track(input: $in) { profile { id } event { properties } } }`, map[string]any{"in": map[string]any{
		"messageId": "signup-1", "identifiers": ids("anonymousId", "dev-p"), "name": "signed_up",
		"properties": map[string]any{"email": "pat@example.com", "plan": "pro", "address": map[string]any{"city": "Porto"}},
	}})
	r.requireOK(t)
	var out struct {
		Track struct {
			Profile struct{ ID string }
			Event   struct{ Properties map[string]any }
		}
	}
	r.decode(t, &out)
	want := map[string]any{"email": "p***@example.com", "plan": "pro", "address": map[string]any{"city": "P***"}}
	if !reflect.DeepEqual(out.Track.Event.Properties, want) {
		t.Fatalf("track payload properties %v, want %v", out.Track.Event.Properties, want)
	}
	const q = `query($id: ID!) { profile(id: $id) { timeline(first: 5) { nodes { properties } } } }`
	for tok, want := range map[string]map[string]any{
		masked:  want,
		inClear: {"email": "pat@example.com", "plan": "pro", "address": map[string]any{"city": "Porto"}},
	} {
		r := s.gql(t, tok, q, map[string]any{"id": out.Track.Profile.ID})
		r.requireOK(t)
		var tl struct {
			Profile struct {
				Timeline struct {
					Nodes []struct{ Properties map[string]any }
				}
			}
		}
		r.decode(t, &tl)
		if n := tl.Profile.Timeline.Nodes; len(n) != 1 || !reflect.DeepEqual(n[0].Properties, want) {
			t.Fatalf("timeline properties %+v, want %v", n, want)
		}
	}
}
