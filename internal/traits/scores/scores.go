package scores

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Constants of the formulas (see the package doc for the reasons).
const (
	// DefaultGap is the typical gap between orders while the workspace
	// has no buyer with two orders.
	DefaultGap = 30 * 24 * time.Hour
	// PriorWeight is how many workspace-typical gaps are averaged with
	// the person's own gaps.
	PriorWeight = 1.0
	// MinGapDays and MaxGapDays bound the usual gap.
	MinGapDays = 1.0
	MaxGapDays = 3650.0

	// ChurnSlope and ChurnMidpoint shape the churn logistic: risk is
	// about one half at ChurnMidpoint usual gaps without an order.
	ChurnSlope    = 2.0
	ChurnMidpoint = 2.0

	// HorizonDays is the lifetime-value horizon.
	HorizonDays = 365.0

	// ActivityDays is the engagement window in UTC days, DecayDays the
	// decay constant τ, Saturation the constant k (one event a day for
	// 90 days scores 70).
	ActivityDays = 90
	DecayDays    = 14.0
	Saturation   = 12.0

	// MaxMoney bounds |revenue| so that every score stays finite.
	MaxMoney = 1e15
)

const day = 24 * time.Hour

// Day is the number of events on one UTC day (Day = Unix seconds / 86400,
// floored).
type Day struct {
	Day int64
	N   int64
}

