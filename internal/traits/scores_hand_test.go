package traits_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/scores"
)

// Hand-written copies of the formulas of scores/doc.go: the expectations
// must not come from the code they check.

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

func approx(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// handBuyer is a seeded order history: orders `ago` days before now,
// worth value each (values overrides per order).
type handBuyer struct {
	email  string
	ago    []int
	value  float64
	values []float64
}

// handBuyers: six buyers, every one with a 10-day rhythm (so the typical
// gap is 10 days and every usual gap is exactly 10). Hand-computed at now:
//
//	        orders revenue  last   churn    LTV
//	ana     4      400      10 d   0.1031   3673.8
//	ben     1       20       5 d   0.0300    728.1
//	cat     2       60      50 d   0.9975     62.8
//	dan     3      600       5 d   0.0300   7681.2
//	eve     5       50      40 d   0.9817     56.7
//	fay     6      480       5 d   0.0300   3312.5
//	gus     0        0       -     0           0    (page views only)
var handBuyers = []handBuyer{
	{email: "ana@example.com", ago: []int{40, 30, 20, 10}, values: []float64{50, 100, 150, 100}},
	{email: "ben@example.com", ago: []int{5}, value: 20},
	{email: "cat@example.com", ago: []int{60, 50}, value: 30},
	{email: "dan@example.com", ago: []int{25, 15, 5}, value: 200},
	{email: "eve@example.com", ago: []int{80, 70, 60, 50, 40}, value: 10},
	{email: "fay@example.com", ago: []int{55, 45, 35, 25, 15, 5}, value: 80},
}

var eventSeq atomic.Int64

// event tracks one event of email (at: occurredAt; zero: the clock's
// now) and returns the profile id.
func (e *env) event(t *testing.T, email, name string, at time.Time, props map[string]any) string {
	t.Helper()
	in := timeline.TrackInput{MessageID: fmt.Sprint("ev-", eventSeq.Add(1)), Name: name, Properties: props,
		Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}}
	if !at.IsZero() {
		in.OccurredAt = &at
	}
	return e.track(t, []timeline.TrackInput{in})
}

func (e *env) seedBuyers(t *testing.T, now time.Time, buyers []handBuyer) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for _, b := range buyers {
		for i, ago := range b.ago {
			v := b.value
			if b.values != nil {
				v = b.values[i]
			}
			pids[b.email] = e.event(t, b.email, traits.DefaultOrderEvent, now.Add(-time.Duration(ago)*day), map[string]any{"revenue": v, "sku": "A"})
		}
	}
	return pids
}

// refreshSummary forces a new workspace summary once the background work
// of the writes before it is done, and checks it counts wantBuyers.
func (e *env) refreshSummary(t *testing.T, wantBuyers int) *traits.SummaryInfo {
	t.Helper()
	e.tr.Wait()
	sum, err := e.tr.RefreshSummaryInfo(e.Ctx, e.Tenant)
	if err != nil || sum == nil || sum.Buyers != wantBuyers {
		t.Fatalf("refresh summary: want %d buyers, got %+v %v", wantBuyers, sum, err)
	}
	return sum
}

// handWorkspace seeds handBuyers, gus (page views only) and a cart view
// of ana's with a revenue, at start, and makes the summary.
func handWorkspace(t *testing.T) (*env, map[string]string, *traits.SummaryInfo) {
	t.Helper()
	e := newEnv(t)
	now := start
	pids := e.seedBuyers(t, now, handBuyers)
	pids["gus@example.com"] = e.event(t, "gus@example.com", "page_viewed", now.Add(-day), nil)
	e.event(t, "gus@example.com", "page_viewed", now, nil)
	// Not an order: another event name, even with a revenue.
	e.event(t, "ana@example.com", "cart_viewed", now.Add(-10*day), map[string]any{"revenue": 999})
	return e, pids, e.refreshSummary(t, 6)
}

// scoresOf is a live profile's scores now and the input they came from.
func (e *env) scoresOf(t *testing.T, pid string) (scores.Scores, scores.Input) {
	t.Helper()
	s, in, err := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, pid), time.Time{})
	if err != nil {
		t.Fatalf("scores of %s: %v", pid, err)
	}
	return s, in
}

