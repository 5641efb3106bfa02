package main

// identifierTypes and setIdentifierType through GraphQL: how a type
// configuration and a patch map to and from the API, the codes and fields
// of their errors, and the scope. What the types do to identify, track and
// profile(identifier:), per workspace, is tested in internal/identity.

import (
	"slices"
	"testing"

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
		tok := s.token(t, "acme")

		// Defaults, as the API spells them.
		types := identifierTypes(t, s, tok)
		if len(types) != 6 {
			t.Fatalf("%d types in a fresh workspace, want 6", len(types))
		}
		email, phone, userID := types["email"], types["phone"], types["userId"]
		if email.Normalization != "EMAIL" || email.MaxPerProfile != 5 || email.Priority != 20 || email.Unique || email.DefaultRegion != nil {
			t.Fatalf("default email = %+v", email)
		}
		if phone.Normalization != "PHONE" || phone.DefaultRegion == nil || *phone.DefaultRegion != "US" {
			t.Fatalf("default phone = %+v", phone)
		}
		if !userID.Unique || userID.MaxPerProfile != 1 || !slices.Contains(userID.BlockedValues, "undefined") {
			t.Fatalf("default userId = %+v", userID)
		}

		// A custom type: the patch's fields reach the domain, the stored
		// configuration comes back.
		r := setIdentifierType(s, t, tok, map[string]any{"name": "loyaltyCard", "priority": 40, "blockedValues": []string{"TEST-CARD"}})
		r.requireOK(t)
		var set struct{ SetIdentifierType gqlIdentifierType }
		r.decode(t, &set)
		if got := set.SetIdentifierType; got.Name != "loyaltyCard" || got.Normalization != "NONE" || got.MaxPerProfile != 10 || got.Priority != 40 || got.Unique || !slices.Equal(got.BlockedValues, []string{"test-card"}) {
			t.Fatalf("new custom type = %+v", got)
		}
		if types := identifierTypes(t, s, tok); len(types) != 7 || types["loyaltyCard"].Priority != 40 {
			t.Fatalf("after the change: %+v", types)
		}
		r = s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
			map[string]any{"in": map[string]any{"identifiers": ids("loyaltyCard", "test-card")}})
		wantError(t, r, "BAD_USER_INPUT", "input.identifiers[0].value")

		// The region: set in any case, cleared with "".
		r = setIdentifierType(s, t, tok, map[string]any{"name": "phone", "defaultRegion": "gb"})
		r.requireOK(t)
		r.decode(t, &set)
		if set.SetIdentifierType.DefaultRegion == nil || *set.SetIdentifierType.DefaultRegion != "GB" {
			t.Fatalf("phone after setting GB = %+v", set.SetIdentifierType)
		}
		setIdentifierType(s, t, tok, map[string]any{"name": "phone", "defaultRegion": ""}).requireOK(t)
		if identifierTypes(t, s, tok)["phone"].DefaultRegion != nil {
			t.Fatal("defaultRegion not cleared")
		}

		// Errors: the input's field, the enum, the scope.
		wantError(t, setIdentifierType(s, t, tok, map[string]any{"name": "email", "normalization": "NONE"}), "BAD_USER_INPUT", "input.normalization")
		wantError(t, setIdentifierType(s, t, tok, map[string]any{"name": "email", "maxPerProfile": 0}), "BAD_USER_INPUT", "input.maxPerProfile")
		wantError(t, setIdentifierType(s, t, tok, map[string]any{"name": "email", "normalization": "LOWER"}), "GRAPHQL_VALIDATION_FAILED", "")
		readOnly := s.token(t, "acme", auth.ScopeProfilesRead)
		identifierTypes(t, s, readOnly)
		wantError(t, setIdentifierType(s, t, readOnly, map[string]any{"name": "email", "maxPerProfile": 4}), "FORBIDDEN", "")
		if identifierTypes(t, s, tok)["email"].MaxPerProfile != 5 {
			t.Fatal("a refused call changed the type")
		}
	})
}
