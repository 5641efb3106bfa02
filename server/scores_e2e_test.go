package main

// E2E tests of the built-in scores (schema/scores.graphqls): Profile.scores
// against hand-computed expectations, the workspace summary, scopes,
// profiles ranked and filtered by a score (both engines), the order
// settings with their recount, and the churn segment of the issue: a
// regular buyer enters "churn risk > 0.7 and LTV > 500" by time alone
// (the sweeper at the churn crossing) and leaves with the next order, seen
// over a websocket.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/traits"
)

const scoreDay = 24 * time.Hour

const scoresSelection = `scores { orders revenue firstOrderAt lastOrderAt churnRisk engagement lifetimeValue explain rfm { recency frequency monetary label } }`

type gqlScores struct {
	Orders        int        `json:"orders"`
	Revenue       float64    `json:"revenue"`
	FirstOrderAt  *time.Time `json:"firstOrderAt"`
	LastOrderAt   *time.Time `json:"lastOrderAt"`
	ChurnRisk     float64    `json:"churnRisk"`
	Engagement    float64    `json:"engagement"`
	LifetimeValue float64    `json:"lifetimeValue"`
	Explain       []string   `json:"explain"`
	RFM           struct {
		Recency   int     `json:"recency"`
		Frequency int     `json:"frequency"`
		Monetary  int     `json:"monetary"`
		Label     *string `json:"label"`
	} `json:"rfm"`
}

type gqlScoreSummary struct {
	At             time.Time `json:"at"`
	Buyers         int       `json:"buyers"`
	SampledFrom    int       `json:"sampledFrom"`
	TypicalGapDays *float64  `json:"typicalGapDays"`
	Recency        []float64 `json:"recency"`
	Frequency      []float64 `json:"frequency"`
	Monetary       []float64 `json:"monetary"`
}

const scoreSummaryFields = `at buyers sampledFrom typicalGapDays recency frequency monetary`

var scoreMsgSeq atomic.Int64

