package seed

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var anchor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *store.Store {
	return apptest.New(t, anchor).Store
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := Generate(Options{Seed: 7, Profiles: 50, Events: 500, Now: anchor, Days: 180})
	b := Generate(Options{Seed: 7, Profiles: 50, Events: 500, Now: anchor, Days: 180})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different data")
	}
	c := Generate(Options{Seed: 8, Profiles: 50, Events: 500, Now: anchor, Days: 180})
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same data")
	}
	for _, p := range a {
		for _, op := range p.Ops {
			if op.At.After(anchor) || op.At.Before(anchor.AddDate(0, 0, -181)) {
				t.Fatalf("%s: op at %s outside the window", p.Key, op.At)
			}
		}
	}
}

func TestLoadIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	opts := Options{Seed: 3, Profiles: 60, Events: 1200, Now: anchor}
	first, err := Load(ctx, st, "demo", opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Profiles < 50 || first.Profiles > 60 || first.Events < 600 || first.Interactions == 0 || first.Consents == 0 || first.Accounts != 8 || first.Deals < 24 {
		t.Fatalf("unexpected stats %+v", first)
	}
	events, err := st.Tenant("demo").C(timeline.Events).Count(ctx, store.Query{Index: timeline.EventsByMessage})
	if err != nil {
		t.Fatal(err)
	}
	// Besides the replay, the CRM objects put their items on the people's
	// timelines (messageIds deal:…, task:…, ticket:… and ticket-comment:…).
	var crmItems int64
	for _, prefix := range [][2]string{{"deal:", "deal;"}, {"task:", "task;"}, {"ticket", "tickeu"}} {
		n, err := st.Tenant("demo").C(timeline.Events).Count(ctx, store.Query{Index: timeline.EventsByMessage, Range: &store.Bound{Gte: prefix[0], Lt: prefix[1]}})
		if err != nil {
			t.Fatal(err)
		}
		crmItems += n
	}
	if crmItems < int64(first.Deals) {
		t.Errorf("CRM items on timelines: %d, fewer than the %d deals", crmItems, first.Deals)
	}
	if want := int64(first.Events+first.Interactions) + crmItems; events != want {
		t.Fatalf("stored %d timeline items, stats say %d (and %d CRM items)", events, first.Events+first.Interactions, crmItems)
	}
	// The CRM screens have something: every stage of the default
	// pipeline holds deals, and the accounts have their people.
	svc := app.New(func() time.Time { return anchor })
	sum, err := svc.Deals.Summarize(ctx, st.Tenant("demo"), "sales")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Stages {
		if s.Count == 0 {
			t.Errorf("stage %s holds no demo deal", s.Stage.Key)
		}
	}
	accounts, err := svc.Accounts.List(ctx, st.Tenant("demo"), account.ListQuery{}, 20, "")
	if err != nil || len(accounts.Accounts) != 8 {
		t.Fatalf("demo accounts: %v %v", accounts, err)
	}
	linked := 0
	for _, a := range accounts.Accounts {
		n, _ := svc.Accounts.CountContacts(ctx, st.Tenant("demo"), a.ID)
		linked += int(n)
	}
	if linked == 0 {
		t.Error("no demo person is linked to an account")
	}
	// Lifecycle stages: leads, opportunities and customers.
	stages := map[string]int{}
	if err := profile.EachLive(ctx, st.Tenant("demo"), func(p *profile.Profile) error {
		stages[p.Lifecycle]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if stages[profile.Lead] == 0 || stages[profile.Opportunity] == 0 || stages[profile.Customer] == 0 {
		t.Errorf("demo lifecycle stages: %v", stages)
	}
	// Open and breached tickets, and answered ones.
	tickets := func(f ticket.Filter) int64 {
		n, err := svc.Tickets.Count(ctx, st.Tenant("demo"), f)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	yes := true
	if all, breached, open := tickets(ticket.Filter{}), tickets(ticket.Filter{Breached: &yes}), tickets(ticket.Filter{Status: ticket.StatusOpen}); all != int64(first.Tickets) || all < 8 || breached == 0 || open == 0 {
		t.Errorf("demo tickets: %d (stats %d), %d breached, %d open", all, first.Tickets, breached, open)
	}
	again, err := Load(ctx, st, "demo", opts)
	if err != nil {
		t.Fatal(err)
	}
	// The marketing side too: computed traits and segments, once.
	if first.ComputedTraits != 4 || first.Segments != 6 {
		t.Errorf("demo computed traits %d, segments %d", first.ComputedTraits, first.Segments)
	}
	if again.Events != 0 || again.Consents != 0 || again.Profiles != first.Profiles || again.Accounts != 0 || again.Deals != 0 || again.Tickets != 0 ||
		again.ComputedTraits != 0 || again.Segments != 0 {
		t.Fatalf("second load wrote again: %+v (first %+v)", again, first)
	}
}

// BenchmarkLoadDemo measures loading the full demo data set (1,000
// profiles, ~25,000 events) into a fresh embedded store.
func BenchmarkLoadDemo(b *testing.B) {
	for i := 0; i < b.N; i++ {
		st := openStore(b)
		start := time.Now()
		stats, err := Load(context.Background(), st, "demo", Options{Seed: 1, Now: anchor})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(stats.Events+stats.Interactions)/time.Since(start).Seconds(), "items/s")
	}
}
