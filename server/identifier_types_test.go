package main

// End-to-end tests of per-workspace identifier types (identifierTypes,
// setIdentifierType) and their effect on identify, track and profile.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const identifierTypeFields = `name normalization defaultRegion maxPerProfile priority unique blockedValues`

type gqlIdentifierType struct {
	Name          string   `json:"name"`
	Normalization string   `json:"normalization"`
	DefaultRegion *string  `json:"defaultRegion"`
	MaxPerProfile int      `json:"maxPerProfile"`
	Priority      int      `json:"priority"`
	Unique        bool     `json:"unique"`
	BlockedValues []string `json:"blockedValues"`
}

func identifierTypes(t *testing.T, s *testServer, tok string) map[string]gqlIdentifierType {
	t.Helper()
	r := s.gql(t, tok, `{ identifierTypes { `+identifierTypeFields+` } }`, nil)
	r.requireOK(t)
	var out struct{ IdentifierTypes []gqlIdentifierType }
	r.decode(t, &out)
	m := map[string]gqlIdentifierType{}
	var names []string
	for _, it := range out.IdentifierTypes {
		m[it.Name] = it
		names = append(names, it.Name)
	}
	if len(names) < 6 || !slices.Equal(names[:6], []string{"anonymousId", "userId", "email", "phone", "deviceId", "crmId"}) {
		t.Fatalf("identifierTypes order = %q, want the built-ins first", names)
	}
	return m
}

func setIdentifierType(s *testServer, t *testing.T, tok string, in map[string]any) gqlResponse {
	t.Helper()
	return s.gql(t, tok, `mutation($in: IdentifierTypeInput!) { setIdentifierType(input: $in) { `+identifierTypeFields+` } }`, map[string]any{"in": in})
}

func wantError(t *testing.T, r gqlResponse, code, field string) {
	t.Helper()
	if len(r.Errors) != 1 || r.Errors[0].Code() != code {
		t.Fatalf("want one %s error, got %d: %s", code, r.Status, r.Body)
	}
	if field != "" && r.Errors[0].Extensions["field"] != field {
		t.Fatalf("error field = %v, want %s: %s", r.Errors[0].Extensions["field"], field, r.Body)
	}
}

