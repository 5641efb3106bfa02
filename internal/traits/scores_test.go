package traits_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/agg/aggtest"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

const day = 24 * time.Hour

// logSeed prints the seed of a failed randomized test.
func logSeed(t *testing.T, seed uint64) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random events seed: %d", seed)
		}
	})
}

// scoreEvents makes a deterministic batch of events for visitor v with
// occurredAt spread over the 200 days before now (out of order, sub-ms
// parts, a few up to 20 hours ahead): orders under the default settings
// ("order_completed", revenue of every numeric type, refunds, strings,
// missing), orders under the other settings ("purchase" with a nested
// amount.value, sometimes not an object), and other events.
func scoreEvents(r *rand.Rand, v string, n int, now time.Time, msg *int) []timeline.TrackInput {
	var out []timeline.TrackInput
	for range n {
		*msg++
		at := now.Add(-time.Duration(r.Int64N(int64(200 * day))))
		switch r.IntN(10) {
		case 0:
			at = now.Add(time.Duration(r.Int64N(int64(20 * time.Hour))))
		case 1, 2:
			at = now.Add(-time.Duration(r.Int64N(int64(3 * day))))
		}
		in := timeline.TrackInput{MessageID: fmt.Sprintf("s%d", *msg), OccurredAt: &at,
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}}
		money := func() any {
			switch r.IntN(10) {
			case 0:
				return int64(r.IntN(500))
			case 1:
				return r.IntN(500)
			case 2:
				return int32(r.IntN(500))
			case 3:
				return -float64(r.IntN(5000)) / 100 // a refund
			case 4:
				return "12.50" // not a number: an order worth 0
			}
			return float64(r.IntN(50000)) / 100
		}
		switch k := r.IntN(10); {
		case k < 4:
			in.Name = "order_completed"
			props := map[string]any{"currency": "USD"}
			if r.IntN(8) > 0 {
				props["revenue"] = money()
			}
			if r.IntN(3) == 0 {
				props["amount"] = map[string]any{"value": money()}
			}
			in.Properties = props
		case k < 6:
			in.Name = "purchase"
			switch r.IntN(6) {
			case 0:
				in.Properties = map[string]any{"amount": money()} // amount.value absent
			case 1:
				in.Properties = map[string]any{"revenue": money()}
			default:
				in.Properties = map[string]any{"amount": map[string]any{"value": money(), "currency": "EUR"}}
			}
		default:
			in.Name = []string{"page_viewed", "product_viewed", "added_to_cart"}[r.IntN(3)]
			in.Properties = map[string]any{"path": "/p"}
		}
		out = append(out, in)
	}
	return out
}

// refTally is the straightforward recount of a profile's stored events.
type refTally struct {
	orders      int64
	revenue     float64
	first, last time.Time
	days        map[int64]int64
}

// refNumber is the number at a dot path of plain properties (0 when
// absent or not a number).
func refNumber(props map[string]any, path string) float64 {
	var cur any = props
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = m[k]
	}
	switch x := cur.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

func recount(evs []aggtest.Event, orderEvent, revenuePath string) refTally {
	r := refTally{days: map[int64]int64{}}
	for _, ev := range evs {
		r.days[scores.DayOf(ev.At)]++
		if ev.Name != orderEvent {
			continue
		}
		r.orders++
		r.revenue += refNumber(ev.Props, revenuePath)
		if r.first.IsZero() || ev.At.Before(r.first) {
			r.first = ev.At
		}
		if r.last.IsZero() || ev.At.After(r.last) {
			r.last = ev.At
		}
	}
	return r
}

// activity is every day with events, sorted (the formula ignores those
// older than its window).
func (r refTally) activity() []scores.Day {
	var out []scores.Day
	for d, n := range r.days {
		out = append(out, scores.Day{Day: d, N: n})
	}
	slices.SortFunc(out, func(a, b scores.Day) int { return int(a.Day - b.Day) })
	return out
}

// window is the activity a tally kept at now keeps: the days the
// engagement window can still see.
func (r refTally) window(now time.Time) []scores.Day {
	var out []scores.Day
	for _, d := range r.activity() {
		if d.Day > scores.DayOf(now)-scores.ActivityDays {
			out = append(out, d)
		}
	}
	return out
}

func (r refTally) input(now time.Time, p *profile.Profile, w *scores.Workspace) scores.Input {
	return scores.Input{Now: now, Orders: r.orders, Revenue: r.revenue, FirstOrder: r.first, LastOrder: r.last,
		Activity: r.activity(), FirstSeen: p.FirstSeenAt, LastSeen: p.LastSeenAt, Workspace: w}
}

func sameWorkspace(a, b *scores.Workspace) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.At, y.At = time.Time{}, time.Time{}
	return x == y && a.At.Equal(b.At)
}

