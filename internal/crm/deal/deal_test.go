package deal_test

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestPipelines(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Deals
	ps, err := s.Pipelines(e.Ctx, e.Tenant)
	if err != nil || len(ps) != 1 || ps[0].Key != deal.DefaultKey || len(ps[0].Stages) != 6 {
		t.Fatalf("default pipelines: %+v %v", ps, err)
	}
	stages := []deal.Stage{{Key: "new", Name: "New", Probability: 0.1, Outcome: deal.Open}, {Key: "signed", Name: "Signed", Probability: 1, Outcome: deal.Won}}
	p, err := s.Define(e.Ctx, e.Tenant, "renewals", "Renewals", stages)
	if err != nil || p.Version != 1 {
		t.Fatalf("define: %+v %v", p, err)
	}
	for _, c := range []struct {
		key   string
		st    []deal.Stage
		field string
	}{
		{"Bad Key", stages, "key"},
		{"x", nil, "stages"},
		{"x", []deal.Stage{{Key: "a", Name: "A", Probability: 1.5, Outcome: deal.Open}}, "stages[0].probability"},
		{"x", []deal.Stage{{Key: "a", Name: "A", Probability: 0.5, Outcome: "MAYBE"}}, "stages[0].outcome"},
		{"x", []deal.Stage{{Key: "a", Name: "A", Outcome: deal.Open}, {Key: "a", Name: "B", Outcome: deal.Won}}, "stages[1].key"},
		{"x", []deal.Stage{{Key: "w", Name: "W", Outcome: deal.Won}}, "stages"},
	} {
		_, err := s.Define(e.Ctx, e.Tenant, c.key, "X", c.st)
		apptest.WantCode(t, err, apperr.BadUserInput, c.field)
	}
	// A stage holding deals cannot go; reordering can.
	d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Renew Acme", Pipeline: "renewals", Currency: "EUR", Amount: 10})
	if err != nil || d.Stage != "new" {
		t.Fatalf("create: %+v %v", d, err)
	}
	_, err = s.Define(e.Ctx, e.Tenant, "renewals", "Renewals", []deal.Stage{{Key: "talks", Name: "Talks", Outcome: deal.Open}, stages[1]})
	apptest.WantCode(t, err, apperr.Conflict, "")
	p, err = s.Define(e.Ctx, e.Tenant, "renewals", "Renewals 2", []deal.Stage{stages[1], stages[0]})
	if err != nil || p.Version != 2 || p.Stages[0].Key != "signed" {
		t.Fatalf("reorder: %+v %v", p, err)
	}
	// A new deal starts in the first open stage, wherever it is.
	if d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "next", Pipeline: "renewals", Currency: "EUR"}); err != nil || d.Stage != "new" || d.Status != deal.Open {
		t.Fatalf("create after the reorder: %+v %v", d, err)
	}
	// Changing the outcome of a stage that holds deals is refused.
	flipped := []deal.Stage{stages[1], {Key: "new", Name: "New", Probability: 1, Outcome: deal.Won}, {Key: "talks", Name: "Talks", Outcome: deal.Open}}
	_, err = s.Define(e.Ctx, e.Tenant, "renewals", "Renewals", flipped)
	apptest.WantCode(t, err, apperr.Conflict, "")
	// The default pipeline, never stored, guards its stages as well.
	if _, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "default", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Define(e.Ctx, e.Tenant, deal.DefaultKey, "Sales", []deal.Stage{{Key: "new", Name: "New", Outcome: deal.Open}})
	apptest.WantCode(t, err, apperr.Conflict, "")
}

func TestAmountsAreDecimals(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Deals
	for _, c := range []struct {
		cur    string
		amount float64
		minor  int64
	}{
		{"EUR", 1.005, 101}, {"EUR", 10.075, 1008}, {"EUR", 2.675, 268}, {"usd", 0.1, 10}, {"JPY", 1000.5, 1001}, {"BHD", 1.0005, 1001},
	} {
		d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "x", Currency: c.cur, Amount: c.amount})
		if err != nil || d.Amount != c.minor {
			t.Errorf("%v %s: %v %v, want %d minor units", c.amount, c.cur, d, err, c.minor)
		}
	}
	for _, bad := range []string{"XXX", "XTS", "XAU", "EU", "EURO", ""} {
		_, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "x", Currency: bad, Amount: 1})
		apptest.WantCode(t, err, apperr.BadUserInput, "input.currency")
	}
}

