package rollup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/rollup"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/timeline"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestRollupsAndHealth(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	of := func(id string, at time.Time) *rollup.Rollups {
		t.Helper()
		r, err := rollup.Of(e.Ctx, e.Tenant, s.Accounts, s.Deals, s.Tickets, id, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	acme, err := s.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme", Domains: []string{"acme.com"}})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody yet: no contacts, no activity.
	if r := of(acme.ID, start); r.ContactCount != 0 || r.AverageEngagement != nil || r.Health.Score != 40 || r.Health.Grade != rollup.NeedsAttention {
		t.Fatalf("empty: %+v", r)
	}
	var people []string
	for _, email := range []string{"ann@acme.com", "bob@acme.com"} {
		res, err := s.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{MessageID: "m-" + email,
			Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}, Name: "page_viewed"}})
		if err != nil {
			t.Fatal(err)
		}
		people = append(people, res[0].Event.ProfileID)
		if err := s.Accounts.LinkEmails(e.Ctx, e.Tenant, res[0].Event.ProfileID, []string{email}); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []deal.CreateInput{
		{Name: "a", Currency: "EUR", Amount: 100, AccountID: acme.ID},
		{Name: "b", Currency: "EUR", Amount: 50.5, AccountID: acme.ID},
		{Name: "c", Currency: "USD", Amount: 300, AccountID: acme.ID},
		{Name: "won", Currency: "EUR", Amount: 1000, AccountID: acme.ID, Stage: "won"},
		{Name: "lost", Currency: "EUR", Amount: 7, AccountID: acme.ID, Stage: "lost"},
		{Name: "elsewhere", Currency: "EUR", Amount: 9999},
	} {
		if _, err := s.Deals.Create(e.Ctx, e.Tenant, in); err != nil {
			t.Fatal(err)
		}
	}
	urgent, err := s.Tickets.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: people[0], Subject: "Down", Priority: ticket.Urgent})
	if err != nil || urgent.AccountID != acme.ID {
		t.Fatalf("ticket: %+v %v", urgent, err)
	}
	done, err := s.Tickets.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: people[1], Subject: "Question"})
	if err != nil {
		t.Fatal(err)
	}
	resolved := ticket.StatusResolved
	if _, err := s.Tickets.Update(e.Ctx, e.Tenant, done.ID, ticket.UpdateInput{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tickets.Sweep(e.Ctx, e.Tenant, start.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	r := of(acme.ID, start.Add(2*time.Hour))
	if r.ContactCount != 2 || r.OpenDeals != 3 || r.WonDeals != 1 || r.LostDeals != 1 || r.OpenTickets != 1 || r.BreachedTickets != 1 {
		t.Fatalf("counts: %+v", r)
	}
	if len(r.OpenValue) != 2 || r.OpenValue[0] != (rollup.Money{Currency: "USD", Amount: 300}) || r.OpenValue[1] != (rollup.Money{Currency: "EUR", Amount: 150.5}) ||
		len(r.WonRevenue) != 1 || r.WonRevenue[0].Amount != 1000 {
		t.Fatalf("values: open %+v, won %+v", r.OpenValue, r.WonRevenue)
	}
	if !r.LastActivityAt.Equal(start) || r.AverageEngagement == nil || *r.AverageEngagement <= 0 || *r.MaxEngagement < *r.AverageEngagement {
		t.Fatalf("activity: %v %v %v", r.LastActivityAt, r.AverageEngagement, r.MaxEngagement)
	}
	// The reasons add up to the score, and say why.
	sum := 0
	for _, x := range r.Health.Reasons {
		sum += x.Points
	}
	if sum != r.Health.Score {
		t.Fatalf("reasons add up to %d, score %d: %+v", sum, r.Health.Score, r.Health.Reasons)
	}
	exp := r.Health.Explanation()
	for _, want := range []string{"a contact was active today", "1 won deal", "3 open deals", "-10: 1 open ticket past a service-level target"} {
		if !strings.Contains(exp, want) {
			t.Fatalf("explanation %q lacks %q", exp, want)
		}
	}
	// Months later, without activity: the score falls.
	later := of(acme.ID, start.Add(120*24*time.Hour))
	if later.Health.Score >= r.Health.Score || !strings.Contains(later.Health.Explanation(), "no contact has been active for 120 days") {
		t.Fatalf("later: %d %q (was %d)", later.Health.Score, later.Health.Explanation(), r.Health.Score)
	}
	if _, err := rollup.Of(e.Ctx, e.Tenant, s.Accounts, s.Deals, s.Tickets, "nope", start); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown account: %v", err)
	}
}
