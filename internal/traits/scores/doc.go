// Package scores is the pure core of the built-in scores every profile
// carries (Profile.scores): RFM, engagement, churn risk and predicted
// lifetime value, each with a plain-English explanation. It has no store
// and no GraphQL: the traits engine keeps the per-profile Input current
// from events and the workspace RFM boundaries on a schedule; this package
// only computes.
//
// Every score is read at an instant (Input.Now) from a handful of numbers
// the engine maintains in O(1) per event (see Input). Without new events,
// churn risk only rises and engagement, lifetime value and the RFM recency
// score only fall; Crossing and NextRFMChange say when a threshold is
// crossed by time alone, for a segment's nextEvalAt.
//
// # The usual gap between orders
//
// Churn risk and lifetime value both need "how often does this person
// buy". From the orders' count n, first and last time it is
//
//	usual gap = (last − first + P) / n      (days)
//
// that is, the average of the person's n−1 gaps between orders counted
// together with one "typical" gap P of the workspace (the median of its
// buyers' own average gaps, 30 days while the workspace has none). With
// one order the usual gap is P; with many orders it is the person's own
// rhythm; with two or three, one unusual gap does not decide alone. It is
// kept between 1 day and 3,650 days. The average gap of n orders is
// exactly (last − first)/(n − 1) whatever the order they arrive in, so the
// engine keeps only count, first and last.
//
// # Churn risk (0–1)
//
//	r = days since the last order / usual gap
//	churn = (σ(2·(r − 2)) − σ(−4)) / (1 − σ(−4)),   σ(x) = 1/(1+e^−x)
//
// A logistic curve of "how many usual gaps have passed", shifted so that
// it is exactly 0 on the day of an order: 0.10 at one usual gap (the next
// order is due), 0.49 at two, 0.70 at about 2.4, 0.88 at three and 0.98 at
// four. A weekly buyer is at high risk after about three weeks of silence,
// a quarterly buyer after about nine months: risk is relative to the
// person's own cadence. A profile with no orders has churn risk 0 (it
// measures lapsed buyers; use engagement for the rest).
//
// # Predicted lifetime value
//
//	LTV = revenue so far + AOV × (365 / usual gap) × (1 − churn)
//
// What the person has spent plus what they are expected to spend in the
// next 12 months: average order value (revenue / orders) times the orders
// their usual gap fits into a year, scaled down by the chance they have
// lapsed. No orders gives 0. Money is in the workspace's currency, as
// tracked.
//
// # Engagement (0–100)
//
//	A = Σ over the last 90 UTC days of events that day × e^(−age/14)
//	engagement = 100 × (1 − e^(−A/12))
//
// Every event counts, recent days most: an event today counts 1, a week
// ago 0.61, two weeks ago 0.37, a month ago 0.12; older than 90 days, 0
// (age is in whole UTC days, so the score changes at midnight UTC). The
// curve saturates so that a burst cannot exceed 100: one event every day
// scores 70 (k = 12 was chosen for that: a daily user is "typical
// active"), one a week 19, ten today 56, one today 8, nothing in 90
// days 0.
//
// # RFM (1–5 each) and the RFM segment
//
// Raw values: recency = days since the last order, frequency = number of
// orders, monetary = revenue. Each is scored 1–5 by the workspace's
// quintile boundaries (the values at 20, 40, 60 and 80% of a sample of
// its buyers, nearest rank): a value above k boundaries is in quintile
// k+1; equal values always get the same score. Frequency and monetary
// score the quintile; recency scores 6 − quintile (fewer days is better).
// Profiles without orders, or a workspace with fewer than 5 buyers in the
// sample, have scores 0 and no label.
//
// The label reads R and FM = ⌈(F + M) / 2⌉:
//
//	        FM=1            FM=2                FM=3                FM=4             FM=5
//	R=5     New             Potential loyalist  Potential loyalist  Champions        Champions
//	R=4     Promising       Potential loyalist  Loyal               Champions        Champions
//	R=3     About to sleep  Need attention      Need attention      Loyal            Loyal
//	R=2     Hibernating     About to sleep      At risk             At risk          Can't lose them
//	R=1     Lost            Hibernating         At risk             Can't lose them  Can't lose them
//
// The boundaries are recomputed on a schedule from a bounded sample
// (Reservoir: a uniform reservoir sample of at most SampleSize = 10,000
// buyers, one pass over the profiles; Summarize sorts it, O(s log s)), so
// the cost does not grow with the workspace; a profile's own R, F and M
// values are always current, only the cut points can be as old as the
// schedule. Summarize also yields the typical gap P used above.
package scores