// DayOf returns t's UTC day index.
func DayOf(t time.Time) int64 { return floorDiv(t.Unix(), 86400) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Input is what the scores read for one profile at Now. The engine keeps
// every field current in O(1) per event:
//   - Orders, Revenue: count and sum over order events (refunds may make
//     Revenue lower; it is used as is for history, its non-negative part
//     for the future);
//   - FirstOrder, LastOrder: min and max order time (the mean gap is
//     (LastOrder − FirstOrder)/(Orders − 1), so no more is needed);
//   - Activity: events per UTC day, any event, for the days the last
//     ActivityDays can still see (older days are ignored; order does not
//     matter, duplicate days add up, days after Now count as today);
//   - FirstSeen, LastSeen: first and last event of any kind (explanations
//     only).
//
// Orders > 0 without a LastOrder (or FirstOrder) time is read as no
// orders.
type Input struct {
	Now        time.Time
	Orders     int64
	Revenue    float64
	FirstOrder time.Time
	LastOrder  time.Time
	Activity   []Day
	FirstSeen  time.Time
	LastSeen   time.Time
	// Workspace holds the RFM boundaries and the typical gap; nil: RFM
	// unknown, typical gap DefaultGap.
	Workspace *Workspace
}

// Scores are a profile's built-in scores at Input.Now.
type Scores struct {
	RFM RFM
	// Engagement is 0..100.
	Engagement float64
	// ChurnRisk is 0..1 (0 without orders).
	ChurnRisk float64
	// LifetimeValue is revenue so far plus the expected next 12 months.
	LifetimeValue float64
	// Explain has one sentence per score: RFM, engagement, churn risk,
	// lifetime value.
	Explain []string
}

// RFM is the recency, frequency and monetary quintile scores (1..5, 0
// when unknown) and the resulting segment label ("" when unknown).
type RFM struct {
	Recency   int
	Frequency int
	Monetary  int
	Label     string
}

// buyer is the sanitized order history.
type buyer struct {
	n         int64
	revenue   float64
	first     time.Time
	last      time.Time
	gapDays   float64 // usual gap, blended with the prior
	ownDays   float64 // the person's own mean gap (n >= 2)
	priorDays float64
}

func sanitizeMoney(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Max(-MaxMoney, math.Min(MaxMoney, x))
}

// typicalGapDays is the workspace prior in days.
func typicalGapDays(w *Workspace) float64 {
	g := DefaultGap
	if w != nil && w.TypicalGap > 0 {
		g = w.TypicalGap
	}
	return clampGap(g.Hours() / 24)
}

func clampGap(d float64) float64 {
	if math.IsNaN(d) {
		return MaxGapDays
	}
	return math.Max(MinGapDays, math.Min(MaxGapDays, d))
}

// orders reads the order history; ok false without orders.
func orders(in *Input) (b buyer, ok bool) {
	if in.Orders <= 0 {
		return b, false
	}
	last, first := in.LastOrder, in.FirstOrder
	if last.IsZero() {
		last = first
	}
	if first.IsZero() {
		first = last
	}
	if last.IsZero() {
		return b, false
	}
	if first.After(last) {
		first, last = last, first
	}
	b = buyer{n: in.Orders, revenue: sanitizeMoney(in.Revenue), first: first, last: last}
	b.priorDays = typicalGapDays(in.Workspace)
	span := last.Sub(first).Hours() / 24
	gaps := float64(b.n - 1)
	if b.n >= 2 {
		b.ownDays = span / gaps
	}
	b.gapDays = clampGap((span + PriorWeight*b.priorDays) / (gaps + PriorWeight))
	return b, true
}

// sinceDays is the days from t to now, 0 when t is later.
func sinceDays(t, now time.Time) float64 {
	d := now.Sub(t)
	if d <= 0 {
		return 0
	}
	return d.Hours() / 24
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

var sigma0 = sigmoid(-ChurnSlope * ChurnMidpoint)

// churnOfRatio is the churn curve of r = days since last order / usual gap.
func churnOfRatio(r float64) float64 {
	c := (sigmoid(ChurnSlope*(r-ChurnMidpoint)) - sigma0) / (1 - sigma0)
	return math.Max(0, math.Min(1, c))
}

func (b *buyer) churn(now time.Time) (risk, days, ratio float64) {
	days = sinceDays(b.last, now)
	ratio = days / b.gapDays
	return churnOfRatio(ratio), days, ratio
}

func (b *buyer) aov() float64 { return b.revenue / float64(b.n) }

// ltv returns the lifetime value and the expected future orders.
func (b *buyer) ltv(churn float64) (value, future float64) {
	future = HorizonDays / b.gapDays * (1 - churn)
	return b.revenue + math.Max(0, b.aov())*future, future
}

// weighted is the recency-weighted activity A at now and the events it
// counts.
func weighted(act []Day, now time.Time) (a float64, events int64) {
	today := DayOf(now)
	for _, d := range act {
		if d.N <= 0 || d.Day <= today-ActivityDays {
			continue
		}
		age := int64(0)
		if d.Day < today {
			age = today - d.Day
		}
		a += float64(d.N) * math.Exp(-float64(age)/DecayDays)
		if events <= math.MaxInt64-d.N {
			events += d.N
		}
	}
	return a, events
}

func engagementOf(a float64) float64 {
	e := 100 * (1 - math.Exp(-a/Saturation))
	if math.IsNaN(e) {
		return 0
	}
	return math.Max(0, math.Min(100, e))
}

// Compute returns the scores at in.Now.
func Compute(in Input) Scores {
	var s Scores
	b, buys := orders(&in)

	// RFM.
	s.RFM = rfmOf(&in, b, buys)
	s.Explain = append(s.Explain, explainRFM(s.RFM, b, buys, &in))

	// Engagement.
	a, n := weighted(in.Activity, in.Now)
	s.Engagement = engagementOf(a)
	s.Explain = append(s.Explain, explainEngagement(s.Engagement, a, n, &in))

	// Churn risk and lifetime value.
	if !buys {
		s.Explain = append(s.Explain,
			"Churn risk 0: no orders yet, so there is no buying rhythm to fall out of (see engagement for activity).",
			"Lifetime value 0: no orders yet.")
		return s
	}
	risk, days, ratio := b.churn(in.Now)
	s.ChurnRisk = risk
	s.LifetimeValue, _ = b.ltv(risk)
	s.Explain = append(s.Explain, explainChurn(risk, days, ratio, b), explainLTV(s.LifetimeValue, b, risk))
	return s
}

// Explanations.

func num(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }

// daysText prints a number of days: one decimal below 100 (none when it
// is .0), whole from 100.
func daysText(d float64) string {
	s := num(d, 1)
	if d >= 100 {
		s = num(d, 0)
	}
	s = strings.TrimSuffix(s, ".0")
	if s == "1" {
		return "1 day"
	}
	return s + " days"
}

func money(x float64) string { return num(x, 2) }

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

func gapText(b buyer) string {
	prior := daysText(b.priorDays)
	if b.n < 2 {
		return "the usual " + prior + " between orders in this workspace (only one order so far)"
	}
	return "your usual " + daysText(b.gapDays) + " between orders (your " + plural(b.n-1, "gap", "gaps") +
		" averaging " + daysText(b.ownDays) + ", counted with one typical workspace gap of " + prior + ")"
}

func explainChurn(risk, days, ratio float64, b buyer) string {
	head := "Churn risk " + num(risk, 2) + ": "
	if days == 0 {
		return head + "ordered just now; " + gapText(b) + "."
	}
	return head + "no order for " + daysText(days) + ", " + num(ratio, 1) + "× " + gapText(b) +
		". Risk is 0.5 at about twice the usual gap and 0.9 at three times."
}

func explainLTV(v float64, b buyer, risk float64) string {
	_, future := b.ltv(risk)
	return "Lifetime value " + money(v) + ": " + money(b.revenue) + " spent so far over " + plural(b.n, "order", "orders") +
		", plus " + num(future, 1) + " more orders expected in the next 365 days (one every " + daysText(b.gapDays) +
		", reduced by the churn risk) at the average order value of " + money(math.Max(0, b.aov())) + "."
}

func explainEngagement(e, a float64, n int64, in *Input) string {
	head := "Engagement " + num(math.Round(e), 0) + ": "
	if n == 0 {
		s := head + "no events in the last 90 days"
		if !in.LastSeen.IsZero() {
			s += " (last seen " + daysText(math.Floor(sinceDays(in.LastSeen, in.Now))) + " ago)"
		}
		return s + "."
	}
	return head + plural(n, "event", "events") + " in the last 90 days, worth " + num(a, 1) +
		" once recent days count most (today 1, a week ago 0.61, a month ago 0.12); one event every day scores 70."
}