// TestScoresHandChecked: the defaults of a new workspace, then the
// summary and every profile's scores, explanation included, against
// hand-computed values.
func TestScoresHandChecked(t *testing.T) {
	fresh := newEnv(t)
	st, err := fresh.tr.ScoreSettings(fresh.Ctx, fresh.Tenant)
	if err != nil || st.OrderEvent != "order_completed" || st.RevenueProperty != "revenue" || !st.UpdatedAt.IsZero() || st.Backfill.Status != traits.Done {
		t.Fatalf("default settings: %+v %v", st, err)
	}
	if sum, err := fresh.tr.SummaryInfo(fresh.Ctx, fresh.Tenant); err != nil || sum != nil {
		t.Fatalf("summary of a new workspace: %+v %v", sum, err)
	}

	e, pids, sum := handWorkspace(t)
	now := start
	t.Run("summary", func(t *testing.T) {
		if !sum.At.Equal(now) || sum.Seen != 6 || sum.TypicalGap != 10*day {
			t.Fatalf("summary %+v", sum)
		}
		// Nearest-rank quintiles of the six buyers (see handBuyers).
		if sum.Recency != (scores.Cuts{5, 5, 10, 40}) || sum.Frequency != (scores.Cuts{2, 3, 4, 5}) || sum.Monetary != (scores.Cuts{50, 60, 400, 480}) {
			t.Fatalf("quintile boundaries %+v", sum)
		}
		stored, err := e.tr.SummaryInfo(e.Ctx, e.Tenant)
		if err != nil || stored == nil || stored.Buyers != 6 || !stored.At.Equal(now) {
			t.Fatalf("stored summary %+v %v", stored, err)
		}
	})

	t.Run("scores", func(t *testing.T) {
		// ana: 4 orders 40, 30, 20, 10 days ago for 400; usual gap
		// (30 + 10) / 4 = 10 days, 10 days since the last order.
		a, in := e.scoresOf(t, pids["ana@example.com"])
		if in.Orders != 4 || in.Revenue != 400 || !in.FirstOrder.Equal(now.Add(-40*day)) || !in.LastOrder.Equal(now.Add(-10*day)) {
			t.Fatalf("ana's order history: %+v", in)
		}
		churn := handChurn(10, 10)
		if !approx(a.ChurnRisk, churn, 1e-6) || !approx(churn, 0.1031, 1e-4) {
			t.Errorf("ana's churn risk %v, want %v", a.ChurnRisk, churn)
		}
		if ltv := handLTV(400, 4, 10, churn); !approx(a.LifetimeValue, ltv, 1e-6) {
			t.Errorf("ana's lifetime value %v, want %v", a.LifetimeValue, ltv)
		}
		// Five events (4 orders, a cart view) at 40, 30, 20, 10, 10 days.
		if eng := handEngagement(40, 30, 20, 10, 10); !approx(a.Engagement, eng, 1e-6) {
			t.Errorf("ana's engagement %v, want %v", a.Engagement, eng)
		}
		// R: 10 days is above the cuts 5, 5 → quintile 3 → R 3; F: 4
		// orders above 2, 3 → 3; M: 400 above 50, 60 → 3; FM 3.
		if a.RFM != (scores.RFM{Recency: 3, Frequency: 3, Monetary: 3, Label: "Need attention"}) {
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
			sc, in := e.scoresOf(t, pids[email])
			c := handChurn(w.since, 10)
			if in.Orders != int64(w.orders) || in.Revenue != w.rev || !approx(sc.ChurnRisk, c, 1e-6) || !approx(sc.LifetimeValue, handLTV(w.rev, w.orders, 10, c), 1e-6) {
				t.Errorf("%s: %+v %+v, want orders %d revenue %v churn %v", email, sc, in, w.orders, w.rev, c)
			}
			if sc.ChurnRisk < 0 || sc.ChurnRisk > 1 || sc.Engagement < 0 || sc.Engagement > 100 || len(sc.Explain) != 4 {
				t.Errorf("%s: out of range %+v", email, sc)
			}
			for _, x := range []int{sc.RFM.Recency, sc.RFM.Frequency, sc.RFM.Monetary} {
				if x < 1 || x > 5 {
					t.Errorf("%s: RFM %+v", email, sc.RFM)
				}
			}
			if sc.RFM.Label == "" {
				t.Errorf("%s: no RFM label", email)
			}
		}
		// dan: R 5 (5 days is above no cut), F 2 (3 orders above the cut 2),
		// M 5 (600 above every cut); FM ⌈7/2⌉ = 4.
		if d, _ := e.scoresOf(t, pids["dan@example.com"]); d.RFM != (scores.RFM{Recency: 5, Frequency: 2, Monetary: 5, Label: "Champions"}) {
			t.Errorf("dan's RFM %+v", d.RFM)
		}

		// gus never ordered.
		g, in := e.scoresOf(t, pids["gus@example.com"])
		if in.Orders != 0 || in.Revenue != 0 || !in.FirstOrder.IsZero() || !in.LastOrder.IsZero() || g.ChurnRisk != 0 || g.LifetimeValue != 0 || g.RFM != (scores.RFM{}) {
			t.Errorf("non-buyer: %+v %+v", g, in)
		}
		if eng := handEngagement(1, 0); !approx(g.Engagement, eng, 1e-6) {
			t.Errorf("non-buyer engagement %v, want %v", g.Engagement, eng)
		}
		if len(g.Explain) != 4 || g.Explain[0] != "RFM unknown: no orders yet." || g.Explain[3] != "Lifetime value 0: no orders yet." {
			t.Errorf("non-buyer explanation %q", g.Explain)
		}
	})
}

