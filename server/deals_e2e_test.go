package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

type gqlDeal struct {
	ID, Stage, Status, Currency string
	Amount                      float64
	Version                     int
	History                     []struct {
		Stage   string
		Seconds float64
		LeftAt  *string
	}
}

const dealFields = `id stage status amount currency version history { stage seconds leftAt }`

func createDeal(t *testing.T, s *testServer, tok string, in map[string]any) gqlDeal {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: CreateDealInput!) { createDeal(input: $in) { `+dealFields+` } }`, map[string]any{"in": in})
	r.requireOK(t)
	var out struct{ CreateDeal gqlDeal }
	r.decode(t, &out)
	return out.CreateDeal
}

// TestE2EDeals drives pipelines and deals through GraphQL on every
// engine: the default pipeline, a deal with its account and contacts,
// concurrent moveDealStage from ten clients (one wins per version),
// closing, the deals list and the pipeline summary.
func TestE2EDeals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
		ann, _ := identify(t, s, tok, ids("email", "ann@acme.com"), nil)
		d := createDeal(t, s, tok, map[string]any{"name": "Acme renewal", "amount": 12000.5, "currency": "eur",
			"accountId": acme.ID, "contactIds": []any{ann.ID}, "expectedCloseAt": "2027-01-15T00:00:00Z"})
		if d.Stage != "qualification" || d.Status != "OPEN" || d.Amount != 12000.5 || d.Currency != "EUR" || d.Version != 1 {
			t.Fatalf("created %+v", d)
		}
		r := s.gql(t, tok, `query($id: ID!) { deal(id: $id) { account { name } contacts { id } expectedCloseAt } pipelines { key stages { key outcome } } }`, map[string]any{"id": d.ID})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"account":{"name":"Acme"}`) || !strings.Contains(string(r.Data), ann.ID) || !strings.Contains(string(r.Data), `"key":"sales"`) {
			t.Fatalf("deal: %s", r.Data)
		}

		// Ten clients move the deal from version 1 at once: one wins.
		move := `mutation($id: ID!, $st: String!, $v: Int!) { moveDealStage(id: $id, stage: $st, reason: "call", expectedVersion: $v) { version stage } }`
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			wins      int
			conflicts int
		)
		for i := range 10 {
			wg.Go(func() {
				st := []string{"discovery", "proposal", "negotiation"}[i%3]
				r := s.gql(t, tok, move, map[string]any{"id": d.ID, "st": st, "v": 1})
				mu.Lock()
				defer mu.Unlock()
				if len(r.Errors) == 0 {
					wins++
				} else if r.Errors[0].Code() == "CONFLICT" {
					conflicts++
				} else {
					t.Errorf("move: %s", r.Body)
				}
			})
		}
		wg.Wait()
		// FerretDB 1.x does not match and replace atomically (see
		// docs/architecture.md, FerretDB quirks): there, only the kinds
		// of answers are checked.
		if atomic := e.name == "sqlite" || os.Getenv("HALO_TEST_MONGODB_URI") != ""; atomic && (wins != 1 || conflicts != 9) || wins+conflicts != 10 || wins == 0 {
			t.Fatalf("concurrent moves on %s: %d won, %d conflicts", e.name, wins, conflicts)
		}
		r = s.gql(t, tok, `query($id: ID!) { deal(id: $id) { version } }`, map[string]any{"id": d.ID})
		r.requireOK(t)
		var cur struct{ Deal struct{ Version int } }
		r.decode(t, &cur)
		if cur.Deal.Version != 2 && e.name == "sqlite" {
			t.Fatalf("version after the race: %d", cur.Deal.Version)
		}
		version := cur.Deal.Version
		r = s.gql(t, tok, `mutation($id: ID!, $v: Int!) { closeDeal(id: $id, outcome: WON, reason: "signed", expectedVersion: $v) { status stage closedAt closeReason history { stage leftAt } } }`, map[string]any{"id": d.ID, "v": version})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"status":"WON","stage":"won"`) || strings.Count(string(r.Data), `"stage"`) != version+2 {
			t.Fatalf("close: %s", r.Data)
		}
		createDeal(t, s, tok, map[string]any{"name": "b", "amount": 100, "currency": "EUR", "stage": "proposal"})
		createDeal(t, s, tok, map[string]any{"name": "c", "amount": 50, "currency": "USD", "stage": "proposal"})
		r = s.gql(t, tok, `{ open: deals(filter: {status: OPEN}, first: 1) { totalCount nodes { stage } pageInfo { hasNextPage } }
		  proposal: deals(filter: {pipeline: "sales", stage: "proposal"}) { totalCount }
		  pipelineSummary { won lost winRate averageCycleDays stages { stage { key } count values { currency amount weighted } } } }`, nil)
		r.requireOK(t)
		var got struct {
			Open struct {
				TotalCount int
				PageInfo   struct{ HasNextPage bool }
			}
			Proposal        struct{ TotalCount int }
			PipelineSummary struct {
				Won, Lost int
				WinRate   *float64
				Stages    []struct {
					Stage  struct{ Key string }
					Count  int
					Values []struct {
						Currency         string
						Amount, Weighted float64
					}
				}
			}
		}
		r.decode(t, &got)
		ps := got.PipelineSummary
		if got.Open.TotalCount != 2 || !got.Open.PageInfo.HasNextPage || got.Proposal.TotalCount != 2 || ps.Won != 1 || ps.WinRate == nil || *ps.WinRate != 1 {
			t.Fatalf("lists and summary: %s", r.Data)
		}
		for _, st := range ps.Stages {
			if st.Stage.Key == "proposal" && (st.Count != 2 || len(st.Values) != 2 || st.Values[0].Currency != "EUR" || st.Values[0].Weighted != 50) {
				t.Fatalf("proposal stage: %+v", st)
			}
		}
	})
}

// TestE2EDealRefusals: bad input names its field; stale versions,
// unknown ids and other workspaces' links are refused; nothing is
// stored for a refused call; the scopes.
func TestE2EDealRefusals(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	d := createDeal(t, s, tok, map[string]any{"name": "x", "currency": "EUR"})
	globex := s.token(t, "globex")
	gAcc := createAccount(t, s, globex, map[string]any{"name": "Globex"})
	gp, _ := identify(t, s, globex, ids("email", "g@globex.test"), nil)
	for _, c := range []struct {
		name, query, code, field string
	}{
		{"negative amount", `mutation { createDeal(input: {name: "x", currency: "EUR", amount: -5}) { id } }`, "BAD_USER_INPUT", "input.amount"},
		{"unknown currency", `mutation { createDeal(input: {name: "x", currency: "ABC"}) { id } }`, "BAD_USER_INPUT", "input.currency"},
		{"unknown pipeline", `mutation { createDeal(input: {name: "x", currency: "EUR", pipeline: "nope"}) { id } }`, "BAD_USER_INPUT", "input.pipeline"},
		{"unknown stage", `mutation { createDeal(input: {name: "x", currency: "EUR", stage: "nope"}) { id } }`, "BAD_USER_INPUT", "input.stage"},
		{"another workspace's account", fmt.Sprintf(`mutation { createDeal(input: {name: "x", currency: "EUR", accountId: %q}) { id } }`, gAcc.ID), "NOT_FOUND", ""},
		{"another workspace's contact", fmt.Sprintf(`mutation { createDeal(input: {name: "x", currency: "EUR", contactIds: [%q]}) { id } }`, gp.ID), "NOT_FOUND", ""},
		{"a stale version", fmt.Sprintf(`mutation { moveDealStage(id: %q, stage: "proposal", expectedVersion: 9) { id } }`, d.ID), "CONFLICT", ""},
		{"an unknown stage", fmt.Sprintf(`mutation { moveDealStage(id: %q, stage: "nope", expectedVersion: 1) { id } }`, d.ID), "BAD_USER_INPUT", "stage"},
		{"an unknown deal", `mutation { closeDeal(id: "nope", outcome: WON, expectedVersion: 1) { id } }`, "NOT_FOUND", ""},
		{"a pipeline without an open stage", `mutation { definePipeline(key: "p", name: "P", stages: [{key: "w", name: "W", probability: 1, outcome: WON}]) { key } }`, "BAD_USER_INPUT", "stages"},
		{"a probability over 1", `mutation { definePipeline(key: "p", name: "P", stages: [{key: "a", name: "A", probability: 2}]) { key } }`, "BAD_USER_INPUT", "stages[0].probability"},
		{"a summary of nothing", `{ pipelineSummary(pipeline: "nope") { won } }`, "BAD_USER_INPUT", "pipeline"},
		{"a stage without its pipeline", `{ deals(filter: {stage: "proposal"}) { totalCount } }`, "BAD_USER_INPUT", "filter.pipeline"},
		{"a malformed cursor", `{ deals(after: "deals-_id.zzz") { totalCount } }`, "BAD_USER_INPUT", "after"},
		{"a cursor of another order", `{ deals(filter: {status: OPEN}, after: "deals-_id.zzz") { totalCount } }`, "BAD_USER_INPUT", "after"},
		{"a test currency", `mutation { createDeal(input: {name: "x", currency: "XXX"}) { id } }`, "BAD_USER_INPUT", "input.currency"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, nil)
			r.requireError(t, 0, c.code)
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
	// Closing a closed deal is refused; nothing else was stored.
	s.gql(t, tok, fmt.Sprintf(`mutation { closeDeal(id: %q, outcome: LOST, expectedVersion: 1) { id } }`, d.ID), nil).requireOK(t)
	r := s.gql(t, tok, fmt.Sprintf(`mutation { closeDeal(id: %q, outcome: WON, expectedVersion: 2) { id } }`, d.ID), nil)
	r.requireError(t, 0, "BAD_USER_INPUT")
	r = s.gql(t, tok, `{ deals { totalCount } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":1`) {
		t.Fatalf("deals after refusals: %s", r.Data)
	}
	// Another workspace sees none of it.
	r = s.gql(t, globex, fmt.Sprintf(`{ deal(id: %q) { id } deals { totalCount } }`, d.ID), nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"deal":null`) || !strings.Contains(string(r.Data), `"totalCount":0`) {
		t.Fatalf("globex sees acme's deals: %s", r.Data)
	}
	ro := s.token(t, "acme", auth.ScopeCRMRead)
	s.gql(t, ro, `{ deals { totalCount } }`, nil).requireOK(t)
	s.gql(t, ro, `mutation { createDeal(input: {name: "z", currency: "EUR"}) { id } }`, nil).requireError(t, 0, "FORBIDDEN")
	s.gql(t, ro, `{ deals { nodes { contacts { id } } } }`, nil).requireError(t, 0, "FORBIDDEN")
}
