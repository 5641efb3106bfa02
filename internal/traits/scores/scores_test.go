package scores_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/traits/scores"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func days(n float64) time.Duration { return time.Duration(n * float64(day)) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// ws is a workspace with the given typical gap and enough buyers for RFM.
func ws(gap time.Duration) *scores.Workspace {
	return &scores.Workspace{
		Recency:    scores.Cuts{10, 30, 60, 120},
		Frequency:  scores.Cuts{1, 2, 3, 6},
		Monetary:   scores.Cuts{50, 100, 250, 600},
		TypicalGap: gap,
		Buyers:     1000,
		At:         t0,
	}
}

// buyer makes an input with n orders every gap days, the last one `ago`
// before t0, with the given order value.
func buyer(n int, gap, ago, aov float64) scores.Input {
	last := t0.Add(-days(ago))
	return scores.Input{
		Now:        t0,
		Orders:     int64(n),
		Revenue:    float64(n) * aov,
		FirstOrder: last.Add(-days(gap * float64(n-1))),
		LastOrder:  last,
		Workspace:  ws(30 * day),
	}
}

// The churn and lifetime-value expectations are computed by hand (the
// logistic and the sums written out, see the comments).
func TestChurnRiskAndLifetimeValue(t *testing.T) {
	for _, c := range []struct {
		name      string
		in        scores.Input
		churn     float64
		ltv       float64
		explainIn string
	}{
		// usual gap (7·10 + 30)/8 = 12.5; r = 0: churn 0; LTV 960 + 120·365/12.5 = 4464.
		{"8 orders, just ordered", buyer(8, 10, 0, 120), 0, 4464, "ordered just now"},
		// r = 5/12.5 = 0.4: (σ(−3.2) − σ(−4)) / (1 − σ(−4)).
		{"8 orders, 5 days", buyer(8, 10, 5, 120), 0.021567429143591974, 960 + 120*365/12.5*(1-0.021567429143591974), "no order for 5 days, 0.4×"},
		// r = 80/12.5 = 6.4.
		{"8 orders, 80 days", buyer(8, 10, 80, 120), 0.9998465292854453, 960.5377613837998, "no order for 80 days, 6.4× your usual 12.5 days between orders (your 7 gaps averaging 10 days"},
		// one order: usual gap = the workspace's 30; r = 0.5.
		{"one order, 15 days", buyer(1, 0, 15, 50), 0.02997886945593582, 50 + 50*365.0/30*(1-0.02997886945593582), "the usual 30 days between orders in this workspace (only one order so far)"},
		// two orders 20 days apart: usual gap (20 + 30)/2 = 25; r = 40/25 = 1.6.
		{"two orders, 40 days", buyer(2, 20, 40, 150), 0.29738819543361245, 1838.7198520003888, "1.6×"},
		// r = 2 exactly: (1/2 − σ(−4)) / (1 − σ(−4)).
		{"r = 2", buyer(1, 0, 60, 10), 0.4908421805556329, 10 + 10*365.0/30*(1-0.4908421805556329), "2.0×"},
		// r = 3.
		{"r = 3", buyer(1, 0, 90, 10), 0.8786138003036432, 10 + 10*365.0/30*(1-0.8786138003036432), "3.0×"},
		// zero revenue: churn as usual, LTV 0.
		{"zero revenue", buyer(3, 10, 0, 0), 0, 0, "Churn risk 0.00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := scores.Compute(c.in)
			if !near(s.ChurnRisk, c.churn) || !near(s.LifetimeValue, c.ltv) {
				t.Fatalf("churn %v ltv %v, want %v %v", s.ChurnRisk, s.LifetimeValue, c.churn, c.ltv)
			}
			if len(s.Explain) != 4 || !strings.Contains(s.Explain[2], c.explainIn) {
				t.Fatalf("explain %q does not contain %q", s.Explain, c.explainIn)
			}
		})
	}
}