// rankedNode is a ranked profile with its scores as the page was read.
type rankedNode struct {
	id     string
	cursor string
	in     scores.Input
	s      scores.Scores
}

// rankAll pages through Rank two at a time.
func (e *env) rankAll(t *testing.T, q traits.RankQuery) []rankedNode {
	t.Helper()
	q.First = 2
	var out []rankedNode
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("more than 20 pages")
		}
		p, err := e.tr.Rank(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatalf("rank %+v: %v", q, err)
		}
		if len(p.Profiles) > 2 || len(p.Cursors) != len(p.Profiles) || (p.HasNext && len(p.Profiles) != 2) {
			t.Fatalf("page %d: %d profiles, %d cursors, more %v", page, len(p.Profiles), len(p.Cursors), p.HasNext)
		}
		for i, pr := range p.Profiles {
			s, in, err := e.tr.Scores(e.Ctx, e.Tenant, pr, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rankedNode{id: pr.ID, cursor: p.Cursors[i], in: in, s: s})
		}
		if !p.HasNext {
			return out
		}
		q.After = p.Cursors[len(p.Cursors)-1]
	}
}

func rankedIDs(nodes []rankedNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.id
	}
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

func f64(x float64) *float64 { return &x }

// TestRankByScore: profiles ranked by a score page after page without
// repeats or gaps, in the hand-computed order, ascending as the reverse,
// and kept to score ranges.
func TestRankByScore(t *testing.T) {
	e, pids, _ := handWorkspace(t)
	byEmail := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, pids[n+"@example.com"])
		}
		return out
	}
	everyone := allIDs(t, e)
	if len(everyone) != 7 {
		t.Fatalf("want 7 profiles, got %d", len(everyone))
	}

	desc := e.rankAll(t, traits.RankQuery{Key: scores.KeyLifetimeValue})
	got := rankedIDs(desc)
	if !slices.Equal(sortedCopy(got), sortedCopy(everyone)) {
		t.Fatalf("by lifetime value: repeats or gaps: %v, want the set %v", got, everyone)
	}
	var cursors []string
	for _, n := range desc {
		cursors = append(cursors, n.cursor)
	}
	if len(slices.Compact(sortedCopy(cursors))) != len(cursors) {
		t.Fatalf("repeated cursors %v", cursors)
	}
	for i := 1; i < len(desc); i++ {
		a, b := desc[i-1].s.LifetimeValue, desc[i].s.LifetimeValue
		if a < b || a == b && desc[i-1].id > desc[i].id {
			t.Fatalf("not by lifetime value descending at %d: %+v", i, desc)
		}
	}
	// Hand-computed order (see handBuyers).
	if want := byEmail("dan", "ana", "fay", "ben", "cat", "eve", "gus"); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}

	asc := e.rankAll(t, traits.RankQuery{Key: scores.KeyLifetimeValue, Asc: true})
	rev := slices.Clone(got)
	slices.Reverse(rev)
	if !slices.Equal(rankedIDs(asc), rev) {
		t.Fatalf("ascending %v, want the reverse of descending %v", rankedIDs(asc), rev)
	}

	// A range on the score ranked by: highest first, the bound inclusive.
	three := e.rankAll(t, traits.RankQuery{Key: scores.KeyOrders, Ranges: []traits.Range{{Key: scores.KeyOrders, Min: f64(3)}}})
	if want := byEmail("fay", "eve", "ana", "dan"); !slices.Equal(rankedIDs(three), want) { // 6, 5, 4, 3 orders
		t.Fatalf("orders >= 3: %v, want %v", rankedIDs(three), want)
	}
	for _, n := range three {
		if n.in.Orders < 3 {
			t.Fatalf("orders >= 3 returned %+v", n)
		}
	}

	// Two ranges, sorted by a third score: the set is exactly those
	// within both, read from the unfiltered list.
	both := e.rankAll(t, traits.RankQuery{Key: scores.KeyLifetimeValue, Asc: true,
		Ranges: []traits.Range{{Key: scores.KeyChurnRisk, Max: f64(0.5)}, {Key: scores.KeyOrders, Min: f64(2)}}})
	var wantBoth []string
	for _, n := range asc {
		if n.s.ChurnRisk <= 0.5 && n.in.Orders >= 2 {
			wantBoth = append(wantBoth, n.id)
		}
	}
	if !slices.Equal(rankedIDs(both), wantBoth) || !slices.Equal(wantBoth, byEmail("fay", "ana", "dan")) {
		t.Fatalf("two ranges: %v, want %v", rankedIDs(both), wantBoth)
	}
}