func close9(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// checkTallies compares the stored tally of every profile of ids with the
// recount of its stored events under the order settings (counted with the
// clock at counted), and Engine.Scores with scores.Compute of the
// reference at each instant of at (the workspace summary as the engine
// has it).
func (e *env) checkTallies(t *testing.T, what string, ids []string, orderEvent, revenuePath string, counted time.Time, at ...time.Time) {
	t.Helper()
	e.tr.Wait() // no summary refresh in flight
	w, err := e.tr.Summary(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		p, err := profile.Get(e.Ctx, e.Tenant, id)
		if err != nil {
			t.Fatalf("%s: profile %s: %v", what, id, err)
		}
		evs := e.storedEvents(t, id)
		ref := recount(evs, orderEvent, revenuePath)
		tl := p.Tally
		if tl == nil {
			tl = &scores.Tally{}
		}
		if tl.Orders != ref.orders || math.Abs(tl.Revenue-ref.revenue) > 1e-6 ||
			!tl.FirstOrder.Equal(ref.first) || !tl.LastOrder.Equal(ref.last) {
			t.Fatalf("%s: profile %s (%d events): tally orders %d revenue %v first %s last %s, want %d %v %s %s",
				what, id, len(evs), tl.Orders, tl.Revenue, tl.FirstOrder, tl.LastOrder, ref.orders, ref.revenue, ref.first, ref.last)
		}
		if want := ref.window(counted); !slices.Equal(tl.Activity, want) {
			t.Fatalf("%s: profile %s: activity\n got %v\nwant %v", what, id, tl.Activity, want)
		}
		for _, now := range at {
			want := scores.Compute(ref.input(now, p, w))
			got, gotIn, err := e.tr.Scores(e.Ctx, e.Tenant, p, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.RFM != want.RFM || !close9(got.Engagement, want.Engagement) || !close9(got.ChurnRisk, want.ChurnRisk) ||
				!close9(got.LifetimeValue, want.LifetimeValue) || len(got.Explain) != 4 {
				t.Fatalf("%s: profile %s at %s: scores %+v\nwant %+v", what, id, now, got, want)
			}
			if gotIn.Orders != ref.orders || !gotIn.Now.Equal(now) || !sameWorkspace(gotIn.Workspace, w) {
				t.Fatalf("%s: profile %s: Scores input %+v", what, id, gotIn)
			}
			// The value rules and sorting read is the same.
			for k, x := range map[string]float64{scores.KeyEngagement: want.Engagement, scores.KeyChurnRisk: want.ChurnRisk,
				scores.KeyLifetimeValue: want.LifetimeValue} {
				if v, ok := scoreValue(k, p, w, now).(float64); !ok || !close9(v, x) {
					t.Fatalf("%s: profile %s at %s: ScoreValue(%s) = %#v, want %v", what, id, now, k, scoreValue(k, p, w, now), x)
				}
			}
		}
	}
}

func (e *env) mergeRecord(t *testing.T, target string) identity.Record {
	t.Helper()
	docs, err := e.Tenant.C(identity.Merges).Find(e.Ctx, store.Query{Index: identity.MergesByTarget, Eq: []any{target}})
	if err != nil || len(docs) == 0 {
		t.Fatalf("merge record: %v", err)
	}
	var rec identity.Record
	if err := docs[0].Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestTallyIngestMergeUnmergeErase: the tally maintained on ingest (random
// batches, out of order) equals a recount of the stored events, and the
// scores equal scores.Compute of that recount; again after a merge, an
// unmerge and, for the erased person, nothing is left.
func TestTallyIngestMergeUnmergeErase(t *testing.T) {
	const seed = 20260420
	logSeed(t, seed)
	e := newEnv(t)
	r := rand.New(rand.NewPCG(seed, 1))
	msg := 0
	var ids []string
	for _, v := range []string{"a", "b", "c", "d"} {
		var pid string
		for range 3 {
			pid = e.track(t, scoreEvents(r, v, 1+r.IntN(30), start, &msg))
		}
		ids = append(ids, pid)
	}
	later := []time.Time{start, start.Add(3*day + time.Hour), start.Add(100 * day)}
	ord, rev := traits.DefaultOrderEvent, traits.DefaultRevenueProperty
	e.checkTallies(t, "ingest", ids, ord, rev, start, later...)
	if _, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil {
		t.Fatal(err)
	}
	e.checkTallies(t, "ingest, with a summary", ids, ord, rev, start, later...)

	// Merge b into a, then more events on the survivor.
	surv, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, ids[0], ids[1], "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if surv.ID != ids[0] {
		t.Fatalf("survivor %s, want %s", surv.ID, ids[0])
	}
	e.checkTallies(t, "after merge", ids[:1], ord, rev, start, later...)
	e.track(t, scoreEvents(r, "a", 15, start, &msg))
	e.track(t, scoreEvents(r, "b", 5, start, &msg)) // b's identifier is a's now
	e.checkTallies(t, "after merge and ingest", ids[:1], ord, rev, start, later...)

	rec := e.mergeRecord(t, ids[0])
	if _, err := e.Services.Identity.Unmerge(e.Ctx, e.Tenant, rec.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	e.checkTallies(t, "after unmerge", ids, ord, rev, start, later...)
	e.track(t, scoreEvents(r, "b", 8, start, &msg))
	e.checkTallies(t, "after unmerge and ingest", ids, ord, rev, start, later...)

	if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, ids[2], "test", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Get(e.Ctx, e.Tenant, ids[2]); err == nil {
		t.Fatal("erased profile still there")
	}
	if n := len(e.storedEvents(t, ids[2])); n != 0 {
		t.Fatalf("erased person's events left: %d", n)
	}
	e.checkTallies(t, "after erase (others)", []string{ids[0], ids[1], ids[3]}, ord, rev, start, later...)
	// The erased person is no longer sampled.
	if _, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil {
		t.Fatal(err)
	}
	info, err := e.tr.SummaryInfo(e.Ctx, e.Tenant)
	if err != nil || info == nil {
		t.Fatalf("summary info: %v %v", info, err)
	}
	buyers := 0
	for _, id := range []string{ids[0], ids[1], ids[3]} {
		if p := e.Profile(t, id); p.Tally != nil && p.Tally.Orders > 0 {
			buyers++
		}
	}
	if info.Seen != int64(buyers) {
		t.Fatalf("summary sampled %d buyers, want %d", info.Seen, buyers)
	}
}

// allIDs lists the live profiles.
func allIDs(t *testing.T, e *env) []string {
	t.Helper()
	var ids []string
	if err := profileIDs(e, func(id string) { ids = append(ids, id) }); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestScoreSettingsRecount: new order settings (another event, a nested
// revenue path) recount every profile in the background, events tracked
// meanwhile included; ingest and merges then count under them; bad
// settings are refused and change nothing.
func TestScoreSettingsRecount(t *testing.T) {
	const seed = 7
	logSeed(t, seed)
	e := newEnv(t)
	st, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil || st.OrderEvent != traits.DefaultOrderEvent || st.RevenueProperty != traits.DefaultRevenueProperty || st.Backfill.Status != traits.Done {
		t.Fatalf("default settings: %+v %v", st, err)
	}
	r := rand.New(rand.NewPCG(seed, 2))
	msg := 0
	visitors := []string{"a", "b", "c", "d", "e", "f"}
	for _, v := range visitors {
		for range 2 {
			e.track(t, scoreEvents(r, v, 1+r.IntN(30), start, &msg))
		}
	}
	ids := allIDs(t, e)
	if len(ids) != len(visitors) {
		t.Fatalf("%d profiles", len(ids))
	}
	e.checkTallies(t, "default settings", ids, traits.DefaultOrderEvent, traits.DefaultRevenueProperty, start, start)

	// Change the settings while events keep coming.
	batches := make([][]timeline.TrackInput, 20)
	for i := range batches {
		batches[i] = scoreEvents(r, visitors[i%len(visitors)], 1+r.IntN(4), start, &msg)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, b := range batches {
			if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", b); err != nil {
				t.Error(err)
				return
			}
		}
	})
	st, err = e.tr.SetScoreSettings(e.Ctx, e.Tenant, traits.ScoreSettings{OrderEvent: " purchase ", RevenueProperty: "amount.value"}, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if st.OrderEvent != "purchase" || st.RevenueProperty != "amount.value" || st.Backfill.Status != traits.Pending || !st.UpdatedAt.Equal(start) {
		t.Fatalf("set settings: %+v", st)
	}
	wg.Wait()
	e.tr.Wait()
	st, err = e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if b := st.Backfill; b.Status != traits.Done || b.Processed != int64(len(ids)) || b.Total != b.Processed || b.StartedAt.IsZero() || b.FinishedAt.IsZero() {
		t.Fatalf("recount: %+v", st)
	}
	e.checkTallies(t, "new settings", ids, "purchase", "amount.value", start, start, start.Add(40*day))

	// Ingest and merges count under the new settings.
	for _, v := range visitors[:3] {
		e.track(t, scoreEvents(r, v, 10, start, &msg))
	}
	e.checkTallies(t, "new settings, ingest", ids, "purchase", "amount.value", start, start)
	surv, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, ids[0], ids[1], "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	e.checkTallies(t, "new settings, merge", []string{surv.ID}, "purchase", "amount.value", start, start)

	// Bad settings: refused, nothing changed.
	before, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in    traits.ScoreSettings
		field string
	}{
		{traits.ScoreSettings{OrderEvent: "", RevenueProperty: "revenue"}, "input.orderEvent"},
		{traits.ScoreSettings{OrderEvent: "  ", RevenueProperty: "revenue"}, "input.orderEvent"},
		{traits.ScoreSettings{OrderEvent: strings.Repeat("e", rule.MaxNameLen+1), RevenueProperty: "revenue"}, "input.orderEvent"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: ""}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: " "}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: "$bad"}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: "amount.$value"}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: "a..b"}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: ".a"}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: "a."}, "input.revenueProperty"},
		{traits.ScoreSettings{OrderEvent: "order", RevenueProperty: strings.Repeat("p", rule.MaxKeyLen+1)}, "input.revenueProperty"},
	}
	for _, c := range cases {
		_, err := e.tr.SetScoreSettings(e.Ctx, e.Tenant, c.in, "tester")
		ae, ok := apperr.As(err)
		if !ok || ae.Code != apperr.BadUserInput || ae.Field != c.field {
			t.Errorf("%.40q / %.40q: got %v, want BAD_USER_INPUT at %s", c.in.OrderEvent, c.in.RevenueProperty, err, c.field)
		}
	}
	e.tr.Wait()
	after, err := e.tr.ScoreSettings(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if after.ScoreSettings != before.ScoreSettings || !after.UpdatedAt.Equal(before.UpdatedAt) ||
		after.Backfill.Status != before.Backfill.Status || !after.Backfill.FinishedAt.Equal(before.Backfill.FinishedAt) {
		t.Fatalf("bad settings changed the stored ones: %+v, was %+v", after, before)
	}
	// Limits are inclusive.
	okIn := traits.ScoreSettings{OrderEvent: strings.Repeat("e", rule.MaxNameLen), RevenueProperty: strings.Repeat("p", rule.MaxKeyLen)}
	if _, err := e.tr.SetScoreSettings(e.Ctx, e.Tenant, okIn, "tester"); err != nil {
		t.Fatalf("settings at the limits: %v", err)
	}
}