func TestEngagement(t *testing.T) {
	today := scores.DayOf(t0)
	daily := make([]scores.Day, 0, 120)
	for a := range int64(120) { // 120 days: the 30 oldest are outside the window
		daily = append(daily, scores.Day{Day: today - a, N: 1})
	}
	weekly := []scores.Day{}
	for j := int64(0); j < 13; j++ {
		weekly = append(weekly, scores.Day{Day: today - 7*j, N: 1})
	}
	for _, c := range []struct {
		name string
		act  []scores.Day
		want float64
	}{
		{"nothing", nil, 0},
		// 100·(1 − e^(−1/12)).
		{"one today", []scores.Day{{today, 1}}, 7.995558537067671},
		// 100·(1 − e^(−10/12)).
		{"ten today", []scores.Day{{today, 10}}, 56.54017914929218},
		// A = Σ_{a<90} e^(−a/14) = 14.48: the "typical active" 70.
		{"one a day", daily, 70.08701020186973},
		// A = Σ_{j<13} e^(−j/2).
		{"one a week", weekly, 19.06086701276466},
		// A = 3 + 2·e^(−7/14) + 5·e^(−30/14); unsorted, split duplicates.
		{"mixed", []scores.Day{{today - 30, 5}, {today, 2}, {today - 7, 2}, {today, 1}}, 32.96608020826737},
		// 90 days old and more do not count; zero and negative counts neither.
		{"too old", []scores.Day{{today - 90, 100}, {today - 1000, 5}, {today, 0}, {today, -3}}, 0},
		// a day after today counts as today.
		{"future", []scores.Day{{today + 1, 1}}, 7.995558537067671},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := scores.Compute(scores.Input{Now: t0, Activity: c.act})
			if !near(s.Engagement, c.want) {
				t.Fatalf("engagement %v, want %v", s.Engagement, c.want)
			}
		})
	}
}

