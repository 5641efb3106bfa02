package lifecycle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func history(t *testing.T, e *apptest.Env, id string) string {
	t.Helper()
	p := e.Profile(t, id)
	cs, err := lifecycle.History(e.Ctx, e.Tenant, append([]string{p.ID}, p.MergedFrom...)...)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, c := range cs {
		out += fmt.Sprintf("%s>%s(%s) ", c.From, c.To, c.Cause)
	}
	return out
}

// TestStagesMoveWithDealsAndOrders: by hand in any direction; forward
// only when a deal opens (OPPORTUNITY), is won or an order arrives
// (CUSTOMER); a lost deal moves nobody; each change in the history.
func TestStagesMoveWithDealsAndOrders(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Lifecycle
	ann, bob := e.Person(t, "ann@acme.com"), e.Person(t, "bob@acme.com")
	if _, err := s.Set(e.Ctx, e.Tenant, ann, profile.Lead, "rep"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Set(e.Ctx, e.Tenant, ann, "PROSPECT", "rep")
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != "stage" {
		t.Fatalf("unknown stage: %v", err)
	}
	_, err = s.Set(e.Ctx, e.Tenant, "nope", profile.Lead, "rep")
	if apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown person: %v", err)
	}
	// Bob is a customer already: a new deal does not move him back.
	if _, err := s.Set(e.Ctx, e.Tenant, bob, profile.Customer, "rep"); err != nil {
		t.Fatal(err)
	}
	d, err := e.Services.Deals.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Acme", Currency: "EUR", Amount: 10, ContactIDs: []string{ann, bob}})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := e.Profile(t, ann).Lifecycle, e.Profile(t, bob).Lifecycle; a != profile.Opportunity || b != profile.Customer {
		t.Fatalf("after a deal opened: ann %s, bob %s", a, b)
	}
	// A lost deal moves nobody; winning makes customers.
	lost, err := e.Services.Deals.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Lost one", Currency: "EUR", ContactIDs: []string{ann}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Services.Deals.Close(e.Ctx, e.Tenant, lost.ID, deal.Lost, "", lost.Version); err != nil {
		t.Fatal(err)
	}
	if got := e.Profile(t, ann).Lifecycle; got != profile.Opportunity {
		t.Fatalf("after a lost deal: %s", got)
	}
	if _, err := e.Services.Deals.Close(e.Ctx, e.Tenant, d.ID, deal.Won, "signed", d.Version); err != nil {
		t.Fatal(err)
	}
	if got := e.Profile(t, ann).Lifecycle; got != profile.Customer {
		t.Fatalf("after a won deal: %s", got)
	}
	if got, want := history(t, e, ann), ">LEAD(manual) LEAD>OPPORTUNITY(deal.opened) OPPORTUNITY>CUSTOMER(deal.won) "; got != want {
		t.Fatalf("ann's history %q, want %q", got, want)
	}
	if got, want := history(t, e, bob), ">CUSTOMER(manual) "; got != want {
		t.Fatalf("bob's history %q, want %q", got, want)
	}

	// An order makes a customer, in the write that counts it.
	cy := e.Person(t, "cy@example.org")
	if _, err := s.Set(e.Ctx, e.Tenant, cy, profile.Churned, "rep"); err != nil {
		t.Fatal(err)
	}
	track := func(name string) {
		t.Helper()
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{MessageID: "m-" + name,
			Identifiers: []identity.Identifier{{Type: identity.Email, Value: "cy@example.org"}}, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	track("page_viewed")
	if got := e.Profile(t, cy).Lifecycle; got != profile.Churned {
		t.Fatalf("a page view moved the stage: %s", got)
	}
	track("order_completed")
	if got := e.Profile(t, cy).Lifecycle; got != profile.Customer {
		t.Fatalf("after an order: %s", got)
	}
	if got, want := history(t, e, cy), ">CHURNED(manual) CHURNED>CUSTOMER(order) "; got != want {
		t.Fatalf("cy's history %q, want %q", got, want)
	}

	// A merge keeps the further stage and both histories.
	dee := e.Person(t, "dee@example.org")
	if _, err := s.Set(e.Ctx, e.Tenant, dee, profile.MQL, "rep"); err != nil {
		t.Fatal(err)
	}
	lead := e.Person(t, "lead@example.org")
	if _, err := s.Set(e.Ctx, e.Tenant, lead, profile.SQL, "rep"); err != nil {
		t.Fatal(err)
	}
	survivor, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, lead, dee, "same person", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if survivor.Lifecycle != profile.SQL {
		t.Fatalf("merged: %s", survivor.Lifecycle)
	}
	if got, want := history(t, e, survivor.ID), ">MQL(manual) >SQL(manual) "; got != want {
		t.Fatalf("merged history %q, want %q", got, want)
	}
	// Setting the stage of the merged-away profile sets the survivor's.
	if p, err := s.Set(e.Ctx, e.Tenant, lead, profile.Evangelist, "rep"); err != nil || p.ID != survivor.ID || p.Lifecycle != profile.Evangelist {
		t.Fatalf("set through the merge: %+v %v", p, err)
	}
}

func TestForward(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"", profile.Subscriber, true}, {profile.Lead, profile.Opportunity, true}, {profile.Customer, profile.Opportunity, false},
		{profile.Churned, profile.Opportunity, true}, {profile.OtherStage, profile.Lead, true}, {profile.Customer, profile.Churned, false},
		{profile.Lead, profile.Lead, false},
	} {
		if got := profile.Forward(c.from, c.to); got != c.want {
			t.Errorf("Forward(%q, %q) = %v", c.from, c.to, got)
		}
	}
	if profile.Further(profile.Churned, profile.Lead) != profile.Lead || profile.Further(profile.Customer, profile.Lead) != profile.Customer || profile.Further("", profile.OtherStage) != profile.OtherStage {
		t.Error("Further")
	}
}
