package segment_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	seg *segment.Engine
	n   int
}

func newEnv(t testing.TB) *env {
	e := apptest.New(t, start)
	return &env{Env: e, seg: e.Services.Segments}
}

func anon(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.AnonymousID, Value: v}}
}

func (e *env) track(t *testing.T, who, name string, props map[string]any) string {
	t.Helper()
	e.n++
	var p any
	if props != nil {
		p = props
	}
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{
		MessageID: fmt.Sprintf("m-%d", e.n), Identifiers: anon(who), Name: name, Properties: p,
	}})
	if err != nil {
		t.Fatalf("track: %v", err)
	}
	return res[0].Profile.ID
}

func (e *env) identify(t *testing.T, who string, traits map[string]any) string {
	t.Helper()
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon(who), Traits: traits})
	if err != nil {
		t.Fatalf("identify: %v", err)
	}
	return res.Profile.ID
}

func (e *env) create(t *testing.T, name string, r rule.Rule) *segment.Segment {
	t.Helper()
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: name, Rule: &r})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return s
}

func (e *env) members(t *testing.T, segID string) map[string]bool {
	t.Helper()
	ms, _, _, err := e.seg.Members(e.Ctx, e.Tenant, segID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range ms {
		out[m.ProfileID] = true
	}
	return out
}

func (e *env) history(t *testing.T, segID string) []string {
	t.Helper()
	cs, _, _, err := e.seg.History(e.Ctx, e.Tenant, segID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(cs) - 1; i >= 0; i-- { // oldest first
		out = append(out, cs[i].Kind+":"+cs[i].Cause)
	}
	return out
}

func orders(n int, days int) rule.Rule {
	return rule.Rule{Event: &rule.EventCond{
		Name: "order", Count: &rule.CountCond{Op: rule.GTE, Value: n},
		Window: &rule.Window{Last: &rule.Last{Amount: days, Unit: rule.Days}},
	}}
}

func TestEnterOnTrackAndExitWithTime(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "buyers", orders(2, 7))
	pid := e.track(t, "a", "order", nil)
	if e.members(t, s.ID)[pid] {
		t.Fatal("member after one order")
	}
	e.track(t, "a", "order", nil)
	if !e.members(t, s.ID)[pid] {
		t.Fatal("not a member after two orders")
	}
	p := e.Profile(t, pid)
	want := time.Date(2026, 3, 17, 0, 0, 0, 0, time.UTC) // both orders leave the 7-day window
	// The ENTERED move is handed off and cleared from the document.
	if len(p.Moves) != 0 || !p.NextEvalAt.Equal(want) {
		t.Fatalf("moves %+v, nextEvalAt %v, want none and %v", p.Moves, p.NextEvalAt, want)
	}
	// Nothing due yet.
	if n, err := e.seg.Sweep(e.Ctx, e.Tenant, start.Add(24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("early sweep visited %d (%v)", n, err)
	}
	e.Clock.Set(want.Add(time.Second))
	if n, err := e.seg.Sweep(e.Ctx, e.Tenant, want.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep visited %d (%v)", n, err)
	}
	if e.members(t, s.ID)[pid] {
		t.Fatal("still a member after the window")
	}
	if got := e.history(t, s.ID); fmt.Sprint(got) != "[ENTERED:track EXITED:time]" {
		t.Fatalf("history %v", got)
	}
	if p := e.Profile(t, pid); len(p.Moves) != 0 || !p.NextEvalAt.Equal(profileNoEval()) {
		t.Fatalf("after exit: moves %+v nextEvalAt %v", p.Moves, p.NextEvalAt)
	}
}

func TestTraitsAndBackfill(t *testing.T) {
	e := newEnv(t)
	// Events stored before the segment exists are backfilled.
	a := e.track(t, "a", "order", map[string]any{"revenue": 80})
	e.track(t, "b", "order", map[string]any{"revenue": 20})
	e.identify(t, "a", map[string]any{"plan": "pro"})
	r := rule.Rule{And: []rule.Rule{
		{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
		{Event: &rule.EventCond{Name: "order", Where: []rule.PropertyCond{{Key: "revenue", Op: rule.GT, Value: 50}}}},
	}}
	s := e.create(t, "pro buyers", r)
	if m := e.members(t, s.ID); len(m) != 1 || !m[a] {
		t.Fatalf("members %v, want only %s", m, a)
	}
	// A trait change exits.
	e.identify(t, "a", map[string]any{"plan": "free"})
	if len(e.members(t, s.ID)) != 0 {
		t.Fatal("still a member after plan change")
	}
	if got := e.history(t, s.ID); fmt.Sprint(got) != "[ENTERED:segment.created EXITED:identify]" {
		t.Fatalf("history %v", got)
	}
	size, err := segment.Size(e.Ctx, e.Tenant, s.ID)
	if err != nil || size != 0 {
		t.Fatalf("size %d %v", size, err)
	}
}

// A write re-evaluates only the segments whose rules read what it
// touched: trait keys for identify, event names (and activity fields) for
// track.
func TestReevaluationIsSelective(t *testing.T) {
	e := newEnv(t)
	pid := e.identify(t, "a", map[string]any{"plan": "free"})
	e.create(t, "pro", rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}})
	e.create(t, "country", rule.Rule{Trait: &rule.TraitCond{Key: "address.country", Op: rule.EQ, Value: "FR"}})
	buyers := e.create(t, "buyers", rule.Rule{Event: &rule.EventCond{Name: "order"}})
	step := func(name string, want int64, write func()) {
		t.Helper()
		before := e.seg.Evaluations()
		write()
		if got := e.seg.Evaluations() - before; got != want {
			t.Errorf("%s: %d segments evaluated, want %d", name, got, want)
		}
	}
	step("identify, unrelated trait", 0, func() { e.identify(t, "a", map[string]any{"name": "Ada"}) })
	step("identify, plan", 1, func() { e.identify(t, "a", map[string]any{"plan": "pro"}) })
	step("identify, nested country", 1, func() { e.identify(t, "a", map[string]any{"address": map[string]any{"country": "FR"}}) })
	step("identify, no traits", 0, func() { e.identify(t, "a", nil) })
	step("track, unrelated event", 0, func() { e.track(t, "a", "page_viewed", nil) })
	step("track, order", 1, func() { e.track(t, "a", "order", nil) })
	step("new profile", 3, func() { e.identify(t, "b", map[string]any{"plan": "pro"}) })
	if !e.members(t, buyers.ID)[pid] {
		t.Fatal("the order did not enter buyers")
	}
}

func TestStaticInSegmentArchiveUpdate(t *testing.T) {
	e := newEnv(t)
	a, b := e.identify(t, "a", nil), e.identify(t, "b", map[string]any{"vip": true})
	st, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "list", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}
	vip := e.create(t, "vip in list", rule.Rule{And: []rule.Rule{
		{InSegment: st.ID},
		{Trait: &rule.TraitCond{Key: "vip", Op: rule.EQ, Value: true}},
	}})
	if _, err := e.seg.AddStatic(e.Ctx, e.Tenant, st.ID, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	if m := e.members(t, st.ID); len(m) != 2 {
		t.Fatalf("static members %v", m)
	}
	if m := e.members(t, vip.ID); len(m) != 1 || !m[b] {
		t.Fatalf("nested members %v", m)
	}
	if _, err := e.seg.RemoveStatic(e.Ctx, e.Tenant, st.ID, []string{b}); err != nil {
		t.Fatal(err)
	}
	if m := e.members(t, vip.ID); len(m) != 0 {
		t.Fatalf("nested members after remove %v", m)
	}
	_, err = e.seg.AddStatic(e.Ctx, e.Tenant, st.ID, []string{"nope"})
	if f := fieldOf(err); f != "profileIds[0]" {
		t.Fatalf("add unknown: %v", err)
	}

	// Update: a new rule re-evaluates everyone and bumps the version.
	r := rule.Rule{Trait: &rule.TraitCond{Key: "vip", Op: rule.Exists, Value: false}}
	up, err := e.seg.Update(e.Ctx, e.Tenant, vip.ID, segment.UpdateInput{Rule: &r})
	if err != nil || up.Version != 2 {
		t.Fatalf("update: %v %+v", err, up)
	}
	if m := e.members(t, vip.ID); len(m) != 1 || !m[a] {
		t.Fatalf("members after update %v", m)
	}
	// Archive: members frozen, no more changes.
	if _, err := e.seg.Archive(e.Ctx, e.Tenant, vip.ID); err != nil {
		t.Fatal(err)
	}
	e.identify(t, "a", map[string]any{"vip": true})
	if m := e.members(t, vip.ID); len(m) != 1 || !m[a] {
		t.Fatalf("archived members changed %v", m)
	}
	if _, err := e.seg.Update(e.Ctx, e.Tenant, vip.ID, segment.UpdateInput{Rule: &r}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("update archived: %v", err)
	}
}

func TestValidationAndConflict(t *testing.T) {
	e := newEnv(t)
	e.create(t, "x", orders(1, 1))
	r := orders(1, 1)
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "x", Rule: &r}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("duplicate name: %v", err)
	}
	bad := rule.Rule{Event: &rule.EventCond{Name: "o", Window: &rule.Window{Last: &rule.Last{Amount: 0, Unit: rule.Days}}}}
	_, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "y", Rule: &bad})
	if f := fieldOf(err); len(f) < 11 || f[:11] != "input.rule." {
		t.Fatalf("bad rule: %v (field %q)", err, f)
	}
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "z"}); fieldOf(err) != "input.rule" {
		t.Fatalf("no rule: %v", err)
	}
}