func TestEdgeCases(t *testing.T) {
	t.Run("no orders", func(t *testing.T) {
		s := scores.Compute(scores.Input{Now: t0, Workspace: ws(0), LastSeen: t0.Add(-days(120))})
		if s.ChurnRisk != 0 || s.LifetimeValue != 0 || s.RFM != (scores.RFM{}) || s.Engagement != 0 {
			t.Fatalf("%+v", s)
		}
		want := []string{
			"RFM unknown: no orders yet.",
			"Engagement 0: no events in the last 90 days (last seen 120 days ago).",
			"Churn risk 0: no orders yet, so there is no buying rhythm to fall out of (see engagement for activity).",
			"Lifetime value 0: no orders yet.",
		}
		if !slices.Equal(s.Explain, want) {
			t.Fatalf("explain %q", s.Explain)
		}
	})
	t.Run("orders without times read as none", func(t *testing.T) {
		s := scores.Compute(scores.Input{Now: t0, Orders: 3, Revenue: 90})
		if s.ChurnRisk != 0 || s.LifetimeValue != 0 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("order in the future", func(t *testing.T) {
		in := buyer(2, 10, 0, 100)
		in.LastOrder = t0.Add(time.Hour)
		s := scores.Compute(in)
		if s.ChurnRisk != 0 || s.RFM.Recency != 5 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("first and last swapped", func(t *testing.T) {
		a, b := buyer(4, 10, 25, 80), buyer(4, 10, 25, 80)
		b.FirstOrder, b.LastOrder = b.LastOrder, b.FirstOrder
		if sa, sb := scores.Compute(a), scores.Compute(b); sa.ChurnRisk != sb.ChurnRisk || sa.LifetimeValue != sb.LifetimeValue {
			t.Fatalf("%+v %+v", sa, sb)
		}
	})
	t.Run("same-instant orders use the 1-day floor", func(t *testing.T) {
		in := buyer(100, 0, 3, 10) // usual gap (0 + 30)/100 = 0.3 → 1 day; r = 3
		if s := scores.Compute(in); !near(s.ChurnRisk, 0.8786138003036432) {
			t.Fatalf("churn %v", s.ChurnRisk)
		}
	})
	t.Run("refunds", func(t *testing.T) {
		in := buyer(2, 10, 0, 10)
		in.Revenue = -50
		if s := scores.Compute(in); s.LifetimeValue != -50 {
			t.Fatalf("ltv %v: history as is, no future value from a negative AOV", s.LifetimeValue)
		}
	})
	t.Run("huge values", func(t *testing.T) {
		in := scores.Input{
			Now: t0, Orders: math.MaxInt64, Revenue: math.Inf(1),
			FirstOrder: time.Unix(-1<<40, 0), LastOrder: t0.Add(-days(1e5)),
			Activity:  []scores.Day{{scores.DayOf(t0), math.MaxInt64}, {scores.DayOf(t0), math.MaxInt64}, {math.MinInt64, 5}, {math.MaxInt64, 7}},
			Workspace: &scores.Workspace{TypicalGap: math.MaxInt64, Buyers: 5, Recency: scores.Cuts{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}},
		}
		checkRanges(t, in, scores.Compute(in))
	})
}

func TestQuintiles(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []float64
		want scores.Cuts
		ok   bool
	}{
		{"empty", nil, scores.Cuts{}, false},
		{"only NaN", []float64{math.NaN()}, scores.Cuts{}, false},
		{"1..10", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, scores.Cuts{2, 4, 6, 8}, true},
		{"ties", []float64{1, 1, 1, 1, 1, 1, 2, 3, 5, 8}, scores.Cuts{1, 1, 1, 3}, true},
		{"three", []float64{5, 1, 3}, scores.Cuts{1, 3, 3, 5}, true},
		{"one", []float64{7}, scores.Cuts{7, 7, 7, 7}, true},
		{"NaN ignored", []float64{math.NaN(), 2, 1, 4, 3, 5}, scores.Cuts{1, 2, 3, 4}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := scores.Quintiles(c.in)
			if got != c.want || ok != c.ok {
				t.Fatalf("%v %v, want %v %v", got, ok, c.want, c.ok)
			}
		})
	}
	// 1..10: two values per quintile; ties share a score.
	c, _ := scores.Quintiles([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	for v, q := range map[float64]int{0: 1, 1: 1, 2: 1, 2.5: 2, 4: 2, 5: 3, 7: 4, 8: 4, 9: 5, 1e9: 5} {
		if got := c.Quintile(v); got != q {
			t.Errorf("quintile(%v) = %d, want %d", v, got, q)
		}
	}
	c, _ = scores.Quintiles([]float64{1, 1, 1, 1, 1, 1, 2, 3, 5, 8})
	for v, q := range map[float64]int{1: 1, 2: 4, 3: 4, 5: 5} {
		if got := c.Quintile(v); got != q {
			t.Errorf("ties: quintile(%v) = %d, want %d", v, got, q)
		}
	}
}

func TestLabelsCoverAll125(t *testing.T) {
	seen := map[string]int{}
	for r := 1; r <= 5; r++ {
		for f := 1; f <= 5; f++ {
			for m := 1; m <= 5; m++ {
				l := scores.Label(r, f, m)
				if !slices.Contains(scores.Labels, l) {
					t.Fatalf("Label(%d,%d,%d) = %q", r, f, m, l)
				}
				if scores.Label(r, m, f) != l {
					t.Fatalf("F and M are not symmetric at %d,%d,%d", r, f, m)
				}
				seen[l]++
			}
		}
	}
	if len(seen) != len(scores.Labels) {
		t.Fatalf("labels reached: %v", seen)
	}
	for _, c := range []struct {
		r, f, m int
		want    string
	}{
		{5, 5, 5, scores.LabelChampions}, {4, 4, 3, scores.LabelChampions}, {5, 1, 1, scores.LabelNew},
		{4, 1, 1, scores.LabelPromising}, {5, 2, 3, scores.LabelPotentialLoyalist}, {3, 5, 4, scores.LabelLoyal},
		{3, 2, 3, scores.LabelNeedAttention}, {3, 1, 1, scores.LabelAboutToSleep}, {2, 3, 3, scores.LabelAtRisk},
		{1, 5, 5, scores.LabelCantLoseThem}, {2, 1, 1, scores.LabelHibernating}, {1, 2, 1, scores.LabelHibernating}, {1, 1, 1, scores.LabelLost},
		{0, 1, 1, ""}, {1, 6, 1, ""},
	} {
		if got := scores.Label(c.r, c.f, c.m); got != c.want {
			t.Errorf("Label(%d,%d,%d) = %q, want %q", c.r, c.f, c.m, got, c.want)
		}
	}
}

func TestRFM(t *testing.T) {
	// A workspace of 10 buyers: recency 1..10 days, 1..10 orders, 10..100 spent.
	var rows []scores.Row
	for i := 1; i <= 10; i++ {
		in := buyer(i, 3, float64(i), 10)
		r, ok := scores.RowOf(in)
		if !ok {
			t.Fatal("buyer without row")
		}
		rows = append(rows, r)
	}
	if _, ok := scores.RowOf(scores.Input{Now: t0}); ok {
		t.Fatal("row for a profile without orders")
	}
	w := scores.Summarize(rows, t0)
	if w.Recency != (scores.Cuts{2, 4, 6, 8}) || w.Frequency != (scores.Cuts{2, 4, 6, 8}) || w.Monetary != (scores.Cuts{20, 40, 60, 80}) || w.Buyers != 10 {
		t.Fatalf("%+v", w)
	}
	if w.TypicalGap != 3*day {
		t.Fatalf("typical gap %v", w.TypicalGap)
	}
	in := buyer(9, 3, 1.5, 10) // recency 1.5 → R5; 9 orders → F5; 90 → M5
	in.Workspace = &w
	s := scores.Compute(in)
	if s.RFM != (scores.RFM{5, 5, 5, scores.LabelChampions}) {
		t.Fatalf("%+v", s.RFM)
	}
	if want := "RFM 5-5-5 (Champions): last order 1 day ago (recency 5 of 5), 9 orders (frequency 5 of 5), 90.00 spent (monetary 5 of 5)"; !strings.HasPrefix(s.Explain[0], want) {
		t.Fatalf("explain %q", s.Explain[0])
	}
	in = buyer(1, 0, 30, 15) // R1, F1, M1
	in.Workspace = &w
	if s := scores.Compute(in); s.RFM != (scores.RFM{1, 1, 1, scores.LabelLost}) {
		t.Fatalf("%+v", s.RFM)
	}
	// Fewer than MinSample buyers: unknown.
	w4 := scores.Summarize(rows[:4], t0)
	in.Workspace = &w4
	if s := scores.Compute(in); s.RFM != (scores.RFM{}) || !strings.Contains(s.Explain[0], "enough buyers") {
		t.Fatalf("%+v %q", s.RFM, s.Explain[0])
	}
	// No workspace: unknown, and the typical gap is DefaultGap.
	in.Workspace = nil
	if s := scores.Compute(in); s.RFM != (scores.RFM{}) || !strings.Contains(s.Explain[2], "usual 30 days") {
		t.Fatalf("%+v %q", s.RFM, s.Explain)
	}
}

func TestReservoir(t *testing.T) {
	r := scores.NewReservoir(100, 1)
	for i := range 10000 {
		r.Offer(scores.Row{Orders: int64(i)})
	}
	if len(r.Rows()) != 100 || r.Seen() != 10000 {
		t.Fatalf("%d rows, %d seen", len(r.Rows()), r.Seen())
	}
	// Uniform: the sample's mean is near the population's (4999.5;
	// standard error about 290).
	var sum float64
	for _, x := range r.Rows() {
		sum += float64(x.Orders)
	}
	if m := sum / 100; m < 4000 || m > 6000 {
		t.Fatalf("sample mean %v", m)
	}
	if len(scores.NewReservoir(0, 1).Rows()) != 0 {
		t.Fatal("not empty")
	}
}

// The scenario: a regular buyer is not at risk; 80 days after the
// last order churn risk > 0.7 and LTV > 500; after a new order the risk
// is below 0.7 again.
func TestScenarioChurnAndLTV(t *testing.T) {
	in := buyer(8, 10, 0, 120)
	inSegment := func(s scores.Scores) bool { return s.ChurnRisk > 0.7 && s.LifetimeValue > 500 }
	for _, d := range []float64{0, 1, 5, 10, 12.5, 20} {
		in.Now = in.LastOrder.Add(days(d))
		if s := scores.Compute(in); s.ChurnRisk >= 0.7 || inSegment(s) {
			t.Fatalf("day %v: churn %v", d, s.ChurnRisk)
		}
	}
	in.Now = in.LastOrder
	enter := scores.Crossing(in, scores.ChurnRisk, 0.7)
	// 0.7 at r ≈ 2.4366 usual gaps of 12.5 days: ≈ 30.46 days.
	if d := enter.Sub(in.LastOrder).Hours() / 24; d < 30.4 || d > 30.5 {
		t.Fatalf("crosses 0.7 after %v days", d)
	}
	in.Now = in.LastOrder.Add(80 * day)
	s := scores.Compute(in)
	if !inSegment(s) {
		t.Fatalf("80 days: churn %v ltv %v", s.ChurnRisk, s.LifetimeValue)
	}
	if !strings.HasPrefix(s.Explain[2], "Churn risk 1.00: no order for 80 days, 6.4× your usual 12.5 days between orders") {
		t.Fatalf("explain %q", s.Explain[2])
	}
	// LTV falls with time but stays above 960 (spent so far).
	if scores.Crossing(in, scores.LifetimeValue, 500) != (time.Time{}) {
		t.Fatal("LTV would fall below 500")
	}
	// A new order: first stays, last moves, count and revenue grow.
	in.Orders++
	in.Revenue += 120
	in.LastOrder = in.Now
	s = scores.Compute(in)
	if s.ChurnRisk >= 0.7 || inSegment(s) {
		t.Fatalf("after the order: churn %v", s.ChurnRisk)
	}
}

// randomInput draws a profile, sometimes odd (future orders, no orders,
// zero revenue, future activity).
func randomInput(r *rand.Rand, maxGap float64) scores.Input {
	now := t0.Add(time.Duration(r.Int64N(int64(day))))
	in := scores.Input{Now: now, LastSeen: now.Add(-days(r.Float64() * 100))}
	if r.IntN(8) != 0 {
		in.Orders = 1 + r.Int64N(20)
		in.LastOrder = now.Add(-days(r.Float64()*200 - 2))
		in.FirstOrder = in.LastOrder.Add(-days(r.Float64() * maxGap * float64(in.Orders-1)))
		if r.IntN(6) != 0 {
			in.Revenue = r.Float64() * 200 * float64(in.Orders)
		}
	}
	today := scores.DayOf(now)
	for range r.IntN(30) {
		in.Activity = append(in.Activity, scores.Day{Day: today - r.Int64N(120) + 2, N: r.Int64N(5)})
	}
	w := ws(time.Duration(r.Float64() * maxGap * float64(day)))
	if r.IntN(5) == 0 {
		w = nil
	}
	in.Workspace = w
	return in
}

func checkRanges(t *testing.T, in scores.Input, s scores.Scores) {
	t.Helper()
	fin := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !fin(s.Engagement) || s.Engagement < 0 || s.Engagement > 100 ||
		!fin(s.ChurnRisk) || s.ChurnRisk < 0 || s.ChurnRisk > 1 || !fin(s.LifetimeValue) {
		t.Fatalf("out of range: %+v for %+v", s, in)
	}
	for _, x := range []int{s.RFM.Recency, s.RFM.Frequency, s.RFM.Monetary} {
		if x < 0 || x > 5 {
			t.Fatalf("RFM %+v", s.RFM)
		}
	}
	if (s.RFM.Recency == 0) != (s.RFM.Label == "") || len(s.Explain) != 4 {
		t.Fatalf("%+v", s)
	}
	if in.Orders > 0 && !in.LastOrder.IsZero() && in.Revenue >= 0 && s.LifetimeValue < math.Min(in.Revenue, scores.MaxMoney) {
		t.Fatalf("LTV %v below revenue %v", s.LifetimeValue, in.Revenue)
	}
}

func TestPropertyRanges(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for range 2000 {
		in := randomInput(r, 60)
		if r.IntN(10) == 0 { // extremes
			in.Revenue = []float64{math.NaN(), math.Inf(-1), 1e300, -1e300, 0}[r.IntN(5)]
			in.Orders = []int64{math.MaxInt64, 1, 2, -5}[r.IntN(4)]
			in.FirstOrder = in.FirstOrder.Add(-days(r.Float64() * 1e5))
		}
		checkRanges(t, in, scores.Compute(in))
	}
}

// value reads measure m from Compute at t.
func value(in scores.Input, m scores.Measure, t time.Time) float64 {
	in.Now = t
	s := scores.Compute(in)
	switch m {
	case scores.ChurnRisk:
		return s.ChurnRisk
	case scores.Engagement:
		return s.Engagement
	case scores.LifetimeValue:
		return s.LifetimeValue
	}
	return float64(s.RFM.Recency)
}

// Without new events churn risk never decreases; engagement, lifetime
// value and R never increase.
func TestMonotoneInTime(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 8))
	for range 300 {
		in := randomInput(r, 60)
		prev := scores.Compute(in)
		now := in.Now
		for range 60 {
			now = now.Add(time.Duration(r.Int64N(int64(10 * day))))
			in.Now = now
			s := scores.Compute(in)
			if s.ChurnRisk < prev.ChurnRisk || s.Engagement > prev.Engagement || s.LifetimeValue > prev.LifetimeValue ||
				s.RFM.Recency > prev.RFM.Recency || s.RFM.Frequency != prev.RFM.Frequency || s.RFM.Monetary != prev.RFM.Monetary {
				t.Fatalf("not monotone at %v: %+v then %+v for %+v", now, prev, s, in)
			}
			prev = s
		}
	}
}

type cls int

func classOf(v, th float64) cls {
	switch {
	case v < th:
		return 0
	case v == th:
		return 1
	}
	return 2
}

// Crossing agrees with stepping through time: for the continuous scores
// (churn, LTV, R) every 12 hours, then to the millisecond around the
// answer (the first millisecond that has changed); for engagement every
// UTC midnight exactly.
func TestCrossingMatchesBruteForce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 9))
	measures := []scores.Measure{scores.ChurnRisk, scores.Engagement, scores.LifetimeValue, scores.Recency}
	for i := range 240 {
		in := randomInput(r, 15)
		m := measures[i%len(measures)]
		// Thresholds the score actually takes (reached exactly), near
		// them, and out of reach.
		th := value(in, m, in.Now.Add(time.Duration(r.Int64N(int64(200*day)))))
		switch r.IntN(4) {
		case 0:
			th += (r.Float64() - 0.5) * 0.01 * math.Max(1, math.Abs(th))
		case 1:
			th = []float64{-1, 0, 1, 100, 1e12, 3}[r.IntN(6)]
		}
		got := scores.Crossing(in, m, th)
		ref := classOf(value(in, m, in.Now), th)

		const step = 12 * time.Hour
		var want time.Time // first step with another class
		if m == scores.Engagement {
			for d := scores.DayOf(in.Now) + 1; d <= scores.DayOf(in.Now)+200; d++ {
				if at := time.Unix(d*86400, 0).UTC(); classOf(value(in, m, at), th) != ref {
					want = at
					break
				}
			}
			if !got.Equal(want) {
				t.Fatalf("%s > %v: Crossing %v, stepping %v (%+v)", m, th, got, want, in)
			}
			continue
		}
		for at := in.Now.Add(step); at.Before(in.Now.Add(1000 * day)); at = at.Add(step) {
			if classOf(value(in, m, at), th) != ref {
				want = at
				break
			}
		}
		switch {
		case want.IsZero():
			if !got.IsZero() {
				t.Fatalf("%s %v: Crossing %v, stepping never (%+v)", m, th, got, in)
			}
		case got.IsZero() || got.After(want) || !got.After(want.Add(-step-time.Second)):
			t.Fatalf("%s %v: Crossing %v, stepping in (%v, %v] (%+v)", m, th, got, want.Add(-step), want, in)
		case classOf(value(in, m, got), th) == ref:
			t.Fatalf("%s %v: no change at %v", m, th, got)
		case got.Add(-time.Millisecond).After(in.Now) && classOf(value(in, m, got.Add(-time.Millisecond)), th) != ref:
			t.Fatalf("%s %v: already changed a millisecond before %v: a late nextEvalAt", m, th, got)
		}
		if !got.IsZero() && got.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("not a whole millisecond: %v", got)
		}
	}
}

func TestNextRFMChange(t *testing.T) {
	in := buyer(3, 10, 0, 100) // R5 until 10 days, R4 until 30, ...
	in.Now = in.LastOrder.Add(time.Hour)
	var got []float64
	for {
		next := scores.NextRFMChange(in)
		if next.IsZero() {
			break
		}
		got = append(got, next.Sub(in.LastOrder).Hours()/24)
		in.Now = next
	}
	// A value equal to a cut stays below it: R drops a millisecond after
	// 10, 30, 60, 120 days.
	want := []float64{10, 30, 60, 120}
	if len(got) != len(want) {
		t.Fatalf("changes at %v days", got)
	}
	for i := range want {
		if d := got[i] - want[i]; d <= 0 || d > 1.5/86400 {
			t.Fatalf("changes at %v days, want just after %v", got, want)
		}
	}
	if s := scores.Compute(in); s.RFM.Recency != 1 {
		t.Fatalf("R %d", s.RFM.Recency)
	}
	if !scores.NextRFMChange(scores.Input{Now: t0}).IsZero() {
		t.Fatal("change without orders")
	}
}