// scoreTrack tracks one event for email (at: occurredAt; zero: the server
// clock) and returns the profile id.
func scoreTrack(t testing.TB, s *testServer, tok, email, name string, at time.Time, props map[string]any) string {
	t.Helper()
	in := map[string]any{
		"messageId":   fmt.Sprintf("sc-%d-%d", time.Now().UnixNano(), scoreMsgSeq.Add(1)),
		"identifiers": ids("email", email), "name": name, "properties": props,
	}
	if !at.IsZero() {
		in["occurredAt"] = at.Format(time.RFC3339Nano)
	}
	r := s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { profile { id } } }`, map[string]any{"in": in})
	r.requireOK(t)
	var out struct {
		Track struct{ Profile struct{ ID string } }
	}
	r.decode(t, &out)
	return out.Track.Profile.ID
}

func scoresOf(t testing.TB, s *testServer, tok, pid string) gqlScores {
	t.Helper()
	r := s.gql(t, tok, `query($p: ID) { profile(id: $p) { id `+scoresSelection+` } }`, map[string]any{"p": pid})
	r.requireOK(t)
	var out struct {
		Profile *struct{ Scores gqlScores }
	}
	r.decode(t, &out)
	if out.Profile == nil {
		t.Fatalf("profile %s not found", pid)
	}
	return out.Profile.Scores
}

// refreshScores forces a new workspace summary and returns it once it
// counts wantBuyers (a refresh started in the background by an earlier
// read may still be finishing).
func refreshScores(t testing.TB, s *testServer, tok string, wantBuyers int) gqlScoreSummary {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := s.gql(t, tok, `mutation { refreshScoreSummary { `+scoreSummaryFields+` } }`, nil)
		r.requireOK(t)
		var out struct{ RefreshScoreSummary *gqlScoreSummary }
		r.decode(t, &out)
		if out.RefreshScoreSummary != nil && out.RefreshScoreSummary.Buyers == wantBuyers {
			return *out.RefreshScoreSummary
		}
		if time.Now().After(deadline) {
			t.Fatalf("refreshScoreSummary: want %d buyers, got %s", wantBuyers, r.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Hand-written copies of the formulas of scores/doc.go.

func handChurn(daysSince, gapDays float64) float64 {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	s0 := sig(-4)
	return (sig(2*(daysSince/gapDays-2)) - s0) / (1 - s0)
}

func handLTV(revenue float64, orders int, gapDays, churn float64) float64 {
	return revenue + revenue/float64(orders)*(365/gapDays)*(1-churn)
}

// handEngagement: events at whole-day ages.
func handEngagement(ages ...int) float64 {
	a := 0.0
	for _, d := range ages {
		a += math.Exp(-float64(d) / 14)
	}
	return 100 * (1 - math.Exp(-a/12))
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// scoreBuyer is a seeded order history: orders `ago` days before now,
// worth value each (values overrides per order).
type scoreBuyer struct {
	email  string
	ago    []int
	value  float64
	values []float64
}

// The seed of TestScoresAPI: six buyers, every one with a 10-day rhythm
// (so the typical gap is 10 days and every usual gap is exactly 10), and
// one non-buyer. Hand-computed at now (usual gap 10 days):
//
//	        orders revenue  last   churn    LTV
//	ana     4      400      10 d   0.1031   3673.8
//	ben     1       20       5 d   0.0300    728.1
//	cat     2       60      50 d   0.9975     62.8
//	dan     3      600       5 d   0.0300   7681.2
//	eve     5       50      40 d   0.9817     56.7
//	fay     6      480       5 d   0.0300   3312.5
//	gus     0        0       -     0           0
var apiBuyers = []scoreBuyer{
	{email: "ana@example.com", ago: []int{40, 30, 20, 10}, values: []float64{50, 100, 150, 100}},
	{email: "ben@example.com", ago: []int{5}, value: 20},
	{email: "cat@example.com", ago: []int{60, 50}, value: 30},
	{email: "dan@example.com", ago: []int{25, 15, 5}, value: 200},
	{email: "eve@example.com", ago: []int{80, 70, 60, 50, 40}, value: 10},
	{email: "fay@example.com", ago: []int{55, 45, 35, 25, 15, 5}, value: 80},
}

func seedBuyers(t testing.TB, s *testServer, tok string, now time.Time, buyers []scoreBuyer) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for _, b := range buyers {
		for i, ago := range b.ago {
			v := b.value
			if b.values != nil {
				v = b.values[i]
			}
			pids[b.email] = scoreTrack(t, s, tok, b.email, "order_completed", now.Add(-time.Duration(ago)*scoreDay), map[string]any{"revenue": v, "sku": "A"})
		}
	}
	return pids
}

// scoreNow is noon UTC today: whole-day ages for engagement.
func scoreNow() time.Time { return time.Now().UTC().Truncate(scoreDay).Add(12 * time.Hour) }

// TestScoresAPI: Profile.scores against hand-checked values, the summary,
// scopes, and profiles ranked and filtered by a score, on both engines.
func TestScoresAPI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		now := scoreNow()
		clock := app.NewManualClock(now)
		s := startServer(t, serverOptions{Env: e.env(t), Clock: clock})
		admin := s.token(t, "acme")

		// Defaults before anything is set.
		r := s.gql(t, admin, `{ scoreSettings { orderEvent revenueProperty updatedAt recount { status } } scoreSummary { buyers } }`, nil)
		r.requireOK(t)
		if got := string(r.Data); got != `{"scoreSettings":{"orderEvent":"order_completed","revenueProperty":"revenue","updatedAt":null,"recount":{"status":"DONE"}},"scoreSummary":null}` {
			t.Fatalf("defaults: %s", got)
		}

		pids := seedBuyers(t, s, admin, now, apiBuyers)
		gus := scoreTrack(t, s, admin, "gus@example.com", "page_viewed", now.Add(-scoreDay), nil)
		scoreTrack(t, s, admin, "gus@example.com", "page_viewed", now, nil)
		pids["gus@example.com"] = gus
		// Not an order: another event name, even with a revenue.
		scoreTrack(t, s, admin, "ana@example.com", "cart_viewed", now.Add(-10*scoreDay), map[string]any{"revenue": 999})

		sum := refreshScores(t, s, admin, 6)
		t.Run("summary", func(t *testing.T) {
			if !sum.At.Equal(now) || sum.SampledFrom != 6 || sum.TypicalGapDays == nil || !near(*sum.TypicalGapDays, 10, 1e-6) {
				t.Fatalf("summary %+v", sum)
			}
			// Nearest-rank quintiles of the six buyers (see apiBuyers).
			if !slices.Equal(sum.Recency, []float64{5, 5, 10, 40}) || !slices.Equal(sum.Frequency, []float64{2, 3, 4, 5}) ||
				!slices.Equal(sum.Monetary, []float64{50, 60, 400, 480}) {
				t.Fatalf("quintile boundaries %+v", sum)
			}
			r := s.gql(t, admin, `{ scoreSummary { `+scoreSummaryFields+` } }`, nil)
			r.requireOK(t)
			var out struct{ ScoreSummary *gqlScoreSummary }
			r.decode(t, &out)
			if out.ScoreSummary == nil || out.ScoreSummary.Buyers != 6 || !out.ScoreSummary.At.Equal(now) {
				t.Fatalf("scoreSummary %s", r.Data)
			}
		})

		t.Run("scores", func(t *testing.T) {
			// ana: 4 orders 40, 30, 20, 10 days ago for 400; usual gap
			// (30 + 10) / 4 = 10 days, 10 days since the last order.
			a := scoresOf(t, s, admin, pids["ana@example.com"])
			if a.Orders != 4 || a.Revenue != 400 || a.FirstOrderAt == nil || !a.FirstOrderAt.Equal(now.Add(-40*scoreDay)) ||
				a.LastOrderAt == nil || !a.LastOrderAt.Equal(now.Add(-10*scoreDay)) {
				t.Fatalf("ana's order history: %+v", a)
			}
			churn := handChurn(10, 10)
			if !near(a.ChurnRisk, churn, 1e-6) || !near(churn, 0.1031, 1e-4) {
				t.Errorf("ana's churn risk %v, want %v", a.ChurnRisk, churn)
			}
			if ltv := handLTV(400, 4, 10, churn); !near(a.LifetimeValue, ltv, 1e-6) {
				t.Errorf("ana's lifetime value %v, want %v", a.LifetimeValue, ltv)
			}
			// Five events (4 orders, a cart view) at 40, 30, 20, 10, 10 days.
			if eng := handEngagement(40, 30, 20, 10, 10); !near(a.Engagement, eng, 1e-6) {
				t.Errorf("ana's engagement %v, want %v", a.Engagement, eng)
			}
			// R: 10 days is above the cuts 5, 5 → quintile 3 → R 3; F: 4
			// orders above 2, 3 → 3; M: 400 above 50, 60 → 3; FM 3.
			if a.RFM.Recency != 3 || a.RFM.Frequency != 3 || a.RFM.Monetary != 3 || a.RFM.Label == nil || *a.RFM.Label != "Need attention" {
				t.Errorf("ana's RFM %+v", a.RFM)
			}
			if len(a.Explain) != 4 ||
				!strings.HasPrefix(a.Explain[0], "RFM 3-3-3 (Need attention): last order 10 days ago") ||
				!strings.HasPrefix(a.Explain[1], fmt.Sprintf("Engagement %.0f: 5 events in the last 90 days", math.Round(handEngagement(40, 30, 20, 10, 10)))) ||
				!strings.HasPrefix(a.Explain[2], "Churn risk 0.10: no order for 10 days, 1.0× your usual 10 days between orders") ||
				!strings.HasPrefix(a.Explain[3], fmt.Sprintf("Lifetime value %.2f: 400.00 spent so far over 4 orders", handLTV(400, 4, 10, churn))) {
				t.Errorf("ana's explanation:\n%s", strings.Join(a.Explain, "\n"))
			}

			// Every buyer: ranges, RFM 1..5 with a label, hand-checked LTV.
			want := map[string]struct {
				orders int
				rev    float64
				since  float64
			}{
				"ben@example.com": {1, 20, 5}, "cat@example.com": {2, 60, 50}, "dan@example.com": {3, 600, 5},
				"eve@example.com": {5, 50, 40}, "fay@example.com": {6, 480, 5},
			}
			for email, w := range want {
				sc := scoresOf(t, s, admin, pids[email])
				c := handChurn(w.since, 10)
				if sc.Orders != w.orders || sc.Revenue != w.rev || !near(sc.ChurnRisk, c, 1e-6) || !near(sc.LifetimeValue, handLTV(w.rev, w.orders, 10, c), 1e-6) {
					t.Errorf("%s: %+v, want orders %d revenue %v churn %v", email, sc, w.orders, w.rev, c)
				}
				if sc.ChurnRisk < 0 || sc.ChurnRisk > 1 || sc.Engagement < 0 || sc.Engagement > 100 || len(sc.Explain) != 4 {
					t.Errorf("%s: out of range %+v", email, sc)
				}
				for _, x := range []int{sc.RFM.Recency, sc.RFM.Frequency, sc.RFM.Monetary} {
					if x < 1 || x > 5 {
						t.Errorf("%s: RFM %+v", email, sc.RFM)
					}
				}
				if sc.RFM.Label == nil || *sc.RFM.Label == "" {
					t.Errorf("%s: no RFM label", email)
				}
			}
			// dan: R 5 (5 days is above no cut), F 2 (3 orders above the cut 2),
			// M 5 (600 above every cut); FM ⌈7/2⌉ = 4.
			if d := scoresOf(t, s, admin, pids["dan@example.com"]); d.RFM.Recency != 5 || d.RFM.Frequency != 2 || d.RFM.Monetary != 5 || d.RFM.Label == nil || *d.RFM.Label != "Champions" {
				t.Errorf("dan's RFM %+v", d.RFM)
			}

			// gus never ordered.
			g := scoresOf(t, s, admin, gus)
			if g.Orders != 0 || g.Revenue != 0 || g.FirstOrderAt != nil || g.LastOrderAt != nil || g.ChurnRisk != 0 || g.LifetimeValue != 0 ||
				g.RFM.Recency != 0 || g.RFM.Frequency != 0 || g.RFM.Monetary != 0 || g.RFM.Label != nil {
				t.Errorf("non-buyer: %+v", g)
			}
			if eng := handEngagement(1, 0); !near(g.Engagement, eng, 1e-6) {
				t.Errorf("non-buyer engagement %v, want %v", g.Engagement, eng)
			}
			if len(g.Explain) != 4 || g.Explain[0] != "RFM unknown: no orders yet." || g.Explain[3] != "Lifetime value 0: no orders yet." {
				t.Errorf("non-buyer explanation %q", g.Explain)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			noSegWrite := s.token(t, "acme", allBut(auth.ScopeSegmentsWrite)...)
			s.gql(t, noSegWrite, `mutation { setScoreSettings(input: {orderEvent: "purchase", revenueProperty: "amount"}) { orderEvent } }`, nil).
				requireError(t, 200, "FORBIDDEN")
			s.gql(t, noSegWrite, `mutation { refreshScoreSummary { buyers } }`, nil).requireError(t, 200, "FORBIDDEN")
			// profiles:read is enough to read scores, settings and summary.
			reader := s.token(t, "acme", auth.ScopeProfilesRead)
			s.gql(t, reader, `query($p: ID) { profile(id: $p) { scores { churnRisk } } scoreSettings { orderEvent } scoreSummary { buyers } }`,
				map[string]any{"p": pids["ana@example.com"]}).requireOK(t)

			noRead := s.token(t, "acme", allBut(auth.ScopeProfilesRead)...)
			s.gql(t, noRead, `{ scoreSummary { buyers } }`, nil).requireError(t, 200, "FORBIDDEN")
			s.gql(t, noRead, `{ scoreSettings { orderEvent } }`, nil).requireError(t, 200, "FORBIDDEN")
			s.gql(t, noRead, `{ profiles(byScore: {score: LIFETIME_VALUE}) { nodes { id } } }`, nil).requireError(t, 200, "FORBIDDEN")
			// A Profile reached without profiles:read (a segment preview's
			// sample): its id, but not its scores.
			r := s.gql(t, noRead, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count sample { id scores { churnRisk lifetimeValue } } } }`,
				map[string]any{"r": map[string]any{"computed": map[string]any{"key": "scores.orders", "op": "GTE", "value": 1}}})
			r.requireError(t, 200, "FORBIDDEN")
			if strings.Contains(string(r.Data), "churnRisk") || strings.Contains(string(r.Data), "lifetimeValue") {
				t.Fatalf("scores leaked without profiles:read: %s", r.Body)
			}
			// Still unchanged.
			r = s.gql(t, admin, `{ scoreSettings { orderEvent updatedAt } }`, nil)
			r.requireOK(t)
			if string(r.Data) != `{"scoreSettings":{"orderEvent":"order_completed","updatedAt":null}}` {
				t.Fatalf("settings changed by a forbidden call: %s", r.Data)
			}
		})

		t.Run("ranking", func(t *testing.T) { scoresRanking(t, s, admin, pids) })
		t.Run("ranking bad input", func(t *testing.T) { scoresRankingBadInput(t, s, admin) })
	})
}