// orders tracks n orders of visitor v worth value each, the last at last
// and the others gap apart before it.
func (e *env) orders(t *testing.T, v string, n int, value float64, last time.Time, gap time.Duration, msg *int) string {
	t.Helper()
	var ins []timeline.TrackInput
	for i := range n {
		*msg++
		at := last.Add(-time.Duration(n-1-i) * gap)
		ins = append(ins, timeline.TrackInput{MessageID: fmt.Sprintf("o%d", *msg), Name: traits.DefaultOrderEvent, OccurredAt: &at,
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}, Properties: map[string]any{"revenue": value}})
	}
	return e.track(t, ins)
}

// nearestRank is the quintile boundaries of xs as the package doc
// describes them: the ⌈i·n/5⌉-th smallest value.
func nearestRank(xs []float64) scores.Cuts {
	s := slices.Clone(xs)
	slices.Sort(s)
	var c scores.Cuts
	for i := range c {
		k := int(math.Ceil(float64(i+1) * float64(len(s)) / 5))
		c[i] = s[k-1]
	}
	return c
}

func quintile(c scores.Cuts, v float64) int {
	q := 1
	for _, x := range c {
		if v > x {
			q++
		}
	}
	return q
}

// TestScoreSummaryRFM: the workspace summary's boundaries are the
// quintiles of its buyers; buyers get R, F, M of 1..5 and a label,
// non-buyers none, the best buyer is a Champion; with fewer than 5 buyers
// no one has RFM.
func TestScoreSummaryRFM(t *testing.T) {
	e := newEnv(t)
	msg := 0
	type buyer struct {
		v      string
		n      int
		value  float64
		ago    time.Duration
		gapDay int
	}
	first := []buyer{{"b1", 1, 10, 80 * day, 1}, {"b2", 2, 15, 60 * day, 20}, {"b3", 3, 30, 45 * day, 7}, {"b4", 4, 25, 30 * day, 3}}
	more := []buyer{{"b5", 5, 40, 20 * day, 12}, {"b6", 6, 35, 12 * day, 5}, {"b7", 2, 200, 8 * day, 40},
		{"top", 12, 300, time.Hour, 9}}
	pids := map[string]string{}
	add := func(bs []buyer) {
		for _, b := range bs {
			pids[b.v] = e.orders(t, b.v, b.n, b.value, start.Add(-b.ago), time.Duration(b.gapDay)*day, &msg)
		}
	}
	var browsers []string
	for _, v := range []string{"n1", "n2"} {
		at := start.Add(-2 * day)
		browsers = append(browsers, e.track(t, []timeline.TrackInput{{MessageID: "p-" + v, Name: "page_viewed", OccurredAt: &at,
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}}}))
	}
	add(first)
	e.tr.Wait()
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	w, err := e.tr.Summary(e.Ctx, e.Tenant)
	if err != nil || w == nil || w.Buyers != len(first) {
		t.Fatalf("summary of %d buyers: %+v %v", len(first), w, err)
	}
	for _, id := range allIDs(t, e) {
		s, _, err := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, id), start)
		if err != nil || s.RFM != (scores.RFM{}) {
			t.Fatalf("RFM with %d buyers: %+v %v", w.Buyers, s.RFM, err)
		}
		if v := scoreValue(scores.KeyLabel, e.Profile(t, id), w, start); v != nil {
			t.Fatalf("label with %d buyers: %#v", w.Buyers, v)
		}
	}

	add(more)
	e.tr.Wait()
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	w, err = e.tr.Summary(e.Ctx, e.Tenant)
	all := append(slices.Clone(first), more...)
	if err != nil || w == nil || w.Buyers != len(all) || !w.At.Equal(start) {
		t.Fatalf("summary of %d buyers: %+v %v", len(all), w, err)
	}
	// The boundaries are the buyers' quintiles; the typical gap the lower
	// median of the own gaps of those with two orders or more.
	var rs, fs, ms []float64
	var gaps []time.Duration
	for _, b := range all {
		rs = append(rs, b.ago.Hours()/24)
		fs = append(fs, float64(b.n))
		ms = append(ms, float64(b.n)*b.value)
		if b.n >= 2 {
			gaps = append(gaps, time.Duration(b.gapDay)*day)
		}
	}
	slices.Sort(gaps)
	if nearestRank(rs) != w.Recency || nearestRank(fs) != w.Frequency || nearestRank(ms) != w.Monetary {
		t.Fatalf("boundaries R %v F %v M %v, want %v %v %v", w.Recency, w.Frequency, w.Monetary, nearestRank(rs), nearestRank(fs), nearestRank(ms))
	}
	if want := gaps[(len(gaps)-1)/2]; w.TypicalGap != want {
		t.Fatalf("typical gap %s, want %s", w.TypicalGap, want)
	}
	for i, b := range all {
		p := e.Profile(t, pids[b.v])
		s, _, err := e.tr.Scores(e.Ctx, e.Tenant, p, start)
		if err != nil {
			t.Fatal(err)
		}
		x := s.RFM
		want := scores.RFM{Recency: 6 - quintile(w.Recency, rs[i]), Frequency: quintile(w.Frequency, fs[i]), Monetary: quintile(w.Monetary, ms[i])}
		want.Label = scores.Label(want.Recency, want.Frequency, want.Monetary)
		if x != want || x.Label == "" || x.Recency < 1 || x.Frequency > 5 {
			t.Fatalf("%s: RFM %+v, want %+v", b.v, x, want)
		}
		if v := scoreValue(scores.KeyLabel, p, w, start); v != x.Label {
			t.Fatalf("%s: label value %#v, want %q", b.v, v, x.Label)
		}
		if v := scoreValue(scores.KeyRecency, p, w, start); v != int64(x.Recency) {
			t.Fatalf("%s: recency value %#v, want %d", b.v, v, x.Recency)
		}
	}
	top, _, _ := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, pids["top"]), start)
	if top.RFM != (scores.RFM{Recency: 5, Frequency: 5, Monetary: 5, Label: scores.LabelChampions}) {
		t.Fatalf("best buyer: %+v", top.RFM)
	}
	for _, id := range browsers {
		s, _, _ := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, id), start)
		if s.RFM != (scores.RFM{}) || s.ChurnRisk != 0 || s.LifetimeValue != 0 || s.Engagement <= 0 {
			t.Fatalf("non-buyer: %+v", s)
		}
	}
}