func TestMergeMovesMembership(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "two orders", orders(2, 30))
	a := e.track(t, "a", "order", nil)
	b := e.track(t, "b", "order", nil)
	if len(e.members(t, s.ID)) != 0 {
		t.Fatal("members before merge")
	}
	p, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, a, b, "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if m := e.members(t, s.ID); len(m) != 1 || !m[p.ID] {
		t.Fatalf("members after merge %v (survivor %s)", m, p.ID)
	}
	if c := e.Profile(t, p.ID).Features; c[rule.FeatureKey("order", nil)].Total != 2 {
		t.Fatalf("survivor counters %+v", c)
	}
}

func TestPreview(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		for j := 0; j <= i; j++ {
			e.track(t, fmt.Sprint("p", i), "view", map[string]any{"page": "/pricing"})
		}
	}
	r := rule.Rule{Event: &rule.EventCond{Name: "view", Count: &rule.CountCond{Op: rule.GTE, Value: 3}}}
	n, sample, err := e.seg.Preview(e.Ctx, e.Tenant, r, start)
	if err != nil || n != 3 || len(sample) != 3 {
		t.Fatalf("preview %d %d %v", n, len(sample), err)
	}
	if c, _ := e.Tenant.C(segment.Segments).Count(e.Ctx, store.Query{Index: segment.SegmentsByName}); c != 0 {
		t.Fatal("preview saved something")
	}
}

func fieldOf(err error) string {
	if ae, ok := apperr.As(err); ok {
		return ae.Field
	}
	return ""
}

func profileNoEval() time.Time { return profile.NoEval }
