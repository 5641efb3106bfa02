package main

// E2E smoke tests of the built-in scores through GraphQL
// (schema/scores.graphqls): the fields of Profile.scores, the summary and
// the settings, scopes, profiles ranked by a score and paged by cursor on
// both engines, bad input with field paths, and the churn segment
// delivered over websockets by the background sweeper. The scoring rules
// (hand-checked values, ranking order, recounts, merges, the churn
// crossing) are tested in internal/traits.

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
	return trackEventAt(t, s, tok, fmt.Sprintf("sc-%d-%d", time.Now().UnixNano(), scoreMsgSeq.Add(1)), ids("email", email), name, at, props)
}

// trackEventAt tracks one event (at: occurredAt; zero: the server clock)
// and returns its profile id.
func trackEventAt(t testing.TB, s *testServer, tok, messageID string, identifiers []map[string]any, name string, at time.Time, props map[string]any) string {
	t.Helper()
	in := map[string]any{"messageId": messageID, "identifiers": identifiers, "name": name, "properties": props}
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

// TestScoresAPI proves the scores' GraphQL wiring on both engines: the
// defaults, refreshScoreSummary and scoreSummary, every field of
// Profile.scores (for a buyer and, as nulls, a non-buyer), scopes, and
// profiles ranked and filtered by a score.
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
		pids["gus@example.com"] = gus

		sum := refreshScores(t, s, admin, 6)
		t.Run("summary", func(t *testing.T) {
			// typicalGapDays is the typical gap in days; the boundaries in
			// recency, frequency, monetary order (see apiBuyers).
			if !sum.At.Equal(now) || sum.SampledFrom != 6 || sum.TypicalGapDays == nil || !near(*sum.TypicalGapDays, 10, 1e-6) ||
				!slices.Equal(sum.Recency, []float64{5, 5, 10, 40}) || !slices.Equal(sum.Frequency, []float64{2, 3, 4, 5}) ||
				!slices.Equal(sum.Monetary, []float64{50, 60, 400, 480}) {
				t.Fatalf("summary %+v", sum)
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
			// ana, from the table of apiBuyers.
			a := scoresOf(t, s, admin, pids["ana@example.com"])
			if a.Orders != 4 || a.Revenue != 400 || a.FirstOrderAt == nil || !a.FirstOrderAt.Equal(now.Add(-40*scoreDay)) ||
				a.LastOrderAt == nil || !a.LastOrderAt.Equal(now.Add(-10*scoreDay)) {
				t.Fatalf("ana's order history: %+v", a)
			}
			if !near(a.ChurnRisk, 0.1031, 1e-4) || !near(a.LifetimeValue, 3673.8, 0.1) || a.Engagement <= 0 || a.Engagement > 100 {
				t.Errorf("ana's scores %+v", a)
			}
			if a.RFM.Recency != 3 || a.RFM.Frequency != 3 || a.RFM.Monetary != 3 || a.RFM.Label == nil || *a.RFM.Label != "Need attention" {
				t.Errorf("ana's RFM %+v", a.RFM)
			}
			if len(a.Explain) != 4 || !strings.HasPrefix(a.Explain[0], "RFM 3-3-3 (Need attention): last order 10 days ago") {
				t.Errorf("ana's explanation:\n%s", strings.Join(a.Explain, "\n"))
			}
			// gus never ordered: no dates, no label.
			g := scoresOf(t, s, admin, gus)
			if g.Orders != 0 || g.Revenue != 0 || g.FirstOrderAt != nil || g.LastOrderAt != nil || g.ChurnRisk != 0 || g.LifetimeValue != 0 ||
				g.RFM.Recency != 0 || g.RFM.Frequency != 0 || g.RFM.Monetary != 0 || g.RFM.Label != nil || g.Engagement <= 0 {
				t.Errorf("non-buyer: %+v", g)
			}
			if len(g.Explain) != 4 || g.Explain[0] != "RFM unknown: no orders yet." {
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

		t.Run("ranking", func(t *testing.T) { scoresRanking(t, s, admin) })
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

// scoresRanking: byScore pages through every profile by cursor, without
// repeats or gaps, in the order of the scores it returns; ASC is the
// reverse; a scoreFilter alone ranks by its own score.
func scoresRanking(t *testing.T, s *testServer, tok string) {
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

	asc, _ := rankAll(t, s, tok, map[string]any{"score": "LIFETIME_VALUE", "direction": "ASC"}, nil)
	rev := slices.Clone(got)
	slices.Reverse(rev)
	if !slices.Equal(idsOf(asc), rev) {
		t.Fatalf("ASC %v, want the reverse of DESC %v", idsOf(asc), rev)
	}

	// A filter alone: by its score, highest first (fay, eve, ana, dan:
	// 6, 5, 4, 3 orders).
	three, _ := rankAll(t, s, tok, nil, []any{map[string]any{"score": "ORDERS", "min": 3}})
	if len(three) != 4 {
		t.Fatalf("scoreFilter ORDERS >= 3: %+v", three)
	}
	for i, n := range three {
		if n.Scores.Orders != 6-i {
			t.Fatalf("scoreFilter ORDERS >= 3, not by orders descending: %+v", three)
		}
	}
}

// scoresRankingBadInput: cursors of another list, search with a ranking
// and unknown enum values are refused by the API; a range the engine
// refuses keeps its field path.
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

// TestScoreSettings proves setScoreSettings' wiring: the stored settings
// and their recount through scoreSettings until DONE, the recount visible
// on Profile.scores, and bad input refused at its field path, changing
// nothing.
func TestScoreSettings(t *testing.T) {
	now := scoreNow()
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	admin := s.token(t, "acme")

	ana := scoreTrack(t, s, admin, "ana@example.com", "order_completed", now.Add(-10*scoreDay), map[string]any{"revenue": 100})
	scoreTrack(t, s, admin, "ana@example.com", "purchase", now.Add(-5*scoreDay), map[string]any{"amount": map[string]any{"value": 30, "currency": "EUR"}})
	if a := scoresOf(t, s, admin, ana); a.Orders != 1 || a.Revenue != 100 {
		t.Fatalf("before: ana %+v", a)
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
	if st.Recount.Processed != st.Recount.Total || st.Recount.Total != 1 || st.Recount.Error != nil || st.OrderEvent != "purchase" || st.RevenueProperty != "amount.value" {
		t.Fatalf("after the recount: %+v", st)
	}
	if a := scoresOf(t, s, admin, ana); a.Orders != 1 || a.Revenue != 30 || a.LastOrderAt == nil || !a.LastOrderAt.Equal(now.Add(-5*scoreDay)) {
		t.Fatalf("after: ana %+v", a)
	}

	wantError(t, s.gql(t, admin, set, map[string]any{"in": map[string]any{"orderEvent": "purchase", "revenueProperty": "amount.$gt"}}), "BAD_USER_INPUT", "input.revenueProperty")
	if again := scoreSettingsOf(t, s, admin); again.OrderEvent != st.OrderEvent || again.RevenueProperty != st.RevenueProperty ||
		again.UpdatedAt == nil || !again.UpdatedAt.Equal(*st.UpdatedAt) || again.Recount != st.Recount {
		t.Fatalf("settings changed by bad input: %+v, were %+v", again, st)
	}
}

// TestScoresChurnSegmentWebsocket is the scenario end to end: a
// person who ordered now enters "churn risk > 0.7 and lifetime value >
// 500" by time alone, delivered over a websocket once the background
// sweeper runs after the clock passed the churn crossing (cause "time"),
// and leaves with the next order (cause "track"); profileUpdated delivers
// the recounted scores.
func TestScoresChurnSegmentWebsocket(t *testing.T) {
	// No summary refresh in this test: a refresh re-evaluates the score
	// segments itself (cause "scores") and would hide whether the sweeper
	// picks the person up at the churn crossing (cause "time").
	every, boot := traits.SummaryEvery, traits.SummaryBootstrapEvery
	traits.SummaryEvery, traits.SummaryBootstrapEvery = 100*365*scoreDay, 100*365*scoreDay
	t.Cleanup(func() { traits.SummaryEvery, traits.SummaryBootstrapEvery = every, boot })

	now := scoreNow()
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	const email = "pat@example.com"

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
		pid = scoreTrack(t, s, tok, email, "order_completed", now.Add(-time.Duration(ago)*scoreDay), map[string]any{"revenue": 120})
	}
	if sum := refreshScores(t, s, tok, 6); sum.TypicalGapDays == nil || *sum.TypicalGapDays != 10 {
		t.Fatalf("summary %+v", sum)
	}
	seg := createSegment(t, s, tok, map[string]any{"name": "churning high value", "rule": map[string]any{"and": []any{
		map[string]any{"computed": map[string]any{"key": "scores.churnRisk", "op": "GT", "value": 0.7}},
		map[string]any{"computed": map[string]any{"key": "scores.lifetimeValue", "op": "GT", "value": 500}},
	}}})

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

	// profileUpdated for the person, live once a trait change made by
	// identify is delivered.
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
	live = false
	for i := 0; i < 30 && !live; i++ {
		s.gql(t, tok, `mutation($e: String!, $i: Int!) { identify(input: {identifiers: [{type: "email", value: $e}], traits: {ping: $i}}) { profile { id } } }`,
			map[string]any{"e": email, "i": i}).requireOK(t)
		_, live = nextProfile(300 * time.Millisecond)
	}
	if !live {
		t.Fatal("profileUpdated never became live")
	}

	// The 8th order, now: not a member.
	scoreTrack(t, s, tok, email, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("right after an order: %+v", m)
	}

	// 40 days after the order: the sweeper enters.
	clock.Set(now.Add(40 * scoreDay))
	m, ok := recv(5 * time.Second)
	if !ok {
		t.Fatalf("no ENTERED within 5s of the clock passing the churn crossing (scores %+v)", scoresOf(t, s, tok, pid))
	}
	if m.Kind != "ENTERED" || m.Cause != "time" || m.Segment.ID != seg.ID || m.profileID() != pid {
		t.Fatalf("after 40 days: %+v", m)
	}
	if m.At.Before(now) || m.At.After(now.Add(40*scoreDay)) {
		t.Errorf("ENTERED at %v, want by the clock %v", m.At, now.Add(40*scoreDay))
	}
	if sc := scoresOf(t, s, tok, pid); sc.ChurnRisk <= 0.7 || sc.LifetimeValue <= 500 {
		t.Fatalf("after 40 days: %+v", sc)
	}
	// Drain the profileUpdated sent meanwhile.
	for {
		if _, ok := nextProfile(200 * time.Millisecond); !ok {
			break
		}
	}

	// A new order: out of the segment, EXITED over the websocket.
	scoreTrack(t, s, tok, email, "order_completed", time.Time{}, map[string]any{"revenue": 120})
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