// noAutoRefresh keeps the workspace summary as the test makes it: no
// refresh on use while the manual clock jumps ahead.
func noAutoRefresh(t *testing.T) {
	every, boot := traits.SummaryEvery, traits.SummaryBootstrapEvery
	traits.SummaryEvery, traits.SummaryBootstrapEvery = 100*365*day, 100*365*day
	t.Cleanup(func() { traits.SummaryEvery, traits.SummaryBootstrapEvery = every, boot })
}

// TestChurnSegment is the issue's scenario: "churn risk above 0.7 and
// lifetime value above 500". A buyer of 8 orders 10 days apart at 120 is
// not in it after the last order; the churn crossing, about 30.5 days
// after the last order (usual gap 12.5 days with the default typical gap
// of 30), is their nextEvalAt, so the sweeper makes them enter; a new
// order makes them exit at once. x's orders arrive one by one as the
// clock moves, y's all at once (tracked late).
func TestChurnSegment(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	t0 := start.Add(-70 * day)
	e.Clock.Set(t0)
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "lapsing big spenders", Rule: &rule.Rule{And: []rule.Rule{
		{Computed: &rule.ComputedCond{Key: scores.KeyChurnRisk, Op: rule.GT, Value: 0.7}},
		{Computed: &rule.ComputedCond{Key: scores.KeyLifetimeValue, Op: rule.GT, Value: 500}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	e.tr.Wait()
	if _, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil { // no buyers: typical gap 30 days
		t.Fatal(err)
	}
	w, err := e.tr.Summary(e.Ctx, e.Tenant)
	if err != nil || w == nil || w.TypicalGap != 0 {
		t.Fatalf("summary: %+v %v", w, err)
	}
	msg := 0
	orderAt := func(v string, at ...time.Time) string {
		var ins []timeline.TrackInput
		for _, at := range at {
			msg++
			ins = append(ins, timeline.TrackInput{MessageID: fmt.Sprint("c", msg), Name: "order_completed", OccurredAt: &at,
				Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}, Properties: map[string]any{"revenue": 120}})
		}
		return e.track(t, ins)
	}
	var x string
	var times []time.Time
	for i := range 8 {
		at := t0.Add(time.Duration(i) * 10 * day)
		times = append(times, at)
		e.Clock.Set(at)
		x = orderAt("x", at)
		if isMember(t, e, seg.ID, x) {
			t.Fatalf("member right after order %d", i+1)
		}
	}
	y := orderAt("y", times...)
	if isMember(t, e, seg.ID, y) {
		t.Fatal("y: member right after the orders")
	}
	lastOrder := start
	px, py := e.Profile(t, x), e.Profile(t, y)
	for _, p := range []*profile.Profile{px, py} {
		if p.Tally == nil || p.Tally.Orders != 8 || p.Tally.Revenue != 960 || !p.Tally.LastOrder.Equal(lastOrder) {
			t.Fatalf("tally: %+v", p.Tally)
		}
	}
	cross := scores.Crossing(px.Tally.Input(start, px.FirstSeenAt, px.LastSeenAt, w), scores.ChurnRisk, 0.7)
	if after := cross.Sub(lastOrder).Hours() / 24; after < 30.4 || after > 30.5 {
		t.Fatalf("churn crosses 0.7 %.3f days after the last order, want about 30.46", after)
	}
	if !py.NextEvalAt.Equal(cross) {
		t.Fatalf("y: nextEvalAt %s, want the churn crossing %s", py.NextEvalAt, cross)
	}
	// x was last evaluated for its last order only: its nextEvalAt may be
	// an earlier order's crossing (kept, "safe if early"), never later
	// than the crossing nor NoEval. A sweep then sets it exactly.
	if px.NextEvalAt.Equal(profile.NoEval) || !px.NextEvalAt.After(start) || px.NextEvalAt.After(cross) {
		t.Fatalf("x: nextEvalAt %s, want in (%s, %s]", px.NextEvalAt, start, cross)
	}
	if early := px.NextEvalAt; early.Before(cross) {
		t.Logf("x: nextEvalAt %s is %.2f days after the last order: the crossing of an earlier order, not %s", early, early.Sub(lastOrder).Hours()/24, cross)
		e.Clock.Set(early)
		if n, err := e.Services.Segments.Sweep(e.Ctx, e.Tenant, early); err != nil || n != 1 {
			t.Fatalf("sweep at x's early nextEvalAt: %d %v", n, err)
		}
		if isMember(t, e, seg.ID, x) {
			t.Fatal("x: member at its early nextEvalAt")
		}
		if px = e.Profile(t, x); !px.NextEvalAt.Equal(cross) {
			t.Fatalf("x: nextEvalAt after a sweep %s, want the churn crossing %s", px.NextEvalAt, cross)
		}
	}

	// Before the crossing nothing is due.
	e.Clock.Set(cross.Add(-time.Minute))
	if n, err := e.Services.Segments.Sweep(e.Ctx, e.Tenant, cross.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	later := lastOrder.Add(40 * day)
	e.Clock.Set(later)
	for _, pid := range []string{x, y} {
		if isMember(t, e, seg.ID, pid) {
			t.Fatal("member before the sweep")
		}
	}
	s, _, err := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, x), later)
	if err != nil || s.ChurnRisk <= 0.7 || s.LifetimeValue <= 500 {
		t.Fatalf("scores 40 days after the last order: %+v %v", s, err)
	}
	if n, err := e.Services.Segments.Sweep(e.Ctx, e.Tenant, later); err != nil || n != 2 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	for _, pid := range []string{x, y} {
		if !isMember(t, e, seg.ID, pid) {
			t.Fatalf("%s: not a member 40 days after the last order (churn %.3f, LTV %.2f)", pid, s.ChurnRisk, s.LifetimeValue)
		}
		if p := e.Profile(t, pid); !p.NextEvalAt.After(later) {
			t.Fatalf("nextEvalAt after the sweep %s, not after %s", p.NextEvalAt, later)
		}
	}

	// A new order: churn 0, out at once.
	orderAt("x", later)
	if isMember(t, e, seg.ID, x) {
		t.Fatal("still a member right after a new order")
	}
	if !isMember(t, e, seg.ID, y) {
		t.Fatal("y left with x's order")
	}
	px = e.Profile(t, x)
	if want := scores.Crossing(px.Tally.Input(later, px.FirstSeenAt, px.LastSeenAt, w), scores.ChurnRisk, 0.7); px.NextEvalAt.After(want) || !px.NextEvalAt.After(later) {
		t.Fatalf("nextEvalAt after the new order %s, want in (%s, %s]", px.NextEvalAt, later, want)
	}
}

// TestScoreSelectiveReevaluation: an order re-evaluates the segments on
// order scores and engagement, a page view only those on engagement, and
// neither the segment on a plain trait.
func TestScoreSelectiveReevaluation(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	for _, r := range []rule.Rule{
		{Computed: &rule.ComputedCond{Key: scores.KeyChurnRisk, Op: rule.GT, Value: 0.7}},
		{Computed: &rule.ComputedCond{Key: scores.KeyEngagement, Op: rule.GTE, Value: 50}},
		{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
	} {
		if _, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: fmt.Sprint(r), Rule: &r}); err != nil {
			t.Fatal(err)
		}
	}
	e.tr.Wait()
	if _, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil {
		t.Fatal(err)
	}
	at := start
	in := func(id, name string) []timeline.TrackInput {
		return []timeline.TrackInput{{MessageID: id, Name: name, OccurredAt: &at, Properties: map[string]any{"revenue": 10},
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "v"}}}}
	}
	e.track(t, in("1", "order_completed")) // new profile: evaluated in full
	ev := func(id, name string, want int64) {
		t.Helper()
		before := e.Services.Segments.Evaluations()
		e.track(t, in(id, name))
		if n := e.Services.Segments.Evaluations() - before; n != want {
			t.Fatalf("%s evaluated %d segments, want %d", name, n, want)
		}
	}
	ev("2", "page_viewed", 1)     // engagement
	ev("3", "order_completed", 2) // churn risk and engagement
	ev("4", "order_completed", 2)
}

