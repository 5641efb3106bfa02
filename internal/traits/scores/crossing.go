package scores

import (
	"math"
	"time"
)

// Measure names a score that changes with time alone.
type Measure string

// Measures.
const (
	ChurnRisk     Measure = "churnRisk"     // non-decreasing without events
	Engagement    Measure = "engagement"    // non-increasing
	LifetimeValue Measure = "lifetimeValue" // non-increasing
	Recency       Measure = "rfm.recency"   // the R score, non-increasing
)

// maxAheadSeconds bounds how far ahead a crossing is looked for.
const maxAheadSeconds = 500 * 365 * 86400

// measureAt is measure m at t. Churn risk, lifetime value and the R score
// need orders (b); Crossing never asks for them without.
func measureAt(in *Input, b *buyer, m Measure, t time.Time) float64 {
	switch m {
	case Engagement:
		a, _ := weighted(in.Activity, t)
		return engagementOf(a)
	case ChurnRisk:
		c, _, _ := b.churn(t)
		return c
	case LifetimeValue:
		c, _, _ := b.churn(t)
		v, _ := b.ltv(c)
		return v
	case Recency:
		return float64(recencyScore(in.Workspace, b, t))
	}
	return 0
}

// class is where v lies against th: 0 below, 1 equal, 2 above; every
// comparison (>, >=, <, <=, =, !=) is a function of it.
func class(v, th float64) int {
	switch {
	case v < th:
		return 0
	case v == th:
		return 1
	}
	return 2
}

// firstChange returns the smallest x in [lo, hi] with key(x) != ref,
// given key is monotone over [lo, hi]; ok false when key(hi) == ref.
func firstChange(lo, hi int64, ref int, key func(int64) int) (int64, bool) {
	if hi < lo || key(hi) == ref {
		return 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if key(mid) != ref {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, true
}

// horizon returns the search range in Unix seconds for measure m: from
// the first whole second after Now to when the measure can no longer
// change (churn is exactly 1 in floating point from 40 usual gaps on;
// engagement is 0 once the newest active day is 90 days old; R is 1 past
// the last recency cut), capped at 500 years.
func horizon(in *Input, b *buyer, m Measure) (lo, hi int64, days bool) {
	lo = in.Now.Unix() + 1
	switch m {
	case Engagement:
		today := DayOf(in.Now)
		maxDay := int64(math.MinInt64)
		for _, d := range in.Activity {
			if d.N > 0 && d.Day > maxDay {
				maxDay = d.Day
			}
		}
		hiDay := today + maxAheadSeconds/86400
		if maxDay < hiDay-ActivityDays {
			hiDay = max(maxDay, today-ActivityDays) + ActivityDays
		}
		return today + 1, hiDay, true
	case Recency:
		cut := 0.0
		if w := in.Workspace; w != nil {
			cut = math.Max(0, w.Recency[3])
		}
		hi = b.last.Unix() + int64(math.Min(cut+1, maxAheadSeconds/86400)*86400) + 1
	default:
		hi = b.last.Unix() + int64(40*b.gapDays*86400) + 1
	}
	return lo, min(max(hi, lo), lo+maxAheadSeconds), false
}

// Crossing returns the earliest instant after in.Now at which comparing
// measure m with threshold — by any of >, >=, <, <=, = — can answer
// differently than at in.Now, with no new events (in.Workspace fixed);
// the zero time when it never does. Churn risk and lifetime value are
// continuous: the instant is the first millisecond of the change (never
// late, at most a millisecond early). Engagement
// changes only at midnight UTC, the R score when the days since the last
// order pass a recency cut. Use it as a segment's nextEvalAt: at that
// instant re-evaluate and call Crossing again. Cost: O(log) evaluations
// (engagement: O(len(Activity)) each).
func Crossing(in Input, m Measure, threshold float64) time.Time {
	if math.IsNaN(threshold) {
		return time.Time{}
	}
	b, buys := orders(&in)
	if m != Engagement && !buys {
		return time.Time{}
	}
	switch m {
	case Engagement, ChurnRisk, LifetimeValue, Recency:
	default:
		return time.Time{}
	}
	ref := class(measureAt(&in, &b, m, in.Now), threshold)
	lo, hi, days := horizon(&in, &b, m)
	key := func(x int64) int {
		if days {
			x *= 86400
		}
		return class(measureAt(&in, &b, m, time.Unix(x, 0)), threshold)
	}
	x, ok := firstChange(lo, hi, ref, key)
	if !ok {
		return time.Time{}
	}
	if days {
		return time.Unix(x*86400, 0).UTC() // engagement moves at midnight exactly
	}
	return refine(x, in.Now, ref, func(t time.Time) int { return class(measureAt(&in, &b, m, t), threshold) })
}

// refine narrows a change found at whole second x (the answer at x−1 s
// is still ref) to the millisecond: the first millisecond after now at
// which key differs from ref. A nextEvalAt must never be late, and a
// continuous score crosses its threshold anywhere within that second.
func refine(x int64, now time.Time, ref int, key func(time.Time) int) time.Time {
	lo, hi := max((x-1)*1000+1, now.UnixMilli()+1), x*1000
	for lo < hi {
		mid := lo + (hi-lo)/2
		if key(time.UnixMilli(mid)) != ref {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.UnixMilli(lo).UTC()
}

// NextRFMChange returns the earliest instant after in.Now at which the R
// score, and so perhaps the RFM label, changes with no new events (F and
// M change only with orders); the zero time when it never does.
func NextRFMChange(in Input) time.Time {
	b, buys := orders(&in)
	if !buys || in.Workspace == nil || in.Workspace.Buyers < MinSample {
		return time.Time{}
	}
	ref := recencyScore(in.Workspace, &b, in.Now)
	lo, hi, _ := horizon(&in, &b, Recency)
	key := func(t time.Time) int { return recencyScore(in.Workspace, &b, t) }
	x, ok := firstChange(lo, hi, ref, func(s int64) int { return key(time.Unix(s, 0)) })
	if !ok {
		return time.Time{}
	}
	return refine(x, in.Now, ref, key)
}
