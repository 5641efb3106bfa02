package main

import (
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const accountFields = `id name domains identifiers { type value } traits version`

type gqlAccount struct {
	ID          string
	Name        string
	Domains     []string
	Identifiers []struct{ Type, Value string }
	Traits      map[string]any
	Version     int
}

func createAccount(t testing.TB, s *testServer, tok string, in map[string]any) gqlAccount {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: CreateAccountInput!) { createAccount(input: $in) { `+accountFields+` } }`, map[string]any{"in": in})
	r.requireOK(t)
	var out struct{ CreateAccount gqlAccount }
	r.decode(t, &out)
	return out.CreateAccount
}

// TestE2EAccounts drives accounts through GraphQL on every engine:
// people join the account of their email's domain (free mail excepted),
// links by hand with a role, the account's contacts with totalCount,
// Profile.accounts, search, updates that take the version read, and the
// refusals.
func TestE2EAccounts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		ann, _ := identify(t, s, tok, ids("email", "ann@acme.com"), nil)
		identify(t, s, tok, ids("email", "gus@gmail.com"), nil)
		acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"https://www.ACME.com/", "acme.io"},
			"identifiers": []any{map[string]any{"type": "crmAccountId", "value": "001A"}}, "traits": map[string]any{"tier": "gold"}})
		if strings.Join(acme.Domains, ",") != "acme.com,acme.io" || len(acme.Identifiers) != 3 || acme.Version != 1 || acme.Traits["tier"] != "gold" {
			t.Fatalf("created %+v", acme)
		}
		createAccount(t, s, tok, map[string]any{"name": "Google", "domains": []any{"gmail.com"}})
		// A new person at acme joins at once; one by hand, with a role.
		bob, _ := identify(t, s, tok, ids("email", "bob@acme.io"), nil)
		vic, _ := identify(t, s, tok, ids("anonymousId", "v-1"), nil)
		r := s.gql(t, tok, `mutation($p: ID!, $a: ID!) { linkProfileToAccount(profileId: $p, accountId: $a, role: "buyer") { role source account { name } } }`,
			map[string]any{"p": vic.ID, "a": acme.ID})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"role":"buyer","source":"MANUAL","account":{"name":"Acme"}`) {
			t.Fatalf("link: %s", r.Data)
		}
		r = s.gql(t, tok, `query($a: ID!) { account(id: $a) { contacts(first: 2) { totalCount edges { source role node { id } } pageInfo { hasNextPage } } }
		  byDomain: account(identifier: {type: "domain", value: "WWW.acme.io"}) { id }
		  none: account(identifier: {type: "domain", value: "nobody.com"}) { id }
		  accounts(search: "ac") { totalCount nodes { name } } }`, map[string]any{"a": acme.ID})
		r.requireOK(t)
		var got struct {
			Account struct {
				Contacts struct {
					TotalCount int
					Edges      []struct {
						Source string
						Role   *string
						Node   struct{ ID string }
					}
					PageInfo struct{ HasNextPage bool }
				}
			}
			ByDomain *struct{ ID string }
			None     *struct{ ID string }
			Accounts struct {
				TotalCount int
				Nodes      []struct{ Name string }
			}
		}
		r.decode(t, &got)
		c := got.Account.Contacts
		if c.TotalCount != 3 || len(c.Edges) != 2 || !c.PageInfo.HasNextPage || c.Edges[0].Node.ID != ann.ID || c.Edges[0].Source != "DOMAIN" || c.Edges[1].Node.ID != bob.ID {
			t.Fatalf("contacts: %s", r.Data)
		}
		if got.ByDomain == nil || got.ByDomain.ID != acme.ID || got.None != nil || got.Accounts.TotalCount != 1 {
			t.Fatalf("lookups: %s", r.Data)
		}
		r = s.gql(t, tok, `query($p: ID!) { profile(id: $p) { accounts { role source account { id name } } } }`, map[string]any{"p": vic.ID})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), acme.ID) {
			t.Fatalf("Profile.accounts: %s", r.Data)
		}
		// Updates take the version read.
		upd := `mutation($a: ID!, $in: UpdateAccountInput!) { updateAccount(id: $a, input: $in) { name version domains } }`
		r = s.gql(t, tok, upd, map[string]any{"a": acme.ID, "in": map[string]any{"name": "Acme Inc", "expectedVersion": 1}})
		r.requireOK(t)
		r = s.gql(t, tok, upd, map[string]any{"a": acme.ID, "in": map[string]any{"name": "Stale", "expectedVersion": 1}})
		r.requireError(t, 0, "CONFLICT")
	})
}