// leasedSummary is the stored workspace summary (traits' settings
// document "scores-summary") as another instance leaves it while it
// computes the first one: leased, never computed (no At).
type leasedSummary struct {
	ID         string    `bson:"_id"`
	Key        string    `bson:"key"`
	Owner      string    `bson:"owner"`
	LeaseUntil time.Time `bson:"leaseUntil"`
	Version    int64     `bson:"version"`
}

// TestScoreSegmentBeforeFirstSummary: until the workspace has its first
// summary (another instance is computing it), the scores are still
// defined (RFM unknown, typical gap 30 days: Engine.Scores answers), and
// segments on them must agree with what the profile shows.
func TestScoreSegmentBeforeFirstSummary(t *testing.T) {
	noAutoRefresh(t)
	e := newEnv(t)
	held := leasedSummary{ID: "scores-summary", Key: "scores-summary", Owner: "another-instance", LeaseUntil: time.Now().Add(time.Hour).Truncate(time.Millisecond), Version: 1}
	if err := settings.Insert(e.Ctx, e.Tenant, held); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); ok || err != nil {
		t.Fatalf("refresh under another instance's lease: %v %v", ok, err)
	}
	segs := map[string]rule.Rule{
		"churn":   {Computed: &rule.ComputedCond{Key: scores.KeyChurnRisk, Op: rule.GT, Value: 0.7}},
		"orders":  {Computed: &rule.ComputedCond{Key: scores.KeyOrders, Op: rule.GTE, Value: 3}},
		"engaged": {Computed: &rule.ComputedCond{Key: scores.KeyEngagement, Op: rule.GT, Value: 10}},
	}
	ids := map[string]string{}
	for name, r := range segs {
		s, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: name, Rule: &r})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = s.ID
	}
	msg := 0
	pid := e.orders(t, "x", 4, 50, start.Add(-60*day), 7*day, &msg)
	for i := range 5 {
		at := start.Add(-time.Duration(i) * time.Hour)
		e.track(t, []timeline.TrackInput{{MessageID: fmt.Sprint("pv", i), Name: "page_viewed", OccurredAt: &at,
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "x"}}}})
	}
	e.tr.Wait()
	if w, err := e.tr.Summary(e.Ctx, e.Tenant); err != nil || w != nil {
		t.Fatalf("summary: %+v %v", w, err)
	}
	s, _, err := e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, pid), start)
	if err != nil || s.ChurnRisk <= 0.7 || s.Engagement <= 10 {
		t.Fatalf("scores: %+v %v", s, err)
	}
	for name, id := range ids {
		if !isMember(t, e, id, pid) {
			t.Errorf("segment %s: not a member before the first workspace summary, though the profile's scores match it (churn %.2f, orders 4, engagement %.1f)",
				name, s.ChurnRisk, s.Engagement)
		}
	}

	// The first summary arrives (the other instance gave up; this one
	// computes it): every score segment is right again, without another
	// event of the profile.
	if err := settings.Delete(e.Ctx, e.Tenant, held.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); !ok || err != nil {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	e.tr.Wait()
	s, _, _ = e.tr.Scores(e.Ctx, e.Tenant, e.Profile(t, pid), start)
	for name, id := range ids {
		if !isMember(t, e, id, pid) {
			t.Errorf("segment %s: not a member after the first workspace summary (churn %.2f, orders 4, engagement %.1f)", name, s.ChurnRisk, s.Engagement)
		}
	}
}