// TestDealLifecycle: create, update with the version read, stage moves
// with their history, closing and reopening, and the refusals.
func TestDealLifecycle(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Deals
	acme, err := e.Services.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: identity.Email, Value: "ann@acme.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	ann := res.Profile.ID
	d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Acme renewal", Amount: 12000.505, Currency: "eur", AccountID: acme.ID, ContactIDs: []string{ann, ann}, OwnerID: "rep-1"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Pipeline != "sales" || d.Stage != "qualification" || d.Status != deal.Open || d.Amount != 1200051 || d.Currency != "EUR" || len(d.ContactIDs) != 1 || d.Version != 1 {
		t.Fatalf("created %+v", d)
	}
	for _, c := range []struct {
		in    deal.CreateInput
		code  apperr.Code
		field string
	}{
		{deal.CreateInput{Name: "x", Currency: "EUR", Amount: -1}, apperr.BadUserInput, "input.amount"},
		{deal.CreateInput{Name: "x", Currency: "ZZZ"}, apperr.BadUserInput, "input.currency"},
		{deal.CreateInput{Name: "x", Currency: "EUR", Pipeline: "nope"}, apperr.BadUserInput, "input.pipeline"},
		{deal.CreateInput{Name: "x", Currency: "EUR", Stage: "nope"}, apperr.BadUserInput, "input.stage"},
		{deal.CreateInput{Name: " ", Currency: "EUR"}, apperr.BadUserInput, "input.name"},
		{deal.CreateInput{Name: "x", Currency: "EUR", AccountID: "nope"}, apperr.NotFound, ""},
		{deal.CreateInput{Name: "x", Currency: "EUR", ContactIDs: []string{"nope"}}, apperr.NotFound, ""},
		{deal.CreateInput{Name: "x", Currency: "EUR", Amount: math.Inf(1)}, apperr.BadUserInput, "input.amount"},
	} {
		_, err := s.Create(e.Ctx, e.Tenant, c.in)
		apptest.WantCode(t, err, c.code, c.field)
	}
	// JPY has no minor units.
	y, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "yen", Currency: "JPY", Amount: 1000.4})
	if err != nil || y.Amount != 1000 || y.AmountUnits() != 1000 {
		t.Fatalf("JPY: %+v %v", y, err)
	}

	amount := 15000.0
	d, err = s.Update(e.Ctx, e.Tenant, d.ID, deal.UpdateInput{Amount: &amount, ExpectedVersion: 1})
	if err != nil || d.Amount != 1500000 || d.Version != 2 {
		t.Fatalf("update: %+v %v", d, err)
	}
	_, err = s.Update(e.Ctx, e.Tenant, d.ID, deal.UpdateInput{Amount: &amount, ExpectedVersion: 1})
	apptest.WantCode(t, err, apperr.Conflict, "")

	e.Clock.Set(start.Add(time.Hour))
	d, err = s.Move(e.Ctx, e.Tenant, d.ID, "proposal", "sent the quote", 2)
	if err != nil || d.Stage != "proposal" || len(d.History) != 2 || d.History[0].LeftAt.Sub(d.History[0].EnteredAt) != time.Hour || d.History[1].Reason != "sent the quote" {
		t.Fatalf("move: %+v %v", d, err)
	}
	_, err = s.Move(e.Ctx, e.Tenant, d.ID, "nope", "", 3)
	apptest.WantCode(t, err, apperr.BadUserInput, "stage")
	_, err = s.Move(e.Ctx, e.Tenant, d.ID, "proposal", "", 3)
	apptest.WantCode(t, err, apperr.BadUserInput, "stage")
	e.Clock.Set(start.Add(49 * time.Hour))
	d, err = s.Close(e.Ctx, e.Tenant, d.ID, deal.Won, "signed", 3)
	if err != nil || d.Status != deal.Won || d.Stage != "won" || d.ClosedAt.IsZero() || d.CloseReason != "signed" {
		t.Fatalf("close: %+v %v", d, err)
	}
	_, err = s.Close(e.Ctx, e.Tenant, d.ID, deal.Lost, "", 4)
	apptest.WantCode(t, err, apperr.BadUserInput, "id")
	_, err = s.Close(e.Ctx, e.Tenant, d.ID, "MAYBE", "", 4)
	apptest.WantCode(t, err, apperr.BadUserInput, "outcome")
	// Reopening is a move to an open stage.
	d, err = s.Move(e.Ctx, e.Tenant, d.ID, "negotiation", "they came back", 4)
	if err != nil || d.Status != deal.Open || !d.ClosedAt.IsZero() {
		t.Fatalf("reopen: %+v %v", d, err)
	}
	_, err = s.Move(e.Ctx, e.Tenant, "nope", "won", "", 1)
	apptest.WantCode(t, err, apperr.NotFound, "")
}

