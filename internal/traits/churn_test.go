package traits_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/scores"
)

func payload(c realtime.Change, key string) string { return fmt.Sprint(c.Payload[key]) }

// churnEmail is the person of the churn scenario.
const churnEmail = "pat@example.com"

type churnWorld struct {
	*env
	log *apptest.Recorder
	now time.Time
	seg *segment.Segment
	pid string
}

// setupChurn: five buyers with a 10-day rhythm, the person's first 7
// orders of 120 (70 to 10 days ago), a fresh summary (typical gap 10
// days) and the segment "churn risk > 0.7 and LTV > 500", empty.
func setupChurn(t *testing.T) *churnWorld {
	t.Helper()
	e := newEnv(t)
	log := &apptest.Recorder{}
	e.Services.Publish(log)
	now := start
	// Small orders: never LTV > 500 once their churn risk is high.
	e.seedBuyers(t, now, []handBuyer{
		{email: "b1@example.com", ago: []int{30, 20, 10}, value: 10},
		{email: "b2@example.com", ago: []int{15, 5}, value: 10},
		{email: "b3@example.com", ago: []int{45, 35, 25, 15}, value: 10},
		{email: "b4@example.com", ago: []int{12, 2}, value: 10},
		{email: "b5@example.com", ago: []int{28, 18, 8}, value: 10},
	})
	var pid string
	for ago := 70; ago >= 10; ago -= 10 {
		pid = e.event(t, churnEmail, "order_completed", now.Add(-time.Duration(ago)*day), map[string]any{"revenue": 120})
	}
	if sum := e.refreshSummary(t, 6); sum.TypicalGap != 10*day {
		t.Fatalf("summary %+v", sum)
	}
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "churning high value", Rule: &rule.Rule{And: []rule.Rule{
		{Computed: &rule.ComputedCond{Key: scores.KeyChurnRisk, Op: rule.GT, Value: 0.7}},
		{Computed: &rule.ComputedCond{Key: scores.KeyLifetimeValue, Op: rule.GT, Value: 500}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := segment.Size(e.Ctx, e.Tenant, seg.ID); err != nil || n != 0 {
		t.Fatalf("segment starts with %d members %v", n, err)
	}
	return &churnWorld{env: e, log: log, now: now, seg: seg, pid: pid}
}

// memberships are the membership changes of the person in the segment
// published after m.
func (w *churnWorld) memberships(m int) []realtime.Change {
	var out []realtime.Change
	for _, c := range w.log.Of(m, realtime.MembershipChanged, w.pid) {
		if c.SegmentID == w.seg.ID {
			out = append(out, c)
		}
	}
	return out
}

// history is the person's recorded membership changes in the segment.
func (w *churnWorld) history(t *testing.T) []segment.Change {
	t.Helper()
	hist, _, _, err := w.Services.Segments.History(w.Ctx, w.Tenant, w.seg.ID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []segment.Change
	for _, h := range hist {
		if h.ProfileID == w.pid {
			out = append(out, h)
		}
	}
	return out
}

// TestChurnSegmentByTimeAlone is the scenario, hand-checked: a
// person ordering every 10 days for 120 is not in "churn risk > 0.7 and
// lifetime value > 500" after an order; a sweep before the churn crossing
// leaves them out, one after it makes them enter (cause "time"); the next
// order makes them exit within the order's own write (cause "track") and
// publishes profile.updated with the order counted. A page view moves
// engagement only and publishes no profile.updated.
func TestChurnSegmentByTimeAlone(t *testing.T) {
	// A summary refresh re-evaluates the score segments itself (cause
	// "scores") and would hide whether the sweep picks the person up at
	// the churn crossing.
	noAutoRefresh(t)
	w := setupChurn(t)
	now, pid := w.now, w.pid

	m := w.log.Len()
	w.event(t, churnEmail, "page_viewed", time.Time{}, nil)
	if cs := w.log.Of(m, realtime.ProfileUpdated, pid); len(cs) != 0 {
		t.Fatalf("a page view published profile.updated: %+v", cs)
	}

	// The 8th order, now: churn risk 0, not a member.
	m = w.log.Len()
	w.event(t, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	sc, in := w.scoresOf(t, pid)
	if in.Orders != 8 || in.Revenue != 960 || sc.ChurnRisk != 0 || !approx(sc.LifetimeValue, 960+120*36.5, 1e-6) {
		t.Fatalf("after the 8th order: %+v %+v", sc, in)
	}
	if cs := w.memberships(m); len(cs) != 0 || isMember(t, w.env, w.seg.ID, pid) {
		t.Fatalf("member right after an order: %+v", cs)
	}

	// Usual gap (70 + 10) / 8 = 10 days: churn risk 0.684 after 24 days,
	// 0.7 after about 24.4. Not yet: a sweep leaves the person out.
	at24 := now.Add(24 * day)
	w.Clock.Set(at24)
	if sc, _ := w.scoresOf(t, pid); !approx(sc.ChurnRisk, handChurn(24, 10), 1e-6) || sc.ChurnRisk >= 0.7 {
		t.Fatalf("after 24 days: churn risk %v, want %v", sc.ChurnRisk, handChurn(24, 10))
	}
	if _, err := w.Services.Segments.Sweep(w.Ctx, w.Tenant, at24); err != nil {
		t.Fatal(err)
	}
	if cs := w.memberships(m); len(cs) != 0 || isMember(t, w.env, w.seg.ID, pid) {
		t.Fatalf("after 24 days (churn risk below 0.7): %+v", cs)
	}

	// 40 days after the order: churn 0.98, LTV 1040: the sweep enters.
	at40 := now.Add(40 * day)
	w.Clock.Set(at40)
	if n, err := w.Services.Segments.Sweep(w.Ctx, w.Tenant, at40); err != nil || n == 0 {
		t.Fatalf("sweep after 40 days: %d %v", n, err)
	}
	cs := w.memberships(m)
	if len(cs) != 1 || payload(cs[0], realtime.PayloadKind) != segment.Entered || payload(cs[0], realtime.PayloadCause) != "time" {
		t.Fatalf("after 40 days: %+v, want one ENTERED (time)", cs)
	}
	hist := w.history(t)
	if len(hist) != 1 || hist[0].Kind != segment.Entered || hist[0].Cause != "time" {
		t.Fatalf("history after 40 days: %+v", hist)
	}
	if hist[0].At.Before(at24) || hist[0].At.After(at40) {
		t.Errorf("ENTERED at %v, want between the crossing and the clock %v", hist[0].At, at40)
	}
	sc, _ = w.scoresOf(t, pid)
	if c := handChurn(40, 10); !approx(sc.ChurnRisk, c, 1e-6) || !approx(sc.LifetimeValue, handLTV(960, 8, 10, c), 1e-6) || sc.ChurnRisk <= 0.7 || sc.LifetimeValue <= 500 {
		t.Fatalf("after 40 days: %+v", sc)
	}
	if !isMember(t, w.env, w.seg.ID, pid) {
		t.Fatal("ENTERED published but not a member")
	}

	// A new order: churn risk 0 again, out of the segment when the write
	// returns.
	m = w.log.Len()
	w.event(t, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if isMember(t, w.env, w.seg.ID, pid) {
		t.Fatal("still a member when the order's write returned")
	}
	members, _, _, err := w.Services.Segments.Members(w.Ctx, w.Tenant, w.seg.ID, 100, "")
	if err != nil || slices.ContainsFunc(members, func(x segment.Member) bool { return x.ProfileID == pid }) {
		t.Fatalf("segment members still list the person: %+v %v", members, err)
	}
	cs = w.memberships(m)
	if len(cs) != 1 || payload(cs[0], realtime.PayloadKind) != segment.Exited || payload(cs[0], realtime.PayloadCause) != "track" {
		t.Fatalf("after the new order: %+v, want one EXITED (track)", cs)
	}
	if ups := w.log.Of(m, realtime.ProfileUpdated, pid); len(ups) == 0 {
		t.Fatal("no profile.updated after the 9th order")
	}
	sc, in = w.scoresOf(t, pid)
	if in.Orders != 9 || sc.ChurnRisk != 0 || in.Revenue != 1080 || !in.LastOrder.Equal(at40) {
		t.Fatalf("after the 9th order: %+v %+v", sc, in)
	}
}

// TestChurnSegmentSummaryRefresh: the same crossing with the summary
// refreshing on use, as in production (it is 40 days old when the clock
// has moved): the sweep and the segment re-evaluation after the new
// summary, running at once, may both see the person cross; exactly one
// ENTERED results.
func TestChurnSegmentSummaryRefresh(t *testing.T) {
	w := setupChurn(t)
	m := w.log.Len()
	w.event(t, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if cs := w.memberships(m); len(cs) != 0 {
		t.Fatalf("right after an order: %+v", cs)
	}
	at40 := w.now.Add(40 * day)
	w.Clock.Set(at40)
	// A read: the summary is stale, a refresh starts in the background
	// while the sweep runs.
	if sc, _ := w.scoresOf(t, w.pid); sc.ChurnRisk <= 0.7 || sc.LifetimeValue <= 500 {
		t.Fatalf("after 40 days: %+v", sc)
	}
	if _, err := w.Services.Segments.Sweep(w.Ctx, w.Tenant, at40); err != nil {
		t.Fatal(err)
	}
	w.tr.Wait()
	cs := w.memberships(m)
	if len(cs) != 1 || payload(cs[0], realtime.PayloadKind) != segment.Entered {
		t.Fatalf("after 40 days: %+v, want one ENTERED", cs)
	}
	if cause := payload(cs[0], realtime.PayloadCause); cause != "time" && cause != "scores" {
		t.Fatalf("ENTERED by %q, want time or scores", cause)
	}
	t.Logf("ENTERED by %q", payload(cs[0], realtime.PayloadCause))
	if sum, err := w.tr.SummaryInfo(w.Ctx, w.Tenant); err != nil || sum == nil || !sum.At.Equal(at40) {
		t.Errorf("summary not refreshed on use after the clock moved: %+v %v", sum, err)
	}
	if hist := w.history(t); len(hist) != 1 {
		t.Fatalf("the person's membership history: %+v", hist)
	}
	m = w.log.Len()
	w.event(t, churnEmail, "order_completed", time.Time{}, map[string]any{"revenue": 120})
	if cs := w.memberships(m); len(cs) != 1 || payload(cs[0], realtime.PayloadKind) != segment.Exited || payload(cs[0], realtime.PayloadCause) != "track" {
		t.Fatalf("after the new order: %+v, want one EXITED (track)", cs)
	}
}