// TestTallyJSONNumberRevenue: properties may hold json.Number (userjson
// accepts it; events store it as a number): the order's value counted on
// ingest must be the one a recount from the stored event gives.
func TestTallyJSONNumberRevenue(t *testing.T) {
	e := newEnv(t)
	at := start
	pid := e.track(t, []timeline.TrackInput{{MessageID: "j1", Name: traits.DefaultOrderEvent, OccurredAt: &at,
		Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "j"}}, Properties: map[string]any{"revenue": json.Number("12.5")}}})
	ingested := e.Profile(t, pid).Tally
	if err := e.tr.Recompute(e.Ctx, e.Tenant, []string{pid}); err != nil {
		t.Fatal(err)
	}
	recounted := e.Profile(t, pid).Tally
	if ingested == nil || recounted == nil || ingested.Revenue != recounted.Revenue || recounted.Revenue != 12.5 {
		t.Fatalf("revenue of a json.Number 12.5: %v counted on ingest, %v recounted from the stored event, want 12.5 both",
			ingested.Revenue, recounted.Revenue)
	}
}

// TestScorePreviewMatchesScores: a segment preview over score rules (the
// scan decodes only the tally) counts exactly the profiles whose scores,
// read one by one, match.
func TestScorePreviewMatchesScores(t *testing.T) {
	e := newEnv(t)
	noAutoRefresh(t)
	msg := 0
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		n := rng.IntN(6)
		if n == 0 {
			at := start.Add(-time.Duration(rng.IntN(60)) * day)
			e.track(t, []timeline.TrackInput{{MessageID: fmt.Sprint("pv", i), Name: "page_viewed", OccurredAt: &at,
				Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: fmt.Sprint("v", i)}}}})
			continue
		}
		e.orders(t, fmt.Sprint("v", i), n, float64(20+rng.IntN(300)), start.Add(-time.Duration(rng.IntN(90*24))*time.Hour),
			time.Duration(3+rng.IntN(20))*day, &msg)
	}
	e.tr.Wait()
	if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	w, err := e.tr.Summary(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	rules := []rule.Rule{
		{Computed: &rule.ComputedCond{Key: scores.KeyChurnRisk, Op: rule.GT, Value: 0.5}},
		{Computed: &rule.ComputedCond{Key: scores.KeyOrders, Op: rule.GTE, Value: int64(3)}},
		{Computed: &rule.ComputedCond{Key: scores.KeyLabel, Op: rule.In, Values: []any{scores.LabelChampions, scores.LabelLoyal}}},
		{Or: []rule.Rule{
			{Computed: &rule.ComputedCond{Key: scores.KeyEngagement, Op: rule.LT, Value: 5.0}},
			{Computed: &rule.ComputedCond{Key: scores.KeyLifetimeValue, Op: rule.GT, Value: 1000}},
		}},
	}
	for i, r := range rules {
		count, _, err := e.Services.Segments.Preview(e.Ctx, e.Tenant, r, start)
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, id := range allIDs(t, e) {
			p := e.Profile(t, id)
			if ok, _ := rule.Evaluate(r, rule.Input{Score: func(key string, at time.Time, th []float64) (any, time.Time) {
				return scores.Get(key, p.Tally.Input(at, p.FirstSeenAt, p.LastSeenAt, w), th)
			}}, start); ok {
				want++
			}
		}
		if count != want || (i < 2 && want == 0) {
			t.Errorf("rule %d: preview counts %d, scores one by one %d", i, count, want)
		}
	}
}