type rankNode struct {
	ID     string `json:"id"`
	Scores struct {
		LifetimeValue float64 `json:"lifetimeValue"`
		ChurnRisk     float64 `json:"churnRisk"`
		Orders        int     `json:"orders"`
	} `json:"scores"`
}

const rankQuery = `query($first: Int, $after: String, $by: ProfileScoreOrder, $f: [ScoreRangeInput!], $q: String) {
  profiles(first: $first, after: $after, byScore: $by, scoreFilter: $f, search: $q) {
    edges { cursor node { id scores { lifetimeValue churnRisk orders } } }
    pageInfo { hasNextPage endCursor }
  }
}`

// rankAll pages through profiles(byScore: by, scoreFilter: f) two at a time.
func rankAll(t *testing.T, s *testServer, tok string, by, f any) (nodes []rankNode, cursors []string) {
	t.Helper()
	var after any
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("more than 20 pages")
		}
		r := s.gql(t, tok, rankQuery, map[string]any{"first": 2, "after": after, "by": by, "f": f})
		r.requireOK(t)
		var out struct {
			Profiles struct {
				Edges []struct {
					Cursor string
					Node   rankNode
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		r.decode(t, &out)
		p := out.Profiles
		if len(p.Edges) > 2 || (p.PageInfo.HasNextPage && len(p.Edges) != 2) {
			t.Fatalf("page %d: %s", page, r.Data)
		}
		for _, e := range p.Edges {
			nodes = append(nodes, e.Node)
			cursors = append(cursors, e.Cursor)
		}
		if !p.PageInfo.HasNextPage {
			return nodes, cursors
		}
		if p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[len(p.Edges)-1].Cursor {
			t.Fatalf("page %d: endCursor %s", page, r.Data)
		}
		after = *p.PageInfo.EndCursor
	}
}

func idsOf(nodes []rankNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

func scoresRanking(t *testing.T, s *testServer, tok string, pids map[string]string) {
	r := s.gql(t, tok, `{ profiles(first: 100) { nodes { id } } }`, nil)
	r.requireOK(t)
	var all struct {
		Profiles struct{ Nodes []struct{ ID string } }
	}
	r.decode(t, &all)
	var everyone []string
	for _, n := range all.Profiles.Nodes {
		everyone = append(everyone, n.ID)
	}
	if len(everyone) != 7 {
		t.Fatalf("want 7 profiles, got %d", len(everyone))
	}

	desc, cursors := rankAll(t, s, tok, map[string]any{"score": "LIFETIME_VALUE"}, nil)
	got := idsOf(desc)
	if !slices.Equal(sortedCopy(got), sortedCopy(everyone)) {
		t.Fatalf("byScore LIFETIME_VALUE: repeats or gaps: %v, want the set %v", got, everyone)
	}
	if len(slices.Compact(sortedCopy(cursors))) != len(cursors) {
		t.Fatalf("repeated cursors %v", cursors)
	}
	for i := 1; i < len(desc); i++ {
		a, b := desc[i-1].Scores.LifetimeValue, desc[i].Scores.LifetimeValue
		if a < b || a == b && desc[i-1].ID > desc[i].ID {
			t.Fatalf("not by lifetime value descending at %d: %+v", i, desc)
		}
	}
	// Hand-computed order (see apiBuyers): dan, ana, fay, ben, cat, eve, gus.
	var wantOrder []string
	for _, e := range []string{"dan", "ana", "fay", "ben", "cat", "eve", "gus"} {
		wantOrder = append(wantOrder, pids[e+"@example.com"])
	}
	if !slices.Equal(got, wantOrder) {
		t.Fatalf("order %v, want %v", got, wantOrder)
	}

	asc, _ := rankAll(t, s, tok, map[string]any{"score": "LIFETIME_VALUE", "direction": "ASC"}, nil)
	rev := slices.Clone(got)
	slices.Reverse(rev)
	if !slices.Equal(idsOf(asc), rev) {
		t.Fatalf("ASC %v, want the reverse of DESC %v", idsOf(asc), rev)
	}

	// A filter alone: by its score, highest first.
	three, _ := rankAll(t, s, tok, nil, []any{map[string]any{"score": "ORDERS", "min": 3}})
	var wantThree []string
	for _, e := range []string{"fay", "eve", "ana", "dan"} { // 6, 5, 4, 3 orders
		wantThree = append(wantThree, pids[e+"@example.com"])
	}
	if !slices.Equal(idsOf(three), wantThree) {
		t.Fatalf("scoreFilter ORDERS >= 3: %v, want %v", idsOf(three), wantThree)
	}
	for _, n := range three {
		if n.Scores.Orders < 3 {
			t.Fatalf("scoreFilter ORDERS >= 3 returned %+v", n)
		}
	}

	// Two ranges, sorted by a third score: the set is exactly those
	// within both, read from the unfiltered list.
	both, _ := rankAll(t, s, tok, map[string]any{"score": "LIFETIME_VALUE", "direction": "ASC"},
		[]any{map[string]any{"score": "CHURN_RISK", "max": 0.5}, map[string]any{"score": "ORDERS", "min": 2}})
	var wantBoth []string
	for _, n := range asc {
		if n.Scores.ChurnRisk <= 0.5 && n.Scores.Orders >= 2 {
			wantBoth = append(wantBoth, n.ID)
		}
	}
	if !slices.Equal(idsOf(both), wantBoth) || len(wantBoth) != 3 { // fay, ana, dan
		t.Fatalf("two ranges: %v, want %v", idsOf(both), wantBoth)
	}
}

func scoresRankingBadInput(t *testing.T, s *testServer, tok string) {
	by := map[string]any{"score": "LIFETIME_VALUE"}
	first := s.gql(t, tok, rankQuery, map[string]any{"first": 2, "by": by})
	first.requireOK(t)
	var p struct {
		Profiles struct{ PageInfo struct{ EndCursor string } }
	}
	first.decode(t, &p)
	descCursor := p.Profiles.PageInfo.EndCursor
	if descCursor == "" {
		t.Fatalf("no cursor: %s", first.Data)
	}
	for _, tc := range []struct {
		name  string
		vars  map[string]any
		field string
	}{
		{"search with byScore", map[string]any{"q": "ana", "by": by}, "search"},
		{"search with scoreFilter", map[string]any{"q": "ana", "f": []any{map[string]any{"score": "ORDERS", "min": 1}}}, "search"},
		{"min above max", map[string]any{"f": []any{map[string]any{"score": "ORDERS", "min": 5, "max": 3}}}, "scoreFilter[0]"},
		{"min above max in the second range", map[string]any{"by": by, "f": []any{map[string]any{"score": "ORDERS", "min": 1}, map[string]any{"score": "REVENUE", "min": 10, "max": 1}}}, "scoreFilter[1]"},
		{"malformed cursor", map[string]any{"by": by, "after": "nope"}, "after"},
		{"corrupt ranking cursor", map[string]any{"by": by, "after": "rscores.lifetimeValue.zz"}, "after"},
		{"cursor of the other direction", map[string]any{"by": map[string]any{"score": "LIFETIME_VALUE", "direction": "ASC"}, "after": descCursor}, "after"},
		{"cursor of another score", map[string]any{"by": map[string]any{"score": "ORDERS"}, "after": descCursor}, "after"},
		{"cursor of the default list", map[string]any{"after": descCursor}, "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.vars["first"] = 2
			wantError(t, s.gql(t, tok, rankQuery, tc.vars), "BAD_USER_INPUT", tc.field)
		})
	}
	t.Run("unknown score", func(t *testing.T) {
		s.gql(t, tok, `{ profiles(byScore: {score: NOPE}) { nodes { id } } }`, nil).requireError(t, 0, "GRAPHQL_VALIDATION_FAILED")
		s.gql(t, tok, rankQuery, map[string]any{"by": map[string]any{"score": "NOPE"}}).requireError(t, 0, "GRAPHQL_VALIDATION_FAILED")
		s.gql(t, tok, rankQuery, map[string]any{"by": map[string]any{"score": "ORDERS", "direction": "UP"}}).requireError(t, 0, "GRAPHQL_VALIDATION_FAILED")
	})
}

type gqlScoreSettings struct {
	OrderEvent      string     `json:"orderEvent"`
	RevenueProperty string     `json:"revenueProperty"`
	UpdatedAt       *time.Time `json:"updatedAt"`
	Recount         struct {
		Status    string  `json:"status"`
		Processed int     `json:"processed"`
		Total     int     `json:"total"`
		Error     *string `json:"error"`
	} `json:"recount"`
}

const scoreSettingsFields = `orderEvent revenueProperty updatedAt recount { status processed total error }`

func scoreSettingsOf(t testing.TB, s *testServer, tok string) gqlScoreSettings {
	t.Helper()
	r := s.gql(t, tok, `{ scoreSettings { `+scoreSettingsFields+` } }`, nil)
	r.requireOK(t)
	var out struct{ ScoreSettings gqlScoreSettings }
	r.decode(t, &out)
	return out.ScoreSettings
}

// TestScoreSettings switches the order event and value property: every
// profile is recounted from its events, new events count under the new
// settings, bad input changes nothing.
func TestScoreSettings(t *testing.T) {
	now := scoreNow()
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	admin := s.token(t, "acme")

	// ana: two order_completed worth 100 and three purchases.
	ana := scoreTrack(t, s, admin, "ana@example.com", "order_completed", now.Add(-20*scoreDay), map[string]any{"revenue": 100})
	scoreTrack(t, s, admin, "ana@example.com", "order_completed", now.Add(-10*scoreDay), map[string]any{"revenue": 100})
	for i, v := range []float64{10, 20, 30} {
		scoreTrack(t, s, admin, "ana@example.com", "purchase", now.Add(-time.Duration(15-5*i)*scoreDay), map[string]any{"amount": map[string]any{"value": v, "currency": "EUR"}})
	}
	// ben: one purchase without a numeric value (an order worth 0), one order_completed.
	ben := scoreTrack(t, s, admin, "ben@example.com", "purchase", now.Add(-3*scoreDay), map[string]any{"amount": map[string]any{"value": "12.5"}})
	scoreTrack(t, s, admin, "ben@example.com", "order_completed", now.Add(-2*scoreDay), map[string]any{"revenue": 50})

	if a := scoresOf(t, s, admin, ana); a.Orders != 2 || a.Revenue != 200 {
		t.Fatalf("before: ana %+v", a)
	}
	if b := scoresOf(t, s, admin, ben); b.Orders != 1 || b.Revenue != 50 {
		t.Fatalf("before: ben %+v", b)
	}

	set := `mutation($in: ScoreSettingsInput!) { setScoreSettings(input: $in) { ` + scoreSettingsFields + ` } }`
	r := s.gql(t, admin, set, map[string]any{"in": map[string]any{"orderEvent": "purchase", "revenueProperty": "amount.value"}})
	r.requireOK(t)
	var out struct{ SetScoreSettings gqlScoreSettings }
	r.decode(t, &out)
	if st := out.SetScoreSettings; st.OrderEvent != "purchase" || st.RevenueProperty != "amount.value" || st.UpdatedAt == nil || !st.UpdatedAt.Equal(now) {
		t.Fatalf("setScoreSettings returned %s", r.Data)
	}

	// The recount, through GraphQL, until DONE.
	deadline := time.Now().Add(5 * time.Second)
	var st gqlScoreSettings
	for {
		st = scoreSettingsOf(t, s, admin)
		if st.Recount.Status == "DONE" {
			break
		}
		if st.Recount.Status == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("recount not DONE: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Recount.Processed != st.Recount.Total || st.Recount.Total != 2 || st.OrderEvent != "purchase" || st.RevenueProperty != "amount.value" {
		t.Fatalf("after the recount: %+v", st)
	}

	a := scoresOf(t, s, admin, ana)
	if a.Orders != 3 || a.Revenue != 60 || a.FirstOrderAt == nil || !a.FirstOrderAt.Equal(now.Add(-15*scoreDay)) ||
		a.LastOrderAt == nil || !a.LastOrderAt.Equal(now.Add(-5*scoreDay)) {
		t.Fatalf("after: ana %+v", a)
	}
	if b := scoresOf(t, s, admin, ben); b.Orders != 1 || b.Revenue != 0 || b.LastOrderAt == nil || !b.LastOrderAt.Equal(now.Add(-3*scoreDay)) {
		t.Fatalf("after: ben %+v", b)
	}
	// New events count under the new settings.
	scoreTrack(t, s, admin, "ana@example.com", "purchase", time.Time{}, map[string]any{"amount": map[string]any{"value": 40}})
	scoreTrack(t, s, admin, "ana@example.com", "order_completed", time.Time{}, map[string]any{"revenue": 1000})
	if a := scoresOf(t, s, admin, ana); a.Orders != 4 || a.Revenue != 100 || a.LastOrderAt == nil || !a.LastOrderAt.Equal(now) || a.ChurnRisk != 0 {
		t.Fatalf("after new events: ana %+v", a)
	}

	// Bad input: a field path, nothing changed.
	for _, tc := range []struct {
		name, event, prop, field string
	}{
		{"empty event", "", "amount", "input.orderEvent"},
		{"blank event", "   ", "amount", "input.orderEvent"},
		{"empty path segment", "purchase", "a..b", "input.revenueProperty"},
		{"empty property", "purchase", "", "input.revenueProperty"},
		{"operator in path", "purchase", "amount.$gt", "input.revenueProperty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, s.gql(t, admin, set, map[string]any{"in": map[string]any{"orderEvent": tc.event, "revenueProperty": tc.prop}}), "BAD_USER_INPUT", tc.field)
		})
	}
	if again := scoreSettingsOf(t, s, admin); again.OrderEvent != st.OrderEvent || again.RevenueProperty != st.RevenueProperty ||
		again.UpdatedAt == nil || !again.UpdatedAt.Equal(*st.UpdatedAt) || again.Recount != st.Recount {
		t.Fatalf("settings changed by bad input: %+v, were %+v", again, st)
	}
	if a := scoresOf(t, s, admin, ana); a.Orders != 4 || a.Revenue != 100 {
		t.Fatalf("after bad input: ana %+v", a)
	}
}

// churnEmail is the person of the churn scenario.
const churnEmail = "pat@example.com"

type churnWorld struct {
	s     *testServer
	clock *app.ManualClock
	tok   string
	now   time.Time
	seg   gqlSegment
	pid   string
	recv  memRecv
}

// setupChurn: five buyers with a 10-day rhythm, the person's first 7
// orders (70 to 10 days ago), a fresh summary (typical gap 10 days), the
// segment "churn risk > 0.7 and LTV > 500" and a live websocket
// subscription to its membership changes.
func setupChurn(t *testing.T) *churnWorld {
	t.Helper()
	now := scoreNow()
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")

	// Other buyers with a 10-day rhythm and small orders (never LTV > 500
	// once their churn risk is high), so the typical gap is 10 days.
	seedBuyers(t, s, tok, now, []scoreBuyer{
		{email: "b1@example.com", ago: []int{30, 20, 10}, value: 10},
		{email: "b2@example.com", ago: []int{15, 5}, value: 10},
		{email: "b3@example.com", ago: []int{45, 35, 25, 15}, value: 10},
		{email: "b4@example.com", ago: []int{12, 2}, value: 10},
		{email: "b5@example.com", ago: []int{28, 18, 8}, value: 10},
	})
	// The person: 7 orders of 120, 70 to 10 days ago; the 8th comes now.
	var pid string
	for ago := 70; ago >= 10; ago -= 10 {
		pid = scoreTrack(t, s, tok, churnEmail, "order_completed", now.Add(-time.Duration(ago)*scoreDay), map[string]any{"revenue": 120})
	}
	if sum := refreshScores(t, s, tok, 6); sum.TypicalGapDays == nil || *sum.TypicalGapDays != 10 {
		t.Fatalf("summary %+v", sum)
	}

	seg := createSegment(t, s, tok, map[string]any{"name": "churning high value", "rule": map[string]any{"and": []any{
		map[string]any{"computed": map[string]any{"key": "scores.churnRisk", "op": "GT", "value": 0.7}},
		map[string]any{"computed": map[string]any{"key": "scores.lifetimeValue", "op": "GT", "value": 500}},
	}}})
	if seg.Size != 0 {
		t.Fatalf("segment starts with %d members", seg.Size)
	}

	// Membership changes over a websocket, live once a warm-up buyer (one
	// order of 1000 a year ago: churn risk ~1, LTV ~1000) enters.
	wsSeg := connectWS(t, s, tok)
	recv := wsMemRecv(t, wsSeg, wsSeg.subscribe(t, membershipSub, map[string]any{"s": seg.ID}))
	live := false
	for i := 0; i < 30 && !live; i++ {
		scoreTrack(t, s, tok, fmt.Sprintf("warm-%d@example.com", i), "order_completed", now.Add(-365*scoreDay), map[string]any{"revenue": 1000})
		if m, ok := recv(300 * time.Millisecond); ok {
			if m.Kind != "ENTERED" || m.Cause != "track" {
				t.Fatalf("warm-up: %+v", m)
			}
			live = true
		}
	}
	if !live {
		t.Fatal("membership subscription never became live")
	}
	for {
		if _, ok := recv(200 * time.Millisecond); !ok {
			break
		}
	}
	return &churnWorld{s: s, clock: clock, tok: tok, now: now, seg: seg, pid: pid, recv: recv}

}

// TestScoresChurnSegmentWebsocket is the scenario: a segment
// "churn risk > 0.7 and lifetime value > 500"; a person ordering every 10
// days for 120 is not in it after an order, enters by time alone when the
// churn risk crosses 0.7 (the sweeper, at the nextEvalAt the crossing
// gave), delivered over a websocket, and leaves with the next order, in
// the mutation itself; profileUpdated delivers the recounted scores.
func TestScoresChurnSegmentWebsocket(t *testing.T) {
	// No summary refresh in this test: a refresh re-evaluates the score
	// segments itself (cause "scores") and would hide whether the sweeper
	// picks the person up at the churn crossing (cause "time").
	every, boot := traits.SummaryEvery, traits.SummaryBootstrapEvery
	traits.SummaryEvery, traits.SummaryBootstrapEvery = 100*365*scoreDay, 100*365*scoreDay
	t.Cleanup(func() { traits.SummaryEvery, traits.SummaryBootstrapEvery = every, boot })

	w := setupChurn(t)
	s, clock, tok, now, seg, pid, recv := w.s, w.clock, w.tok, w.now, w.seg, w.pid, w.recv
	const email = churnEmail

	// profileUpdated for the person, live once a trait change made by
	// identify is delivered (a page view moves only engagement, which does
	// not publish profile.updated).
	wsProf := connectWS(t, s, tok)
	profOp := wsProf.subscribe(t, `subscription($p: ID!) { profileUpdated(id: $p) { id `+scoresSelection+` } }`, map[string]any{"p": pid})
	nextProfile := func(d time.Duration) (gqlScores, bool) {
		select {
		case m, ok := <-wsProf.msgs:
			if !ok {
				t.Fatalf("profileUpdated connection closed: %v", <-wsProf.closed)
			}
			if m.ID != profOp || m.Type != "next" {
				t.Fatalf("profileUpdated: unexpected %s %s", m.Type, m.Payload)
			}
			var p struct {
				Data struct {
					ProfileUpdated struct {
						ID     string
						Scores gqlScores
					}
				}
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 || p.Data.ProfileUpdated.ID != pid {
				t.Fatalf("profileUpdated payload %s", m.Payload)
			}
			return p.Data.ProfileUpdated.Scores, true
		case <-time.After(d):
			return gqlScores{}, false
		}
	}
	live := false
	for i := 0; i < 30 && !live; i++ {
		s.gql(t, tok, `mutation($e: String!, $i: Int!) { identify(input: {identifiers: [{type: "email", value: $e}], traits: {ping: $i}}) { profile { id } } }`,
			map[string]any{"e": email, "i": i}).requireOK(t)
		_, live = nextProfile(300 * time.Millisecond)
	}
	if !live {
		t.Fatal("profileUpdated never became live")
	}
	for {
		if _, ok := nextProfile(200 * time.Millisecond); !ok {
			break
		}
	}
	// A page view moves engagement only: no profile.updated.
	scoreTrack(t, s, tok, email, "page_viewed", time.Time{}, nil)
	if sc, ok := nextProfile(300 * time.Millisecond); ok {
		t.Fatalf("a page view published profile.updated: %+v", sc)
	}

	segmentsOf := func() []string {
		r := s.gql(t, tok, `query($p: ID) { profile(id: $p) { segments { segment { id } } } }`, map[string]any{"p": pid})
		r.requireOK(t)
		var out struct {
			Profile struct {
				Segments []struct{ Segment struct{ ID string } }
			}
		}
		r.decode(t, &out)
		var ids []string
		for _, m := range out.Profile.Segments {
			ids = append(ids, m.Segment.ID)
		}
		return ids
	}

	// The 8th order, now: churn risk 0, not a member.
	scoreTrack(t, s, tok, email, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	sc := scoresOf(t, s, tok, pid)
	if sc.Orders != 8 || sc.Revenue != 960 || sc.ChurnRisk != 0 || !near(sc.LifetimeValue, 960+120*36.5, 1e-6) {
		t.Fatalf("after the 8th order: %+v", sc)
	}
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("right after an order: %+v", m)
	}
	if got := segmentsOf(); slices.Contains(got, seg.ID) {
		t.Fatalf("member right after an order: %v", got)
	}

	// Usual gap (70 + 10) / 8 = 10 days: churn risk 0.684 after 24 days,
	// 0.7 after about 24.4. Not yet: the sweeper (each second) leaves it.
	clock.Set(now.Add(24 * scoreDay))
	if sc := scoresOf(t, s, tok, pid); !near(sc.ChurnRisk, handChurn(24, 10), 1e-6) || sc.ChurnRisk >= 0.7 {
		t.Fatalf("after 24 days: churn risk %v, want %v", sc.ChurnRisk, handChurn(24, 10))
	}
	if m, ok := recv(1500 * time.Millisecond); ok {
		t.Fatalf("after 24 days (churn risk below 0.7): %+v", m)
	}

	// 40 days after the order: churn 0.98, LTV 1040: the sweeper enters.
	clock.Set(now.Add(40 * scoreDay))
	m, ok := recv(5 * time.Second)
	if !ok {
		t.Fatalf("no ENTERED within 5s of the clock passing the churn crossing (profile segments %v, scores %+v)", segmentsOf(), scoresOf(t, s, tok, pid))
	}
	if m.Kind != "ENTERED" || m.Cause != "time" || m.Segment.ID != seg.ID || m.profileID() != pid {
		t.Fatalf("after 40 days: %+v", m)
	}
	if m.At.Before(now.Add(24*scoreDay)) || m.At.After(now.Add(40*scoreDay)) {
		t.Errorf("ENTERED at %v, want between the crossing and the clock %v", m.At, now.Add(40*scoreDay))
	}
	sc = scoresOf(t, s, tok, pid)
	if c := handChurn(40, 10); !near(sc.ChurnRisk, c, 1e-6) || !near(sc.LifetimeValue, handLTV(960, 8, 10, c), 1e-6) || sc.ChurnRisk <= 0.7 || sc.LifetimeValue <= 500 {
		t.Fatalf("after 40 days: %+v", sc)
	}
	if got := segmentsOf(); !slices.Contains(got, seg.ID) {
		t.Fatalf("ENTERED delivered but Profile.segments %v", got)
	}
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("extra change: %+v", m)
	}
	// Drain the profileUpdated the entry may have caused.
	for {
		if _, ok := nextProfile(200 * time.Millisecond); !ok {
			break
		}
	}

	// A new order: churn risk 0 again, out of the segment when the
	// mutation returns.
	scoreTrack(t, s, tok, email, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if got := segmentsOf(); slices.Contains(got, seg.ID) {
		t.Fatalf("still a member when the order's mutation returned: %v", got)
	}
	r := s.gql(t, tok, `query($s: ID!) { segment(id: $s) { members(first: 100) { nodes { id } } } }`, map[string]any{"s": seg.ID})
	r.requireOK(t)
	if strings.Contains(string(r.Data), pid) {
		t.Fatalf("segment members still list the person: %s", r.Data)
	}
	m, ok = recv(5 * time.Second)
	if !ok || m.Kind != "EXITED" || m.Cause != "track" || m.profileID() != pid || m.Segment.ID != seg.ID {
		t.Fatalf("after the new order: %+v %v, want EXITED (track)", m, ok)
	}
	// profileUpdated: the profile with the 9th order counted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sc, ok := nextProfile(time.Until(deadline))
		if !ok {
			t.Fatal("no profileUpdated with 9 orders")
		}
		if sc.Orders == 9 {
			if sc.ChurnRisk != 0 || sc.Revenue != 1080 || sc.LastOrderAt == nil || !sc.LastOrderAt.Equal(now.Add(40*scoreDay)) {
				t.Fatalf("profileUpdated after the 9th order: %+v", sc)
			}
			break
		}
	}
}

// TestScoresAfterMerge: a merge recounts the survivor's scores from the
// events of both profiles, and the ranking no longer lists the merged one.
func TestScoresAfterMerge(t *testing.T) {
	now := scoreNow()
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	track := func(idents []map[string]any, ago int, value float64) string {
		r := s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{
			"messageId": fmt.Sprintf("mg-%d", scoreMsgSeq.Add(1)), "identifiers": idents, "name": "order_completed",
			"occurredAt": now.Add(-time.Duration(ago) * scoreDay).Format(time.RFC3339Nano), "properties": map[string]any{"revenue": value},
		}})
		r.requireOK(t)
		var out struct {
			Track struct{ Profile struct{ ID string } }
		}
		r.decode(t, &out)
		return out.Track.Profile.ID
	}
	anon := track(ids("anonymousId", "visitor-1"), 20, 50)
	track(ids("anonymousId", "visitor-1"), 10, 50)
	known := track(ids("email", "mia@example.com"), 5, 30)
	if anon == known {
		t.Fatal("one profile before the merge")
	}
	p, merged := identify(t, s, tok, ids("anonymousId", "visitor-1", "email", "mia@example.com"), nil)
	if len(merged) != 1 {
		t.Fatalf("merge: survivor %s merged %v", p.ID, merged)
	}
	gone := merged[0]
	sc := scoresOf(t, s, tok, p.ID)
	if sc.Orders != 3 || sc.Revenue != 130 || sc.FirstOrderAt == nil || !sc.FirstOrderAt.Equal(now.Add(-20*scoreDay)) ||
		sc.LastOrderAt == nil || !sc.LastOrderAt.Equal(now.Add(-5*scoreDay)) {
		t.Fatalf("survivor's scores after the merge: %+v", sc)
	}
	nodes, _ := rankAll(t, s, tok, map[string]any{"score": "ORDERS"}, nil)
	if got := idsOf(nodes); !slices.Equal(got, []string{p.ID}) || nodes[0].Scores.Orders != 3 {
		t.Fatalf("ranking after the merge: %+v (merged away: %s)", nodes, gone)
	}
}

