package rollup_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// TestAccountNodeFollowsCRM: "works at a gold account with an open deal
// and at most two contacts": people enter and leave as the account's
// traits, links, deals and tickets change, with no write to them.
func TestAccountNodeFollowsCRM(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	ann, bob, cy := e.Person(t, "ann@example.org"), e.Person(t, "bob@example.org"), e.Person(t, "cy@example.org")
	acme, err := s.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme", Traits: map[string]any{"tier": "gold"}})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "gold with open deals", Rule: &rule.Rule{Account: &rule.AccountCond{
		Traits: []rule.TraitCond{{Key: "tier", Op: rule.EQ, Value: "gold"}},
		Rollups: []rule.RollupCond{{Field: rule.RollupOpenDeals, Op: rule.GTE, Value: 1},
			{Field: rule.RollupContacts, Op: rule.LTE, Value: 2}}}}})
	if err != nil {
		t.Fatal(err)
	}
	breached, err := s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "accounts with open tickets", Rule: &rule.Rule{Account: &rule.AccountCond{
		Rollups: []rule.RollupCond{{Field: rule.RollupOpenTickets, Op: rule.GT, Value: 0}}}}})
	if err != nil {
		t.Fatal(err)
	}
	members := func(segID string) []string {
		t.Helper()
		var out []string
		for _, id := range []string{ann, bob, cy} {
			if slices.Contains(e.Profile(t, id).Segments, segID) {
				out = append(out, id)
			}
		}
		return out
	}
	want := func(step, segID string, ids ...string) {
		t.Helper()
		if got := members(segID); !slices.Equal(got, ids) {
			t.Fatalf("%s: members %v, want %v", step, got, ids)
		}
		// The preview reads every account at once, by another path.
		sg, err := s.Segments.Get(e.Ctx, e.Tenant, segID)
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := s.Segments.Preview(e.Ctx, e.Tenant, sg.Rule, start)
		if err != nil || n != int64(len(ids)) {
			t.Fatalf("%s: preview %d, want %d (%v)", step, n, len(ids), err)
		}
	}
	for _, p := range []string{ann, bob} {
		if _, err := s.Accounts.Link(e.Ctx, e.Tenant, p, acme.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	want("linked, no deal", seg.ID)
	d, err := s.Deals.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Big", Currency: "EUR", Amount: 10, AccountID: acme.ID})
	if err != nil {
		t.Fatal(err)
	}
	want("an open deal, with no contacts of its own", seg.ID, ann, bob)
	if _, err := s.Accounts.Link(e.Ctx, e.Tenant, cy, acme.ID, ""); err != nil {
		t.Fatal(err)
	}
	want("a third contact", seg.ID)
	if _, err := s.Accounts.Unlink(e.Ctx, e.Tenant, bob, acme.ID); err != nil {
		t.Fatal(err)
	}
	want("bob unlinked", seg.ID, ann, cy)
	acme, err = s.Accounts.Update(e.Ctx, e.Tenant, acme.ID, account.UpdateInput{Traits: map[string]any{"tier": "silver"}, ExpectedVersion: acme.Version})
	if err != nil {
		t.Fatal(err)
	}
	want("silver", seg.ID)
	if _, err = s.Accounts.Update(e.Ctx, e.Tenant, acme.ID, account.UpdateInput{Traits: map[string]any{"tier": "gold"}, ExpectedVersion: acme.Version}); err != nil {
		t.Fatal(err)
	}
	want("gold again", seg.ID, ann, cy)
	if _, err := s.Deals.Close(e.Ctx, e.Tenant, d.ID, deal.Lost, "", d.Version); err != nil {
		t.Fatal(err)
	}
	want("the deal lost", seg.ID)

	// Tickets count for the account's contacts, not only their opener.
	want("no ticket", breached.ID)
	tk, err := s.Tickets.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "Help", AccountID: acme.ID})
	if err != nil {
		t.Fatal(err)
	}
	want("a ticket", breached.ID, ann, cy)
	resolved := ticket.StatusResolved
	if _, err := s.Tickets.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	want("resolved", breached.ID)

	// Bad nodes are refused with their field.
	for _, c := range []struct {
		cond  rule.AccountCond
		field string
	}{
		{rule.AccountCond{Rollups: []rule.RollupCond{{Field: "HEALTH", Op: rule.GT, Value: 1}}}, "input.rule.account.rollups[0].field"},
		{rule.AccountCond{Rollups: []rule.RollupCond{{Field: rule.RollupContacts, Op: rule.Contains, Value: 1}}}, "input.rule.account.rollups[0].op"},
		{rule.AccountCond{Traits: []rule.TraitCond{{Key: "", Op: rule.EQ, Value: "x"}}}, "input.rule.account.traits[0].key"},
	} {
		_, err := s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "x", Rule: &rule.Rule{Account: &c.cond}})
		apptest.WantCode(t, err, apperr.BadUserInput, c.field)
	}
}

// TestAccountNodeFollowsPeople: "works at an account of four (three)
// people or more": a merge of two of its contacts, an erasure of one and
// an unmerge move the other contacts out and in, though none of them
// wrote to those.
func TestAccountNodeFollowsPeople(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	acme, err := s.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	atLeast := func(n float64) string {
		seg, err := s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: fmt.Sprint(n, "+ people"), Rule: &rule.Rule{Account: &rule.AccountCond{
			Rollups: []rule.RollupCond{{Field: rule.RollupContacts, Op: rule.GTE, Value: n}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return seg.ID
	}
	four, three := atLeast(4), atLeast(3)
	var ids []string
	for _, m := range []string{"ann@example.org", "cy@example.org", "dan@example.org", "eve@example.org"} {
		p := e.Person(t, m)
		ids = append(ids, p)
		if _, err := s.Accounts.Link(e.Ctx, e.Tenant, p, acme.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	dan := func(step string, in4, in3 bool) {
		t.Helper()
		segs := e.Profile(t, ids[2]).Segments
		if slices.Contains(segs, four) != in4 || slices.Contains(segs, three) != in3 {
			t.Fatalf("%s: dan in 4+ %v, in 3+ %v; want %v, %v", step, slices.Contains(segs, four), slices.Contains(segs, three), in4, in3)
		}
	}
	dan("four contacts", true, true)
	if _, err := s.Identity.Merge(e.Ctx, e.Tenant, ids[0], ids[1], "same person", "test"); err != nil {
		t.Fatal(err)
	}
	dan("ann and cy merged", false, true)
	if _, err := s.Privacy.Erase(e.Ctx, e.Tenant, ids[3], "request", "test"); err != nil {
		t.Fatal(err)
	}
	dan("eve erased", false, false)
	recs, err := identity.History(e.Ctx, e.Tenant, ids[0])
	if err != nil || len(recs) == 0 {
		t.Fatalf("merge history: %v %v", recs, err)
	}
	if _, err := s.Identity.Unmerge(e.Ctx, e.Tenant, recs[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	dan("cy given back", false, true)
}