// TestE2EAccountRefusals: bad input names its field, and nothing is
// stored; ids of nothing (or of another workspace) are NOT_FOUND; the
// scopes.
func TestE2EAccountRefusals(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}, "traits": map[string]any{"tier": "gold"}})
	p, _ := identify(t, s, tok, ids("anonymousId", "x"), nil)
	// Filters and orders: gold accounts, newest first; by domain.
	r := s.gql(t, tok, `{ gold: accounts(filter: {traits: [{key: "tier", op: EQ, value: "gold"}]}, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { name } }
	  silver: accounts(filter: {traits: [{key: "tier", op: EQ, value: "silver"}]}) { totalCount }
	  byDomain: accounts(filter: {domain: "www.ACME.com"}) { totalCount nodes { name } } }`, nil)
	r.requireOK(t)
	if want := `{"gold":{"totalCount":1,"nodes":[{"name":"Acme"}]},"silver":{"totalCount":0},"byDomain":{"totalCount":1,"nodes":[{"name":"Acme"}]}}`; string(r.Data) != want {
		t.Fatalf("filters: %s, want %s", r.Data, want)
	}
	r = s.gql(t, tok, `{ accounts(first: 1) { edges { cursor } } }`, nil)
	r.requireOK(t)
	var firstPage struct {
		Accounts struct{ Edges []struct{ Cursor string } }
	}
	r.decode(t, &firstPage)
	nameCursor := firstPage.Accounts.Edges[0].Cursor
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"not a domain", `mutation { createAccount(input: {name: "x", domains: ["ok.com", "localhost"]}) { id } }`, nil, "BAD_USER_INPUT", "input.domains[1]"},
		{"a public suffix", `mutation { createAccount(input: {name: "x", domains: ["co.uk"]}) { id } }`, nil, "BAD_USER_INPUT", "input.domains[0]"},
		{"no name", `mutation { createAccount(input: {name: " "}) { id } }`, nil, "BAD_USER_INPUT", "input.name"},
		{"traits not an object", `mutation { createAccount(input: {name: "x", traits: [1]}) { id } }`, nil, "BAD_USER_INPUT", "input.traits"},
		{"a bad identifier type", `mutation { createAccount(input: {name: "x", identifiers: [{type: "a b", value: "1"}]}) { id } }`, nil, "BAD_USER_INPUT", "input.identifiers[0].type"},
		{"a domain held", `mutation { createAccount(input: {name: "Acme 2", domains: ["new.com", "ACME.com"]}) { id } }`, nil, "CONFLICT", ""},
		{"a stale version", `mutation($a: ID!) { updateAccount(id: $a, input: {name: "y", expectedVersion: 7}) { id } }`, map[string]any{"a": acme.ID}, "CONFLICT", ""},
		{"update nothing", `mutation { updateAccount(id: "nope", input: {expectedVersion: 1}) { id } }`, nil, "NOT_FOUND", ""},
		{"link nobody", `mutation($a: ID!) { linkProfileToAccount(profileId: "nope", accountId: $a) { role } }`, map[string]any{"a": acme.ID}, "NOT_FOUND", ""},
		{"link to nothing", `mutation($p: ID!) { linkProfileToAccount(profileId: $p, accountId: "nope") { role } }`, map[string]any{"p": p.ID}, "NOT_FOUND", ""},
		{"a bad free-mail domain", `mutation { setAccountSettings(freeMailDomains: ["gmail.com", "x"]) { freeMailDomains } }`, nil, "BAD_USER_INPUT", "freeMailDomains[1]"},
		{"a malformed cursor", `{ accounts(after: "zzz") { totalCount } }`, nil, "BAD_USER_INPUT", "after"},
		{"a cursor of another order", `query($c: String) { accounts(after: $c, orderBy: {field: CREATED_AT}) { totalCount } }`, map[string]any{"c": nameCursor}, "BAD_USER_INPUT", "after"},
		{"search by creation", `{ accounts(search: "a", orderBy: {field: CREATED_AT}) { totalCount } }`, nil, "BAD_USER_INPUT", "orderBy"},
		{"a bad filter domain", `{ accounts(filter: {domain: "a b"}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.domain"},
		{"a bad filter trait", `{ accounts(filter: {traits: [{key: "", op: EQ, value: 1}]}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.traits[0].key"},
		{"an empty creation range", `{ accounts(filter: {createdFrom: "2026-01-02T00:00:00Z", createdTo: "2026-01-01T00:00:00Z"}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.createdTo"},
		{"both id and identifier", `{ account(id: "x", identifier: {type: "domain", value: "acme.com"}) { id } }`, nil, "BAD_USER_INPUT", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, c.vars)
			r.requireError(t, 0, c.code)
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
	// Nothing of the refused calls was stored: new.com is free.
	createAccount(t, s, tok, map[string]any{"name": "New", "domains": []any{"new.com"}})
	r = s.gql(t, tok, `{ accounts { totalCount } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":2`) {
		t.Fatalf("accounts after refusals: %s", r.Data)
	}
	// crm:read reads, crm:write writes; contacts are people (profiles:read).
	ro := s.token(t, "acme", auth.ScopeCRMRead)
	s.gql(t, ro, `{ accounts { nodes { name } } }`, nil).requireOK(t)
	s.gql(t, ro, `mutation { createAccount(input: {name: "z"}) { id } }`, nil).requireError(t, 0, "FORBIDDEN")
	s.gql(t, ro, `{ accounts { nodes { contacts { totalCount } } } }`, nil).requireError(t, 0, "FORBIDDEN")
	s.gql(t, s.token(t, "acme", allBut(auth.ScopeCRMRead)...), `{ accounts { totalCount } }`, nil).requireError(t, 0, "FORBIDDEN")
}