// TestScoresChurnSegmentSummaryRefresh: the same crossing with the
// summary refreshing on use as in production (it is an hour old after
// the clock moves): the sweeper and the segment re-evaluation after the
// new summary may both see the person cross; exactly one ENTERED results.
func TestScoresChurnSegmentSummaryRefresh(t *testing.T) {
	w := setupChurn(t)
	scoreTrack(t, w.s, w.tok, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if m, ok := w.recv(300 * time.Millisecond); ok {
		t.Fatalf("right after an order: %+v", m)
	}
	w.clock.Set(w.now.Add(40 * scoreDay))
	// A read: the summary is stale, a refresh starts in the background.
	if sc := scoresOf(t, w.s, w.tok, w.pid); sc.ChurnRisk <= 0.7 || sc.LifetimeValue <= 500 {
		t.Fatalf("after 40 days: %+v", sc)
	}
	m, ok := w.recv(5 * time.Second)
	if !ok || m.Kind != "ENTERED" || m.profileID() != w.pid || (m.Cause != "time" && m.Cause != "scores") {
		t.Fatalf("after 40 days: %+v %v, want ENTERED (time or scores)", m, ok)
	}
	t.Logf("ENTERED by %q at %v", m.Cause, m.At)
	if extra, ok := w.recv(1500 * time.Millisecond); ok {
		t.Fatalf("after ENTERED (%s): extra %+v", m.Cause, extra)
	}
	r := w.s.gql(t, w.tok, `{ scoreSummary { at buyers } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), w.now.Add(40*scoreDay).Format("2006-01-02")) {
		t.Errorf("summary not refreshed on use after the clock moved: %s", r.Data)
	}
	hist := history(t, w.s, w.tok, w.seg.ID)
	n := 0
	for _, h := range hist {
		if h.Profile.ID == w.pid {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the person's membership history: %+v", hist)
	}
	scoreTrack(t, w.s, w.tok, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if m, ok := w.recv(5 * time.Second); !ok || m.Kind != "EXITED" || m.Cause != "track" || m.profileID() != w.pid {
		t.Fatalf("after the new order: %+v %v, want EXITED (track)", m, ok)
	}
}
