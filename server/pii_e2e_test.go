package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/auth"
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

func TestPIIMaskingE2E(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		admin := s.token(t, "acme") // every scope: pii:read and privacy:admin
		// May read and write profiles, but not see personal data.
		masked := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite)
		inClear := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopePIIRead)

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

		// profiles, listed and searched (by an identifier prefix and by a name).
		for _, q := range []string{"", "ana.co", "costa"} {
			for _, c := range []struct {
				tok    string
				traits map[string]any
				ids    map[string]string
			}{{masked, wantMasked, wantMaskedIDs}, {inClear, wantClear, wantClearIDs}} {
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

		// The defaults, readable by anyone in the workspace.
		if got := piiSettings(t, s, masked); !reflect.DeepEqual(got.IdentifierTypes, []string{"email", "phone"}) || len(got.TraitKeys) == 0 {
			t.Fatalf("default settings %+v", got)
		}
		defaults := piiSettings(t, s, admin)

		// Changing them needs privacy:admin; pii:read is not enough.
		for _, tok := range []string{masked, inClear} {
			wantError(t, setPIISettings(t, s, tok, []string{"ssn"}, nil), "FORBIDDEN", "")
		}
		// Bad input is refused and changes nothing.
		for _, c := range []struct {
			keys, types []string
			field       string
		}{
			{[]string{"ssn"}, []string{"email", "loyaltyCard"}, "identifierTypes[1]"},
			{[]string{"ssn", ""}, nil, "traitKeys[1]"},
			{[]string{strings.Repeat("k", 300)}, nil, "traitKeys[0]"},
			{[]string{"ssn", "$where"}, nil, "traitKeys[1]"},
			{[]string{"address.$gt"}, nil, "traitKeys[0]"},
			{[]string{"address..street"}, nil, "traitKeys[0]"},
		} {
			wantError(t, setPIISettings(t, s, admin, c.keys, c.types), "BAD_USER_INPUT", c.field)
		}
		if got := piiSettings(t, s, admin); !reflect.DeepEqual(got, defaults) {
			t.Fatalf("refused calls changed the settings: %+v", got)
		}

		// A custom key (ssn), a nested one (address.street: the city is no
		// longer masked), names no longer masked, phone no longer masked.
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
		// Seen at once (the cache is dropped by the change), on every path.
		check("profile after the change", *getProfile(t, s, masked, byID), wantMasked2, wantMaskedIDs2)
		for _, n := range profilesPage(t, s, masked, "ana") {
			check("search after the change", n, wantMasked2, wantMaskedIDs2)
		}
		p, _ = identify(t, s, masked, ids("userId", "u-1"), nil)
		check("identify after the change", p, wantMasked2, wantMaskedIDs2)
		check("profile with pii:read after the change", *getProfile(t, s, inClear, byID), wantClear, wantClearIDs)

		// Empty lists turn masking off.
		setPIISettings(t, s, admin, []string{}, []string{}).requireOK(t)
		check("nothing is PII", *getProfile(t, s, masked, byID), wantClear, wantClearIDs)

		// Settings are per workspace.
		if got := piiSettings(t, s, s.token(t, "other")); !reflect.DeepEqual(got, defaults) {
			t.Fatalf("another workspace sees %+v", got)
		}
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
