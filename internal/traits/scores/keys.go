package scores

import (
	"strings"
	"time"
)

// Keys name the scores where rules and sorting refer to them, as
// computed keys (segment rule `computed {key: "scores.churnRisk"}`): the
// "scores." prefix cannot clash with a computed trait's key, which has no
// dots.
const (
	KeyRecency       = "scores.rfm.recency"
	KeyFrequency     = "scores.rfm.frequency"
	KeyMonetary      = "scores.rfm.monetary"
	KeyLabel         = "scores.rfm.label"
	KeyEngagement    = "scores.engagement"
	KeyChurnRisk     = "scores.churnRisk"
	KeyLifetimeValue = "scores.lifetimeValue"
	KeyOrders        = "scores.orders"
	KeyRevenue       = "scores.revenue"
)

// Prefix starts every score key.
const Prefix = "scores."

// Keys lists every score key.
var Keys = []string{KeyRecency, KeyFrequency, KeyMonetary, KeyLabel, KeyEngagement, KeyChurnRisk, KeyLifetimeValue, KeyOrders, KeyRevenue}

// OrderKeys are the keys an order can change; any event changes
// KeyEngagement; a new workspace summary changes the RFM keys, churn risk
// and lifetime value (the typical gap).
var (
	OrderKeys   = []string{KeyRecency, KeyFrequency, KeyMonetary, KeyLabel, KeyChurnRisk, KeyLifetimeValue, KeyOrders, KeyRevenue}
	SummaryKeys = []string{KeyRecency, KeyFrequency, KeyMonetary, KeyLabel, KeyChurnRisk, KeyLifetimeValue}
)

// IsKey tells whether k names a score.
func IsKey(k string) bool {
	if !strings.HasPrefix(k, Prefix) {
		return false
	}
	for _, x := range Keys {
		if x == k {
			return true
		}
	}
	return false
}

// Numeric tells whether key's values are numbers (all but the label).
func Numeric(key string) bool { return key != KeyLabel }

// Get returns the score key's value at in.Now (Value) and the earliest
// instant after in.Now at which its comparison with any of thresholds can
// change with time alone (zero: never). Orders, revenue, frequency and
// monetary change only with orders.
func Get(key string, in Input, thresholds []float64) (any, time.Time) {
	return Value(key, in), nextChange(key, in, thresholds)
}

// Value is the score key's value at in.Now: nil when unknown (the RFM
// scores and label without orders or enough buyers).
func Value(key string, in Input) any {
	b, buys := orders(&in)
	switch key {
	case KeyEngagement:
		a, _ := weighted(in.Activity, in.Now)
		return engagementOf(a)
	case KeyOrders:
		if !buys {
			return int64(0)
		}
		return b.n
	case KeyRevenue:
		if !buys {
			return 0.0
		}
		return b.revenue
	case KeyChurnRisk:
		if !buys {
			return 0.0
		}
		c, _, _ := b.churn(in.Now)
		return c
	case KeyLifetimeValue:
		if !buys {
			return 0.0
		}
		c, _, _ := b.churn(in.Now)
		v, _ := b.ltv(c)
		return v
	}
	x := rfmOf(&in, b, buys)
	if x.Recency == 0 {
		return nil
	}
	switch key {
	case KeyRecency:
		return int64(x.Recency)
	case KeyFrequency:
		return int64(x.Frequency)
	case KeyMonetary:
		return int64(x.Monetary)
	case KeyLabel:
		return x.Label
	}
	return nil
}

// nextChange is Get's second result. Crossing and NextRFMChange are zero
// where the score is constant or unknown (no orders, too few buyers).
func nextChange(key string, in Input, thresholds []float64) time.Time {
	earliest := func(m Measure) time.Time {
		var next time.Time
		for _, th := range thresholds {
			if t := Crossing(in, m, th); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		return next
	}
	switch key {
	case KeyEngagement:
		return earliest(Engagement)
	case KeyChurnRisk:
		return earliest(ChurnRisk)
	case KeyLifetimeValue:
		return earliest(LifetimeValue)
	case KeyRecency, KeyLabel:
		return NextRFMChange(in)
	}
	return time.Time{}
}
