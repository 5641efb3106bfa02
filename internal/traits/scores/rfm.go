package scores

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Sampling limits for the workspace RFM boundaries.
const (
	// SampleSize is the most buyers a Reservoir keeps.
	SampleSize = 10000
	// MinSample is the fewest buyers RFM is scored against.
	MinSample = 5
)

// RFM segment labels.
const (
	LabelChampions         = "Champions"
	LabelLoyal             = "Loyal"
	LabelPotentialLoyalist = "Potential loyalist"
	LabelNew               = "New"
	LabelPromising         = "Promising"
	LabelNeedAttention     = "Need attention"
	LabelAboutToSleep      = "About to sleep"
	LabelAtRisk            = "At risk"
	LabelCantLoseThem      = "Can't lose them"
	LabelHibernating       = "Hibernating"
	LabelLost              = "Lost"
)

// Labels lists every RFM label.
var Labels = []string{LabelChampions, LabelLoyal, LabelPotentialLoyalist, LabelNew, LabelPromising, LabelNeedAttention, LabelAboutToSleep, LabelAtRisk, LabelCantLoseThem, LabelHibernating, LabelLost}

// labels[R-1][FM-1].
var labels = [5][5]string{
	{LabelLost, LabelHibernating, LabelAtRisk, LabelCantLoseThem, LabelCantLoseThem},           // R=1
	{LabelHibernating, LabelAboutToSleep, LabelAtRisk, LabelAtRisk, LabelCantLoseThem},         // R=2
	{LabelAboutToSleep, LabelNeedAttention, LabelNeedAttention, LabelLoyal, LabelLoyal},        // R=3
	{LabelPromising, LabelPotentialLoyalist, LabelLoyal, LabelChampions, LabelChampions},       // R=4
	{LabelNew, LabelPotentialLoyalist, LabelPotentialLoyalist, LabelChampions, LabelChampions}, // R=5
}

// Label returns the RFM segment of scores r, f, m (1..5), "" when any is
// out of range. FM is ⌈(f+m)/2⌉.
func Label(r, f, m int) string {
	if r < 1 || r > 5 || f < 1 || f > 5 || m < 1 || m > 5 {
		return ""
	}
	return labels[r-1][(f+m+1)/2-1]
}

// Cuts are quintile boundaries: the values at 20, 40, 60 and 80%.
type Cuts [4]float64

// Quintiles returns the nearest-rank quintile boundaries of values (NaN
// ignored): cut i is the ⌈i·n/5⌉-th smallest. ok is false without values.
// With fewer than 5 values some cuts coincide (one value: all four are
// it).
func Quintiles(values []float64) (c Cuts, ok bool) {
	xs := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	n := len(xs)
	if n == 0 {
		return c, false
	}
	slices.Sort(xs)
	for i := range c {
		k := ((i+1)*n + 4) / 5 // ⌈(i+1)·n/5⌉
		c[i] = xs[k-1]
	}
	return c, true
}

// Quintile returns v's quintile 1..5 under c: one more than the number of
// cuts v is above (a value equal to a cut stays below it).
func (c Cuts) Quintile(v float64) int {
	q := 1
	for _, x := range c {
		if v > x {
			q++
		}
	}
	return q
}

// Workspace is what the scores need from the workspace: RFM boundaries
// and the typical gap between orders, computed by Summarize from a sample
// of its buyers at At.
type Workspace struct {
	Recency   Cuts // days since last order, at At
	Frequency Cuts // orders
	Monetary  Cuts // revenue
	// TypicalGap is the median of the sampled buyers' own mean gaps
	// (those with at least two orders); 0: none, DefaultGap is used.
	TypicalGap time.Duration
	// Buyers is the sample size; RFM is unknown below MinSample.
	Buyers int
	At     time.Time
}

// Row is one buyer's raw RFM values and mean gap, a sample entry.
type Row struct {
	RecencyDays float64
	Orders      int64
	Revenue     float64
	// Gap is the person's own mean gap between orders, 0 with one order.
	Gap time.Duration
}