// TestConcurrentMovesOneWinsPerVersion: ten writers move one deal from
// the same version: exactly one succeeds, the others get CONFLICT, and
// the history holds one move.
func TestConcurrentMovesOneWinsPerVersion(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Deals
	d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "race", Currency: "USD", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	stages := []string{"discovery", "proposal", "negotiation", "won", "lost"}
	for round := int64(1); round <= 3; round++ {
		var (
			wg             sync.WaitGroup
			mu             sync.Mutex
			wins, conflict int
		)
		for i := range 10 {
			wg.Go(func() {
				_, err := s.Move(e.Ctx, e.Tenant, d.ID, stages[(i+int(round))%len(stages)], "", round)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case apperr.CodeOf(err) == apperr.Conflict:
					conflict++
				case apperr.CodeOf(err) == apperr.BadUserInput: // the stage it is in already
				default:
					t.Errorf("move: %v", err)
				}
			})
		}
		wg.Wait()
		got, _ := s.Deal(e.Ctx, e.Tenant, d.ID)
		if wins != 1 || got.Version != round+1 || len(got.History) != int(round)+1 {
			t.Fatalf("round %d: %d wins, %d conflicts, version %d, %d visits", round, wins, conflict, got.Version, len(got.History))
		}
	}
}

// TestListsAndSummary: filters by index and by reading, their counts, and
// the pipeline summary's figures against the deals made.
func TestListsAndSummary(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Deals
	mk := func(name, stage, cur string, amount float64, owner string, closeIn time.Duration) *deal.Deal {
		t.Helper()
		at := start.Add(closeIn)
		d, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: name, Stage: stage, Currency: cur, Amount: amount, OwnerID: owner, ExpectedCloseAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if _, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "undated", Stage: "lost", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "undated open", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if err := (deal.Filter{Stage: "proposal"}).Check(); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Errorf("a stage without its pipeline: %v", err)
	}
	mk("a", "proposal", "EUR", 100, "ann", 24*time.Hour)
	mk("b", "proposal", "EUR", 50.25, "bob", 48*time.Hour)
	mk("c", "proposal", "USD", 10, "ann", 72*time.Hour)
	mk("d", "negotiation", "EUR", 1000, "ann", 24*time.Hour)
	w := mk("e", "qualification", "EUR", 7, "bob", 0)
	e.Clock.Set(start.Add(48 * time.Hour))
	if _, err := s.Close(e.Ctx, e.Tenant, w.ID, deal.Won, "", 1); err != nil {
		t.Fatal(err)
	}
	l := mk("f", "qualification", "EUR", 3, "bob", 0)
	if _, err := s.Close(e.Ctx, e.Tenant, l.ID, deal.Lost, "", 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    deal.Filter
		want int
	}{
		{deal.Filter{}, 8},
		{deal.Filter{Pipeline: "sales", Stage: "proposal"}, 3},
		{deal.Filter{Pipeline: "sales", Stage: "proposal", Owner: "ann"}, 2},
		{deal.Filter{Owner: "ann"}, 3},
		{deal.Filter{Status: deal.Open}, 5},
		{deal.Filter{Status: deal.Open, ClosingFrom: start.Add(24 * time.Hour), ClosingTo: start.Add(72 * time.Hour)}, 3},
		{deal.Filter{ClosingTo: start.Add(30 * time.Hour), Owner: "ann"}, 2},
		{deal.Filter{Status: deal.Won}, 1},
		// Undated deals close at no time: no range holds them.
		{deal.Filter{Status: deal.Open, ClosingFrom: start.Add(-time.Hour)}, 4},
		{deal.Filter{ClosingFrom: start.Add(-time.Hour)}, 6},
	} {
		n, err := s.Count(e.Ctx, e.Tenant, c.f)
		var got int
		after := ""
		for {
			page, err := s.List(e.Ctx, e.Tenant, c.f, 2, after)
			if err != nil {
				t.Fatal(err)
			}
			got += len(page.Deals)
			if !page.HasNext {
				break
			}
			after = page.Cursors[len(page.Cursors)-1]
		}
		if err != nil || n != int64(c.want) || got != c.want {
			t.Errorf("%+v: count %d, paged %d, want %d (%v)", c.f, n, got, c.want, err)
		}
	}
	sum, err := s.Summarize(e.Ctx, e.Tenant, "sales")
	if err != nil {
		t.Fatal(err)
	}
	byStage := map[string]deal.StageSummary{}
	for _, st := range sum.Stages {
		byStage[st.Stage.Key] = st
	}
	prop := byStage["proposal"]
	if prop.Count != 3 || len(prop.Values) != 2 || prop.Values[0].Currency != "EUR" || prop.Values[0].Amount != 150.25 || math.Abs(prop.Values[0].Weighted-75.125) > 1e-9 || prop.Values[1].Amount != 10 {
		t.Errorf("proposal: %+v", prop)
	}
	if sum.Won != 1 || sum.Lost != 2 || sum.WinRate == nil || math.Abs(*sum.WinRate-1.0/3) > 1e-9 || sum.AverageCycle != 48*time.Hour || byStage["won"].Count != 1 {
		t.Errorf("summary: won %d lost %d rate %v cycle %s", sum.Won, sum.Lost, sum.WinRate, sum.AverageCycle)
	}
	_, err = s.Summarize(e.Ctx, e.Tenant, "nope")
	apptest.WantCode(t, err, apperr.BadUserInput, "pipeline")
}

