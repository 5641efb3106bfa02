package accountmerge_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/accountmerge"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestMergeAccounts(t *testing.T) {
	e := apptest.New(t, start)
	s, ctx, tn := e.Services, e.Ctx, e.Tenant
	acme, err := s.Accounts.Create(ctx, tn, account.CreateInput{Name: "Acme", Domains: []string{"acme.com"}, Traits: map[string]any{"tier": "gold"}})
	if err != nil {
		t.Fatal(err)
	}
	dup, err := s.Accounts.Create(ctx, tn, account.CreateInput{Name: "ACME Inc", Domains: []string{"acme.io"},
		Identifiers: []account.Identifier{{Type: account.CRMAccountID, Value: "001X"}}, Traits: map[string]any{"tier": "silver", "employees": 40}})
	if err != nil {
		t.Fatal(err)
	}
	ann, bob := e.Person(t, "ann@acme.com"), e.Person(t, "bob@example.org")
	for _, l := range []struct{ p, a, role string }{{ann, acme.ID, "buyer"}, {ann, dup.ID, "user"}, {bob, dup.ID, "champion"}} {
		if _, err := s.Accounts.Link(ctx, tn, l.p, l.a, l.role); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Deals.Create(ctx, tn, deal.CreateInput{Name: "Dup's deal", Currency: "EUR", Amount: 10, AccountID: dup.ID})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.Tickets.Open(ctx, tn, ticket.OpenInput{ProfileID: bob, Subject: "Help", AccountID: dup.ID})
	if err != nil {
		t.Fatal(err)
	}
	ta, err := s.Tasks.Create(ctx, tn, task.CreateInput{Subject: "Call", AccountID: dup.ID})
	if err != nil {
		t.Fatal(err)
	}

	// Refusals first: they change nothing.
	for _, c := range []struct {
		src, dst, field string
		code            apperr.Code
	}{
		{dup.ID, dup.ID, "targetId", apperr.BadUserInput},
		{"nope", acme.ID, "", apperr.NotFound},
		{dup.ID, "nope", "", apperr.NotFound},
	} {
		_, err := accountmerge.Merge(ctx, tn, s.Accounts, c.src, c.dst, "", "tester")
		if ae, ok := apperr.As(err); !ok || ae.Code != c.code || (c.field != "" && ae.Field != c.field) {
			t.Fatalf("merge %s into %s: %v, want %s on %q", c.src, c.dst, err, c.code, c.field)
		}
	}
	if _, err := s.Accounts.Get(ctx, tn, dup.ID); err != nil {
		t.Fatalf("a refused merge removed the source: %v", err)
	}

	// A merge cut short after the account's side (a crash before the
	// deals moved): the repeat finishes it.
	if _, err := s.Accounts.Absorb(ctx, tn, dup.ID, acme.ID, "same company", "tester"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Deals.Deal(ctx, tn, d.ID); got.AccountID != dup.ID {
		t.Fatalf("absorb alone moved the deal: %+v", got)
	}
	merged, err := accountmerge.Merge(ctx, tn, s.Accounts, dup.ID, acme.ID, "same company", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if merged.ID != acme.ID || merged.Traits["tier"] != "gold" || merged.Traits["employees"] == nil || len(merged.Domains) != 2 || len(merged.Identifiers) != 3 {
		t.Fatalf("target after the merge: %+v", merged)
	}
	if _, err := s.Accounts.Get(ctx, tn, dup.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("the source stays: %v", err)
	}
	if live, err := s.Accounts.Live(ctx, tn, dup.ID); err != nil || live.ID != acme.ID {
		t.Fatalf("the source's id does not lead to the target: %+v %v", live, err)
	}
	for _, id := range []account.Identifier{{Type: account.Domain, Value: "acme.io"}, {Type: account.CRMAccountID, Value: "001X"}} {
		if a, err := s.Accounts.ByIdentifier(ctx, tn, "identifier", id); err != nil || a.ID != acme.ID {
			t.Fatalf("%+v belongs to %+v (%v)", id, a, err)
		}
	}
	links, err := s.Accounts.AccountsOf(ctx, tn, ann)
	if err != nil || len(links) != 1 || links[0].AccountID != acme.ID || links[0].Role != "buyer" {
		t.Fatalf("ann's links (the target's kept): %+v %v", links, err)
	}
	if n, _ := s.Accounts.CountContacts(ctx, tn, acme.ID); n != 2 {
		t.Fatalf("contacts: %d", n)
	}
	if got, _ := s.Deals.Deal(ctx, tn, d.ID); got.AccountID != acme.ID {
		t.Fatalf("deal: %+v", got)
	}
	if got, _ := s.Tickets.Get(ctx, tn, tk.ID); got.AccountID != acme.ID {
		t.Fatalf("ticket: %+v", got)
	}
	if got, _ := s.Tasks.Get(ctx, tn, ta.ID); got.AccountID != acme.ID {
		t.Fatalf("task: %+v", got)
	}
	recs, err := s.Accounts.Merges(ctx, tn, acme.ID)
	if err != nil || len(recs) != 1 || !recs[0].Done || recs[0].SourceName != "ACME Inc" || recs[0].Links != 2 || recs[0].Reason != "same company" {
		t.Fatalf("record: %+v %v", recs, err)
	}
	// Done: a repeat answers with the target; merging into the merged
	// one, or merging it elsewhere, is refused.
	if again, err := accountmerge.Merge(ctx, tn, s.Accounts, dup.ID, acme.ID, "", "tester"); err != nil || again.ID != acme.ID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	other, err := s.Accounts.Create(ctx, tn, account.CreateInput{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = accountmerge.Merge(ctx, tn, s.Accounts, other.ID, dup.ID, "", "tester")
	if ae, ok := apperr.As(err); !ok || ae.Field != "targetId" {
		t.Fatalf("into a merged account: %v", err)
	}
	_, err = accountmerge.Merge(ctx, tn, s.Accounts, dup.ID, other.ID, "", "tester")
	if ae, ok := apperr.As(err); !ok || ae.Field != "sourceId" {
		t.Fatalf("a merged account elsewhere: %v", err)
	}
}

// TestCrossingMerges runs merges that cross each other at once (X into Y
// beside Y into X; X into Y beside Y into Z) many times: whatever wins,
// no identifier is left with a deleted account, and every id leads to an
// account that exists.
func TestCrossingMerges(t *testing.T) {
	e := apptest.New(t, start)
	s, ctx, tn := e.Services, e.Ctx, e.Tenant
	for round := range 15 {
		var ids []string
		for i := range 3 {
			a, err := s.Accounts.Create(ctx, tn, account.CreateInput{Name: "A", Domains: []string{fmt.Sprintf("r%d-%d.example", round, i)}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, a.ID)
		}
		pairs := [][2]string{{ids[0], ids[1]}, {ids[1], ids[0]}}
		if round%2 == 1 {
			pairs = [][2]string{{ids[0], ids[1]}, {ids[1], ids[2]}}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(pairs))
		for i, p := range pairs {
			wg.Go(func() { _, errs[i] = accountmerge.Merge(ctx, tn, s.Accounts, p[0], p[1], "", "tester") })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil && apperr.CodeOf(err) != apperr.Conflict && apperr.CodeOf(err) != apperr.BadUserInput && apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("round %d, merge %v: %v", round, pairs[i], err)
			}
		}
		for i, id := range ids {
			live, err := s.Accounts.Live(ctx, tn, id)
			if err != nil {
				t.Fatalf("round %d: account %d (%s) leads nowhere: %v (merges: %v)", round, i, id, err, errs)
			}
			d := account.Identifier{Type: account.Domain, Value: fmt.Sprintf("r%d-%d.example", round, i)}
			owner, err := s.Accounts.ByIdentifier(ctx, tn, "identifier", d)
			if err != nil || owner.ID != live.ID {
				t.Fatalf("round %d: %s belongs to %+v (%v), want the live account %s (merges: %v)", round, d.Value, owner, err, live.ID, errs)
			}
		}
	}
}