// RowOf returns the profile's sample row at in.Now; ok is false without
// orders (only buyers are sampled).
func RowOf(in Input) (Row, bool) {
	b, ok := orders(&in)
	if !ok {
		return Row{}, false
	}
	return Row{
		RecencyDays: sinceDays(b.last, in.Now),
		Orders:      b.n,
		Revenue:     b.revenue,
		Gap:         time.Duration(b.ownDays * float64(day)),
	}, true
}

// Summarize computes the workspace boundaries and typical gap from rows
// taken at at. Cost O(s log s) for s rows.
func Summarize(rows []Row, at time.Time) Workspace {
	w := Workspace{Buyers: len(rows), At: at}
	r := make([]float64, len(rows))
	f := make([]float64, len(rows))
	m := make([]float64, len(rows))
	var gaps []time.Duration
	for i, x := range rows {
		r[i], f[i], m[i] = x.RecencyDays, float64(x.Orders), x.Revenue
		if x.Orders >= 2 && x.Gap > 0 {
			gaps = append(gaps, x.Gap)
		}
	}
	w.Recency, _ = Quintiles(r)
	w.Frequency, _ = Quintiles(f)
	w.Monetary, _ = Quintiles(m)
	if len(gaps) > 0 {
		slices.Sort(gaps)
		w.TypicalGap = gaps[(len(gaps)-1)/2] // lower median
	}
	return w
}

// Reservoir is a uniform random sample of at most its capacity rows out
// of any number offered (algorithm R): one pass over the buyers, memory
// bounded by the capacity.
type Reservoir struct {
	capacity int
	seen     int64
	rows     []Row
	rng      *rand.Rand
}

// NewReservoir returns a reservoir of the given capacity (SampleSize when
// <= 0), deterministic for a seed.
func NewReservoir(capacity int, seed uint64) *Reservoir {
	if capacity <= 0 {
		capacity = SampleSize
	}
	return &Reservoir{capacity: capacity, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Offer considers one row.
func (s *Reservoir) Offer(r Row) {
	s.seen++
	if len(s.rows) < s.capacity {
		s.rows = append(s.rows, r)
		return
	}
	if j := s.rng.Int64N(s.seen); j < int64(s.capacity) {
		s.rows[j] = r
	}
}

// Rows returns the sample (shared, not a copy).
func (s *Reservoir) Rows() []Row { return s.rows }

// Seen is the number of rows offered.
func (s *Reservoir) Seen() int64 { return s.seen }

// recencyScore is R at now (0: unknown).
func recencyScore(w *Workspace, b *buyer, now time.Time) int {
	if w == nil || w.Buyers < MinSample {
		return 0
	}
	return 6 - w.Recency.Quintile(sinceDays(b.last, now))
}

func rfmOf(in *Input, b buyer, buys bool) RFM {
	w := in.Workspace
	if !buys || w == nil || w.Buyers < MinSample {
		return RFM{}
	}
	r := recencyScore(w, &b, in.Now)
	f := w.Frequency.Quintile(float64(b.n))
	m := w.Monetary.Quintile(b.revenue)
	return RFM{Recency: r, Frequency: f, Monetary: m, Label: Label(r, f, m)}
}

func explainRFM(x RFM, b buyer, buys bool, in *Input) string {
	if !buys {
		return "RFM unknown: no orders yet."
	}
	if in.Workspace == nil || in.Workspace.Buyers < MinSample {
		return "RFM unknown: the workspace does not have enough buyers yet to compare with (at least 5)."
	}
	of := func(n int) string { return string(rune('0'+n)) + " of 5" }
	return "RFM " + string(rune('0'+x.Recency)) + "-" + string(rune('0'+x.Frequency)) + "-" + string(rune('0'+x.Monetary)) +
		" (" + x.Label + "): last order " + daysText(math.Floor(sinceDays(b.last, in.Now))) + " ago (recency " + of(x.Recency) +
		"), " + plural(b.n, "order", "orders") + " (frequency " + of(x.Frequency) + "), " + money(b.revenue) +
		" spent (monetary " + of(x.Monetary) + "), against the workspace's buyers (5 is the top fifth)."
}