func TestE2EIdentifierTypes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tokA := s.token(t, "acme")
		tokB := s.token(t, "globex")

		// Defaults.
		types := identifierTypes(t, s, tokA)
		if len(types) != 6 {
			t.Fatalf("%d types in a fresh workspace, want 6", len(types))
		}
		email, phone, userID := types["email"], types["phone"], types["userId"]
		if email.Normalization != "EMAIL" || email.MaxPerProfile != 5 || email.Priority != 20 || email.Unique || email.DefaultRegion != nil {
			t.Fatalf("default email = %+v", email)
		}
		if phone.Normalization != "PHONE" || phone.DefaultRegion == nil || *phone.DefaultRegion != "US" || phone.MaxPerProfile != 3 {
			t.Fatalf("default phone = %+v", phone)
		}
		if !userID.Unique || userID.MaxPerProfile != 1 || userID.Priority != 10 || !slices.Contains(userID.BlockedValues, "undefined") {
			t.Fatalf("default userId = %+v", userID)
		}

		// A custom type and a changed built-in.
		r := setIdentifierType(s, t, tokA, map[string]any{"name": "loyaltyCard", "priority": 40, "blockedValues": []string{"TEST-CARD"}})
		r.requireOK(t)
		var set struct{ SetIdentifierType gqlIdentifierType }
		r.decode(t, &set)
		if got := set.SetIdentifierType; got.Name != "loyaltyCard" || got.Normalization != "NONE" || got.MaxPerProfile != 10 || got.Priority != 40 || got.Unique || !slices.Equal(got.BlockedValues, []string{"test-card"}) {
			t.Fatalf("new custom type = %+v", got)
		}
		setIdentifierType(s, t, tokA, map[string]any{"name": "email", "maxPerProfile": 2}).requireOK(t)
		types = identifierTypes(t, s, tokA)
		if len(types) != 7 || types["email"].MaxPerProfile != 2 || types["email"].Priority != 20 || types["email"].Normalization != "EMAIL" {
			t.Fatalf("after changes: %+v", types)
		}
		if types["loyaltyCard"].Priority != 40 {
			t.Fatalf("loyaltyCard = %+v", types["loyaltyCard"])
		}

		// The custom type works in identify and profile lookups; its
		// blocked values are refused.
		p, _ := identify(t, s, tokA, ids("loyaltyCard", " LC-0042 ", "email", "ann@example.com"), nil)
		if got := getProfile(t, s, tokA, map[string]any{"identifier": map[string]any{"type": "loyaltyCard", "value": "LC-0042"}}); got == nil || got.ID != p.ID {
			t.Fatalf("profile by custom identifier = %+v, want %s", got, p.ID)
		}
		r = s.gql(t, tokA, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
			map[string]any{"in": map[string]any{"identifiers": ids("loyaltyCard", "test-card")}})
		wantError(t, r, "BAD_USER_INPUT", "input.identifiers[0].value")

		// A token without profiles:write may read but not set.
		readOnly := s.token(t, "acme", auth.ScopeProfilesRead)
		identifierTypes(t, s, readOnly)
		wantError(t, setIdentifierType(s, t, readOnly, map[string]any{"name": "email", "maxPerProfile": 4}), "FORBIDDEN", "")
		if identifierTypes(t, s, tokA)["email"].MaxPerProfile != 2 {
			t.Fatal("a forbidden call changed the type")
		}

		// Bad input.
		for _, tt := range []struct {
			in    map[string]any
			field string
		}{
			{map[string]any{"name": "bad-name"}, "input.name"},
			{map[string]any{"name": "Email"}, "input.name"},
			{map[string]any{"name": "email", "maxPerProfile": 0}, "input.maxPerProfile"},
			{map[string]any{"name": "email", "normalization": "NONE"}, "input.normalization"},
			{map[string]any{"name": "phone", "defaultRegion": "ZZ"}, "input.defaultRegion"},
			{map[string]any{"name": "email", "priority": -1}, "input.priority"},
			{map[string]any{"name": "email", "blockedValues": []string{strings.Repeat("x", 300)}}, "input.blockedValues[0]"},
			{map[string]any{"name": "userId", "maxPerProfile": 2}, "input.maxPerProfile"},
		} {
			wantError(t, setIdentifierType(s, t, tokA, tt.in), "BAD_USER_INPUT", tt.field)
		}
		r = setIdentifierType(s, t, tokA, map[string]any{"name": "email", "normalization": "LOWER"})
		wantError(t, r, "GRAPHQL_VALIDATION_FAILED", "")

		// Workspace B sees only the defaults.
		typesB := identifierTypes(t, s, tokB)
		if len(typesB) != 6 || typesB["email"].MaxPerProfile != 5 {
			t.Fatalf("workspace B sees A's types: %+v", typesB)
		}
		r = s.gql(t, tokB, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
			map[string]any{"in": map[string]any{"identifiers": ids("loyaltyCard", "LC-0042")}})
		wantError(t, r, "BAD_USER_INPUT", "input.identifiers[0].type")

		// Phone default region: US numbers by default, UK once set to GB.
		p, _ = identify(t, s, tokA, ids("phone", "(212) 555-0100"), nil)
		if len(p.Identifiers) != 1 || p.Identifiers[0].Value != "+12125550100" {
			t.Fatalf("US local number stored as %+v", p.Identifiers)
		}
		r = setIdentifierType(s, t, tokA, map[string]any{"name": "phone", "defaultRegion": "gb"})
		r.requireOK(t)
		r.decode(t, &set)
		if set.SetIdentifierType.DefaultRegion == nil || *set.SetIdentifierType.DefaultRegion != "GB" {
			t.Fatalf("phone after setting GB = %+v", set.SetIdentifierType)
		}
		p, _ = identify(t, s, tokA, ids("phone", "07700 900123", "email", "uk@example.co.uk"), nil)
		if !slices.Contains(p.Identifiers, gqlIdentifier{Type: "phone", Value: "+447700900123"}) {
			t.Fatalf("UK local number stored as %+v", p.Identifiers)
		}
		// track and profile(identifier) read it the same way.
		pid, _ := track(t, s, tokA, "m-uk-1", ids("phone", "+44 7700 900123"), "page_viewed", time.Now().Add(-time.Minute))
		if pid != p.ID {
			t.Fatalf("track with the E.164 form went to %s, want %s", pid, p.ID)
		}
		if got := getProfile(t, s, tokA, map[string]any{"identifier": map[string]any{"type": "phone", "value": "077009 00123"}}); got == nil || got.ID != p.ID {
			t.Fatalf("profile by UK local number = %+v, want %s", got, p.ID)
		}
		// Workspace B still reads local numbers as US ones.
		pB, _ := identify(t, s, tokB, ids("phone", "(212) 555-0100"), nil)
		if pB.Identifiers[0].Value != "+12125550100" {
			t.Fatalf("workspace B phone = %+v", pB.Identifiers)
		}
		r = s.gql(t, tokB, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
			map[string]any{"in": map[string]any{"identifiers": ids("phone", "07700 900123")}})
		wantError(t, r, "BAD_USER_INPUT", "input.identifiers[0].value")

		// Clearing the region: numbers must then carry their country code.
		setIdentifierType(s, t, tokA, map[string]any{"name": "phone", "defaultRegion": ""}).requireOK(t)
		if identifierTypes(t, s, tokA)["phone"].DefaultRegion != nil {
			t.Fatal("defaultRegion not cleared")
		}
		r = s.gql(t, tokA, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
			map[string]any{"in": map[string]any{"identifiers": ids("phone", "07700 900123")}})
		wantError(t, r, "BAD_USER_INPUT", "input.identifiers[0].value")
		if !strings.Contains(r.Errors[0].Message, "country code") {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})
}
