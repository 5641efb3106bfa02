package main

import (
	"strings"
	"testing"
)

// TestE2EAccountRollups: an account's roll-ups and health through
// GraphQL, its deals and tickets, current after each write.
func TestE2EAccountRollups(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
	ann := identifyID(t, s, tok, "ann@acme.com")
	createDeal(t, s, tok, map[string]any{"name": "Renewal", "currency": "EUR", "amount": 1200.5, "accountId": acme.ID, "contactIds": []any{ann}})
	createDeal(t, s, tok, map[string]any{"name": "Pilot", "currency": "EUR", "amount": 300, "accountId": acme.ID, "stage": "won"})
	openTicket(t, s, tok, ann, "Cannot log in")
	q := `query($a: ID) { account(id: $a) {
		rollups { contactCount openDeals wonDeals openDealValue { currency amount } wonRevenue { currency amount } lastActivityAt
			averageEngagement openTickets breachedTickets health { score grade explanation reasons { points text } } }
		deals(status: OPEN) { totalCount nodes { name } }
		tickets { totalCount nodes { subject } } } }`
	r := s.gql(t, tok, q, map[string]any{"a": acme.ID})
	r.requireOK(t)
	for _, want := range []string{
		`"contactCount":1,"openDeals":1,"wonDeals":1,"openDealValue":[{"currency":"EUR","amount":1200.5}],"wonRevenue":[{"currency":"EUR","amount":300}]`,
		`"openTickets":1,"breachedTickets":0`,
		`"grade":"HEALTHY"`, `a contact was active today`, `"deals":{"totalCount":1,"nodes":[{"name":"Renewal"}]}`,
		`"tickets":{"totalCount":1,"nodes":[{"subject":"Cannot log in"}]}`,
	} {
		if !strings.Contains(string(r.Data), want) {
			t.Fatalf("account:\n%s\nlacks %s", r.Data, want)
		}
	}
	// A person unlinked: the count follows at once.
	s.gql(t, tok, `mutation($p: ID!, $a: ID!) { unlinkProfileFromAccount(profileId: $p, accountId: $a) }`, map[string]any{"p": ann, "a": acme.ID}).requireOK(t)
	r = s.gql(t, tok, `query($a: ID) { account(id: $a) { rollups { contactCount averageEngagement health { explanation } } } }`, map[string]any{"a": acme.ID})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"contactCount":0,"averageEngagement":null`) || !strings.Contains(string(r.Data), "no contact is linked") {
		t.Fatalf("after the unlink: %s", r.Data)
	}
}

// TestE2EMergeAccounts: a duplicate merged through GraphQL brings its
// domain, people and deals; its id answers with the survivor, which
// records the merge; the refusals name their argument.
func TestE2EMergeAccounts(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
	dup := createAccount(t, s, tok, map[string]any{"name": "Acme GmbH", "domains": []any{"acme.de"}})
	identifyID(t, s, tok, "jan@acme.de") // joins the duplicate by domain
	createDeal(t, s, tok, map[string]any{"name": "DE rollout", "currency": "EUR", "amount": 5, "accountId": dup.ID})
	merge := `mutation($s: ID!, $t: ID!, $r: String) { mergeAccounts(sourceId: $s, targetId: $t, reason: $r) {
		id domains contacts { totalCount } deals { totalCount } merges { sourceId sourceName contactsAfter reason actor done identifiers { type value } } } }`
	for _, c := range []struct {
		name, src, dst, code, field string
	}{
		{"itself", dup.ID, dup.ID, "BAD_USER_INPUT", "targetId"},
		{"an unknown source", "nope", acme.ID, "NOT_FOUND", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, s.gql(t, tok, merge, map[string]any{"s": c.src, "t": c.dst}), c.code, c.field)
		})
	}
	r := s.gql(t, tok, merge, map[string]any{"s": dup.ID, "t": acme.ID, "r": "same company"})
	r.requireOK(t)
	want := `"domains":["acme.com","acme.de"],"contacts":{"totalCount":1},"deals":{"totalCount":1},"merges":[{"sourceId":"` + dup.ID +
		`","sourceName":"Acme GmbH","contactsAfter":1,"reason":"same company","actor":"test","done":true,"identifiers":[{"type":"domain","value":"acme.de"}]}]`
	if !strings.Contains(string(r.Data), want) {
		t.Fatalf("merged:\n%s\nwant %s", r.Data, want)
	}
	r = s.gql(t, tok, `query($a: ID) { account(id: $a) { id name } }`, map[string]any{"a": dup.ID})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"id":"`+acme.ID+`","name":"Acme"`) {
		t.Fatalf("the merged id: %s", r.Data)
	}
	r = s.gql(t, tok, `{ accounts { totalCount } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":1`) {
		t.Fatalf("the duplicate is still listed: %s", r.Data)
	}
}

// TestE2EAccountTimeline: an account's timeline through GraphQL: its
// people's items and its own CRM items (a deal's once, however many
// contacts), newest first, paged with cursors; a malformed cursor is
// refused; another workspace's account is not found.
func TestE2EAccountTimeline(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
	ann := identifyID(t, s, tok, "ann@acme.com")
	bob := identifyID(t, s, tok, "bob@acme.com")
	trackEvent(t, s, tok, "ann@acme.com", "page_viewed")
	createDeal(t, s, tok, map[string]any{"name": "Renewal", "currency": "EUR", "amount": 5, "accountId": acme.ID, "contactIds": []any{ann, bob}})
	q := `query($a: ID, $after: String) { account(id: $a) { timeline(first: 1, after: $after) { nodes { name subject profileId } pageInfo { hasNextPage endCursor } } } }`
	var names []string
	var after any
	for range 10 {
		r := s.gql(t, tok, q, map[string]any{"a": acme.ID, "after": after})
		r.requireOK(t)
		var out struct {
			Account struct {
				Timeline struct {
					Nodes []struct {
						Name, ProfileID string
						Subject         *string
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		r.decode(t, &out)
		for _, n := range out.Account.Timeline.Nodes {
			names = append(names, n.Name+"/"+map[bool]string{true: "account", false: "person"}[n.ProfileID == ""])
		}
		if !out.Account.Timeline.PageInfo.HasNextPage {
			break
		}
		after = *out.Account.Timeline.PageInfo.EndCursor
	}
	if got := strings.Join(names, " "); got != "deal/account page_viewed/person" {
		t.Fatalf("the account's timeline: %q", got)
	}
	wantError(t, s.gql(t, tok, q, map[string]any{"a": acme.ID, "after": "account-timeline.nope"}), "BAD_USER_INPUT", "after")
	r := s.gql(t, s.token(t, "globex"), q, map[string]any{"a": acme.ID})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"account":null`) {
		t.Fatalf("globex reads acme's account: %s", r.Data)
	}
}
