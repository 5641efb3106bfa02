package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/deal/dealtest"
)

// BenchmarkCRMReads measures the two reads the CRM issue sets targets
// for, through the real HTTP server and GraphQL stack on the embedded
// store, one client, and reports each one's p50 and p95 (ms):
// pipelineSummary over 100,000 deals of the default pipeline (stored
// directly, spread over its six stages, two currencies; the first call
// counts them into the pipeline's tally, reported as recount-ms, later
// ones read the tally), and a page of 20 of Account.timeline for an
// account of 1,000 contacts with 10 events each over 90 days (linked by
// their email's domain): the first page, and the page after a cursor 60
// days back.
//
//	go test ./server -run '^$' -bench CRMReads -benchtime 300x
func BenchmarkCRMReads(b *testing.B) {
	s := startServer(b, serverOptions{Env: map[string]string{"HALO_LOG_LEVEL": "warn"}})
	tok := s.token(b, "bench")
	seedDeals(b, s, "bench", 100_000)
	acme := createAccount(b, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
	seedContacts(b, s, tok, 1000, 10)

	var recount time.Duration
	timed := func(b *testing.B, name, query string, vars map[string]any, check func(gqlResponse)) {
		b.Run(name, func(b *testing.B) {
			if recount > 0 {
				b.ReportMetric(float64(recount.Milliseconds()), "recount-ms")
			}
			took := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				r := s.gql(b, tok, query, vars)
				took = append(took, time.Since(t0))
				r.requireOK(b)
				check(r)
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
		})
	}

	summary := `{ pipelineSummary(pipeline: "sales") { winRate stages { count } } }`
	t0 := time.Now()
	s.gql(b, tok, summary, nil).requireOK(b)
	recount = time.Since(t0)
	timed(b, "pipelineSummary 100k deals", summary, nil, func(r gqlResponse) {
		var out struct {
			PipelineSummary struct{ Stages []struct{ Count int } }
		}
		r.decode(b, &out)
		n := 0
		for _, st := range out.PipelineSummary.Stages {
			n += st.Count
		}
		if n != 100_000 {
			b.Fatalf("summary counts %d deals", n)
		}
	})
	recount = 0

	page := `query($a: ID!, $after: String) { account(id: $a) { timeline(first: 20, after: $after) { nodes { id occurredAt } pageInfo { endCursor } } } }`
	type tlPage struct {
		Account struct {
			Timeline struct {
				Nodes    []struct{ OccurredAt time.Time }
				PageInfo struct{ EndCursor string }
			}
		}
	}
	full := func(r gqlResponse) {
		var p tlPage
		r.decode(b, &p)
		if len(p.Account.Timeline.Nodes) != 20 {
			b.Fatalf("a page of %d items", len(p.Account.Timeline.Nodes))
		}
	}
	timed(b, "Account.timeline 1000 contacts first page", page, map[string]any{"a": acme.ID}, full)
	// A cursor 60 days back, found by paging as a client scrolls.
	var deep string
	for after := ""; deep == ""; {
		vars := map[string]any{"a": acme.ID}
		if after != "" {
			vars["after"] = after
		}
		var p tlPage
		s.gql(b, tok, page, vars).decode(b, &p)
		if len(p.Account.Timeline.Nodes) == 0 {
			b.Fatal("no item 60 days back")
		}
		if last := p.Account.Timeline.Nodes[len(p.Account.Timeline.Nodes)-1]; time.Since(last.OccurredAt) > 60*24*time.Hour {
			deep = p.Account.Timeline.PageInfo.EndCursor
		}
		after = p.Account.Timeline.PageInfo.EndCursor
	}
	timed(b, "Account.timeline 1000 contacts 60 days back", page, map[string]any{"a": acme.ID, "after": deep}, full)
}

// seedDeals stores n deals of the default pipeline in workspace ws
// directly (a GraphQL call each would take minutes), spread over its
// stages, in EUR and USD.
func seedDeals(b *testing.B, s *testServer, ws string, n int) {
	st, err := openStore(context.Background(), s.Config)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(context.Background())
	now := time.Now()
	docs := make([]any, 0, 5000)
	for i := range n {
		d := dealtest.Spread(i, now)
		if docs = append(docs, d); len(docs) == cap(docs) || i == n-1 {
			if _, err := st.Tenant(ws).C(deal.Deals).InsertMany(context.Background(), docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
}

// seedContacts tracks events events each for people people at acme.com,
// over the last 90 days, through trackBatch: each joins the account
// holding the domain.
func seedContacts(b *testing.B, s *testServer, tok string, people, events int) {
	q := `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`
	now := time.Now().UTC()
	var batch []any
	for p := range people {
		for e := range events {
			at := now.Add(-time.Duration((p*7919+e*104729)%(90*24*60)) * time.Minute)
			batch = append(batch, map[string]any{"messageId": fmt.Sprint("crm-", p, "-", e), "name": "page_viewed",
				"identifiers": []any{map[string]any{"type": "email", "value": fmt.Sprintf("p%d@acme.com", p)}},
				"occurredAt":  at.Format(time.RFC3339Nano)})
			if len(batch) == 500 {
				s.gql(b, tok, q, map[string]any{"in": batch}).requireOK(b)
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		s.gql(b, tok, q, map[string]any{"in": batch}).requireOK(b)
	}
}