// TestDealNodeFollowsContacts: "a contact of an open deal over 1,000":
// people enter when a deal names them and leave when it stops (new
// contacts, a loss), without any other write to them.
func TestDealNodeFollowsContacts(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	ann, bob := e.Person(t, "ann@example.org"), e.Person(t, "bob@example.org")
	seg, err := s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "big open deals", Rule: &rule.Rule{Deal: &rule.DealCond{
		Statuses: []string{deal.Open}, Amount: &rule.AmountCond{Op: rule.GT, Value: 1000}}}})
	if err != nil {
		t.Fatal(err)
	}
	member := func(id string) bool {
		t.Helper()
		return slices.Contains(e.Profile(t, id).Segments, seg.ID)
	}
	d, err := s.Deals.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Big", Currency: "EUR", Amount: 5000, ContactIDs: []string{ann}})
	if err != nil {
		t.Fatal(err)
	}
	if !member(ann) || member(bob) {
		t.Fatalf("created: ann %v, bob %v", member(ann), member(bob))
	}
	if d, err = s.Deals.Update(e.Ctx, e.Tenant, d.ID, deal.UpdateInput{ContactIDs: []string{bob}, SetContacts: true, ExpectedVersion: d.Version}); err != nil {
		t.Fatal(err)
	}
	if member(ann) || !member(bob) {
		t.Fatalf("contacts changed: ann %v, bob %v", member(ann), member(bob))
	}
	if _, err := s.Deals.Close(e.Ctx, e.Tenant, d.ID, deal.Lost, "", d.Version); err != nil {
		t.Fatal(err)
	}
	if member(bob) {
		t.Fatal("lost: bob stays")
	}
	// A bad node is refused with its field.
	_, err = s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "x", Rule: &rule.Rule{Deal: &rule.DealCond{Pipeline: "sales", Stages: []string{"nope"}}}})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.rule.deal.stages[0]")
	_, err = s.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "x", Rule: &rule.Rule{Deal: &rule.DealCond{Stages: []string{"proposal"}}}})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.rule.deal.pipeline")
}