// TestTallyUnderConcurrentMerges: tracks (orders and page views) race
// identify calls that stitch anonymous visitors to a few people, merging
// their profiles, with no computed trait defined. Merges fold the
// tallies (no recount from events), so every survivor's tally must still
// equal a recount of its stored events, and no from-events write
// happened.
func TestTallyUnderConcurrentMerges(t *testing.T) {
	e := newEnv(t)
	noAutoRefresh(t)
	const workers, calls = 6, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for c := range calls {
				a := rng.IntN(12)
				anon := identity.Identifier{Type: identity.AnonymousID, Value: fmt.Sprint("anon-", a)}
				if rng.IntN(4) == 0 {
					// Visitor a is person a%3: three survivors in the end.
					email := identity.Identifier{Type: "email", Value: fmt.Sprintf("p%d@example.com", a%3)}
					if _, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{anon, email}, SeenAt: start}); err != nil {
						errs <- err
						return
					}
					continue
				}
				at := start.Add(-time.Duration(rng.IntN(60*24)) * time.Hour)
				in := timeline.TrackInput{MessageID: fmt.Sprintf("m-%d-%d", w, c), Name: "page_viewed", OccurredAt: &at,
					Identifiers: []identity.Identifier{anon}}
				if rng.IntN(3) == 0 {
					in.Name, in.Properties = traits.DefaultOrderEvent, map[string]any{"revenue": float64(rng.IntN(100))}
				}
				if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", []timeline.TrackInput{in}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids := allIDs(t, e)
	merged := 0
	for _, id := range ids {
		p := e.Profile(t, id)
		merged += len(p.MergedFrom)
		if p.ComputedEpoch != 0 {
			t.Errorf("profile %s: computedEpoch %d, want no from-events write", id, p.ComputedEpoch)
		}
	}
	if merged == 0 {
		t.Fatal("no merge happened")
	}
	e.checkTallies(t, "after concurrent merges", ids, traits.DefaultOrderEvent, "revenue", start)
	t.Logf("%d profiles, %d merged away", len(ids), merged)
}

// TestConcurrentSummaryRefreshes: forced refreshes racing each other and
// the background one in one process all succeed, one after the other.
func TestConcurrentSummaryRefreshes(t *testing.T) {
	e := newEnv(t)
	msg := 0
	for i := range 6 {
		e.orders(t, fmt.Sprint("c", i), 1+i%3, 50, start.Add(-time.Duration(i)*day), 7*day, &msg)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, err := e.tr.RefreshSummary(e.Ctx, e.Tenant, true); err != nil || !ok {
				t.Errorf("refresh: %v %v", ok, err)
			}
		})
	}
	wg.Wait()
	e.tr.Wait()
	if w, err := e.tr.Summary(e.Ctx, e.Tenant); err != nil || w == nil || w.Buyers != 6 {
		t.Fatalf("summary %+v %v", w, err)
	}
}

// scoreValue is the score key's value on p at now, as segment rules and
// sorting read it (scores.Get over the profile's tally).
func scoreValue(key string, p *profile.Profile, w *scores.Workspace, now time.Time) any {
	v, _ := scores.Get(key, p.Tally.Input(now, p.FirstSeenAt, p.LastSeenAt, w), nil)
	return v
}