// TestRankBadInput: a ranking the engine cannot serve is BAD_USER_INPUT
// at the argument's field path.
func TestRankBadInput(t *testing.T) {
	e := newEnv(t)
	e.event(t, "ana@example.com", traits.DefaultOrderEvent, start.Add(-day), map[string]any{"revenue": 10})
	for _, tc := range []struct {
		name  string
		q     traits.RankQuery
		field string
	}{
		{"min above max", traits.RankQuery{Key: scores.KeyOrders, Ranges: []traits.Range{{Key: scores.KeyOrders, Min: f64(5), Max: f64(3)}}}, "scoreFilter[0]"},
		{"min above max in the second range", traits.RankQuery{Key: scores.KeyLifetimeValue,
			Ranges: []traits.Range{{Key: scores.KeyOrders, Min: f64(1)}, {Key: scores.KeyRevenue, Min: f64(10), Max: f64(1)}}}, "scoreFilter[1]"},
		{"corrupt cursor", traits.RankQuery{Key: scores.KeyLifetimeValue, After: "zz"}, "after"},
		{"cursor without an id", traits.RankQuery{Key: scores.KeyLifetimeValue, After: "3ff0000000000000|"}, "after"},
		{"cursor with a bad value", traits.RankQuery{Key: scores.KeyLifetimeValue, After: "zz|p1"}, "after"},
		{"unknown score", traits.RankQuery{Key: "scores.nope"}, "byScore"},
		{"a label is not a number", traits.RankQuery{Key: scores.KeyLabel}, "byScore"},
		{"unknown score in a range", traits.RankQuery{Key: scores.KeyOrders, Ranges: []traits.Range{{Key: "scores.nope"}}}, "scoreFilter[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.First = 2
			_, err := e.tr.Rank(e.Ctx, e.Tenant, tc.q)
			if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != tc.field {
				t.Fatalf("got %v, want BAD_USER_INPUT at %s", err, tc.field)
			}
		})
	}
}
