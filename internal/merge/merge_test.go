package merge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/merge"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

var start = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

// steps is the order the coordinator called the domains in. A step may
// also note what it saw of the store when called (check).
type steps struct {
	mu  sync.Mutex
	log []string
}

func (s *steps) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *steps) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

// loggedConsent records the consent steps and, when check is set, what
// the timeline held at that moment; next (if any) does the real work.
type loggedConsent struct {
	steps *steps
	check func(ctx context.Context, tn store.Tenant) string
	next  merge.Consent
}

func (c loggedConsent) note(ctx context.Context, tn store.Tenant) string {
	if c.check == nil {
		return ""
	}
	return " " + c.check(ctx, tn)
}

func (c loggedConsent) MoveConsent(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	c.steps.add("consent.move %s>%s%s", sourceID, targetID, c.note(ctx, tn))
	if c.next == nil {
		return nil
	}
	return c.next.MoveConsent(ctx, tn, sourceID, targetID)
}

func (c loggedConsent) UnmoveConsent(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []identity.Identifier) error {
	c.steps.add("consent.unmove %s>%s origins=%v since=%s restored=%v%s", fromID, toID, origins, since.Format(time.RFC3339), restored, c.note(ctx, tn))
	if c.next == nil {
		return nil
	}
	return c.next.UnmoveConsent(ctx, tn, fromID, toID, origins, since, restored)
}

type loggedTraits struct {
	steps *steps
	fail  error
	next  merge.Traits
}

func (t loggedTraits) AfterMerge(ctx context.Context, tn store.Tenant, ids []string) error {
	t.steps.add("traits.afterMerge %v", ids)
	if t.next != nil {
		return t.next.AfterMerge(ctx, tn, ids)
	}
	return t.fail
}

func (t loggedTraits) Recompute(ctx context.Context, tn store.Tenant, ids []string) error {
	t.steps.add("traits.recompute %v", ids)
	if t.next != nil {
		return t.next.Recompute(ctx, tn, ids)
	}
	return t.fail
}

type loggedSegments struct {
	steps *steps
	next  merge.Segments
}

func (s loggedSegments) AfterWrite(ctx context.Context, tn store.Tenant, ids []string, cause string, touched rule.Touched) {
	s.steps.add("segments.afterWrite %s %v all=%v", cause, ids, touched.All)
	if s.next != nil {
		s.next.AfterWrite(ctx, tn, ids, cause, touched)
	}
}

func anon(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.AnonymousID, Value: v}}
}

// track stores events named name for the visitor and returns its profile.
func track(t *testing.T, e *apptest.Env, visitor, name string, msgs ...string) string {
	t.Helper()
	var in []timeline.TrackInput
	for _, m := range msgs {
		at := e.Clock.Now().Add(-time.Minute)
		in = append(in, timeline.TrackInput{MessageID: m, Identifiers: anon(visitor), Name: name, OccurredAt: &at})
	}
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", in)
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Profile.ID
}

func eventsOn(ctx context.Context, tn store.Tenant, profileID string) int64 {
	n, err := timeline.CountOf(ctx, tn, profileID)
	if err != nil {
		return -1
	}
	return n
}

func wantSteps(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("steps\n got %q\nwant %q", got, want)
	}
}

// MoveProfileData moves the events first, then consent; the unmerge's
// RestoreProfileData gives back the items whose origin is the restored
// profile first, then consent, handing consent what the unmerge knows.
func TestMoveAndRestoreProfileDataOrder(t *testing.T) {
	e := apptest.New(t, start)
	src := track(t, e, "src", "page_viewed", "s1", "s2")
	dst := track(t, e, "dst", "page_viewed", "d1")
	log := &steps{}
	onBoth := func(ctx context.Context, tn store.Tenant) string {
		return fmt.Sprintf("events src=%d dst=%d", eventsOn(ctx, tn, src), eventsOn(ctx, tn, dst))
	}
	c := merge.New(merge.Deps{Consent: loggedConsent{steps: log, check: onBoth}})

	if err := c.MoveProfileData(e.Ctx, e.Tenant, src, dst); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, log.take(), []string{"consent.move " + src + ">" + dst + " events src=0 dst=3"})
	// Idempotent: a resumed merge runs the step again.
	if err := c.MoveProfileData(e.Ctx, e.Tenant, src, dst); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, log.take(), []string{"consent.move " + src + ">" + dst + " events src=0 dst=3"})

	restored := anon("src")
	if err := c.RestoreProfileData(e.Ctx, e.Tenant, dst, src, []string{src}, start, restored); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, log.take(), []string{fmt.Sprintf("consent.unmove %s>%s origins=[%s] since=%s restored=%v events src=2 dst=1",
		dst, src, src, start.Format(time.RFC3339), restored)})

	n, first, last, err := c.CountItems(e.Ctx, e.Tenant, src)
	wn, wfirst, wlast, werr := timeline.CountEvents(e.Ctx, e.Tenant, src)
	if err != nil || werr != nil || n != 2 || n != wn || !first.Equal(wfirst) || !last.Equal(wlast) {
		t.Fatalf("CountItems = %d %s %s %v, want the timeline's %d %s %s %v", n, first, last, err, wn, wfirst, wlast, werr)
	}
}

// AfterWrite: computed traits are brought up to date from the moved
// events before segments re-evaluate (a segment may read a computed
// trait); a merge's survivor is recomputed only if stale (AfterMerge),
// an unmerge's profiles always (Recompute), an identify not at all. A
// failed recompute does not stop the segments, nor fail the write.
func TestAfterWriteTraitsThenSegments(t *testing.T) {
	e := apptest.New(t, start)
	log := &steps{}
	c := merge.New(merge.Deps{Traits: loggedTraits{steps: log}, Segments: loggedSegments{steps: log}})
	all := rule.Touched{All: true}
	c.AfterWrite(e.Ctx, e.Tenant, []string{"a", "b"}, "merge", all)
	wantSteps(t, log.take(), []string{"traits.afterMerge [a b]", "segments.afterWrite merge [a b] all=true"})
	c.AfterWrite(e.Ctx, e.Tenant, []string{"a", "b"}, "unmerge", all)
	wantSteps(t, log.take(), []string{"traits.recompute [a b]", "segments.afterWrite unmerge [a b] all=true"})
	c.AfterWrite(e.Ctx, e.Tenant, []string{"a"}, "identify", rule.Touched{})
	wantSteps(t, log.take(), []string{"segments.afterWrite identify [a] all=false"})

	failing := merge.New(merge.Deps{Traits: loggedTraits{steps: log, fail: errors.New("boom")}, Segments: loggedSegments{steps: log}})
	failing.AfterWrite(e.Ctx, e.Tenant, []string{"a"}, "merge", all)
	wantSteps(t, log.take(), []string{"traits.afterMerge [a]", "segments.afterWrite merge [a] all=true"})
}

// Every domain may be left out: the timeline's steps still run.
func TestCoordinatorWithoutDomains(t *testing.T) {
	e := apptest.New(t, start)
	src := track(t, e, "src", "page_viewed", "s1")
	dst := track(t, e, "dst", "page_viewed", "d1")
	c := merge.New(merge.Deps{})
	if err := c.MoveProfileData(e.Ctx, e.Tenant, src, dst); err != nil {
		t.Fatal(err)
	}
	if s, d := eventsOn(e.Ctx, e.Tenant, src), eventsOn(e.Ctx, e.Tenant, dst); s != 0 || d != 2 {
		t.Fatalf("after move: %d events on the source, %d on the target", s, d)
	}
	if err := c.RestoreProfileData(e.Ctx, e.Tenant, dst, src, []string{src}, start, nil); err != nil {
		t.Fatal(err)
	}
	if s, d := eventsOn(e.Ctx, e.Tenant, src), eventsOn(e.Ctx, e.Tenant, dst); s != 1 || d != 1 {
		t.Fatalf("after restore: %d events on the source, %d on the target", s, d)
	}
	c.AfterWrite(e.Ctx, e.Tenant, []string{dst}, "merge", rule.Touched{All: true})
}

// A merge and an unmerge that identity runs reach the other domains
// through the coordinator in the package doc's order: events then
// consent (before and after the source is retired), then computed
// traits, then segments last; an unmerge restores events then consent,
// then recomputes traits, then segments.
func TestIdentityRunsStepsInOrder(t *testing.T) {
	e := apptest.New(t, start)
	e.Clock.SetTick(time.Millisecond)
	a := track(t, e, "a", "page_viewed", "a1")
	b := track(t, e, "b", "page_viewed", "b1", "b2")
	log := &steps{}
	c := merge.New(merge.Deps{
		Consent: loggedConsent{steps: log, next: consent.NewMover(e.Clock.Now), check: func(ctx context.Context, tn store.Tenant) string {
			return fmt.Sprintf("events a=%d b=%d", eventsOn(ctx, tn, a), eventsOn(ctx, tn, b))
		}},
		Traits:   loggedTraits{steps: log, next: e.Services.Traits},
		Segments: loggedSegments{steps: log, next: e.Services.Segments},
	})
	r := identity.New(identity.Deps{Now: e.Clock.Now, Followers: c})

	p, err := r.Merge(e.Ctx, e.Tenant, b, a, "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != a {
		t.Fatalf("survivor %s, want the older %s", p.ID, a)
	}
	move := "consent.move " + b + ">" + a + " events a=3 b=0"
	wantSteps(t, log.take(), []string{move, move,
		fmt.Sprintf("traits.afterMerge [%s %s]", a, b), fmt.Sprintf("segments.afterWrite merge [%s %s] all=true", a, b)})

	hist, err := identity.History(e.Ctx, e.Tenant, a)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history %v %v", hist, err)
	}
	if _, err := r.Unmerge(e.Ctx, e.Tenant, hist[0].ID, "tester"); err != nil {
		t.Fatal(err)
	}
	got := log.take()
	if len(got) != 3 || !strings.HasPrefix(got[0], "consent.unmove "+a+">"+b+" origins=["+b+"]") || !strings.HasSuffix(got[0], "events a=1 b=2") {
		t.Fatalf("unmerge steps %q: want consent restored after the events", got)
	}
	wantSteps(t, got[1:], []string{fmt.Sprintf("traits.recompute [%s %s]", a, b), fmt.Sprintf("segments.afterWrite unmerge [%s %s] all=true", a, b)})
}

// member reports whether profileID is in the segment.
func member(t *testing.T, e *apptest.Env, profileID, segmentID string) bool {
	t.Helper()
	ms, err := e.Services.Segments.ProfileSegments(e.Ctx, e.Tenant, profileID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(ms, func(m segment.Member) bool { return m.SegmentID == segmentID })
}

func orders(t *testing.T, e *apptest.Env, profileID string) string {
	t.Helper()
	v, err := e.Services.Traits.Values(e.Ctx, e.Tenant, e.Profile(t, profileID), []string{"orders"}, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(v["orders"])
}

// Over the real wiring: after a merge the survivor holds both people's
// consent and orders, and is in the segments that need both — which it
// can only enter if consent moved and traits were recomputed before the
// segments looked; an unmerge gives each their own back and the
// segments follow.
func TestMergeAndUnmergeCarryConsentTraitsAndSegments(t *testing.T) {
	e := apptest.New(t, start, app.WithTraitsSettle(0))
	t.Cleanup(e.Services.Traits.Wait)
	e.Clock.SetTick(time.Millisecond)
	if _, err := e.Services.Traits.Define(e.Ctx, e.Tenant, traits.Input{Key: "orders", Kind: "COUNT", Event: "order"}); err != nil {
		t.Fatal(err)
	}
	e.Services.Traits.Wait()
	mkSegment := func(name string, r rule.Rule) string {
		s, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: name, Rule: &r})
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	bigBuyers := mkSegment("big buyers", rule.Rule{Computed: &rule.ComputedCond{Key: "orders", Op: rule.GTE, Value: 3}})
	reachable := mkSegment("reachable big buyers", rule.Rule{And: []rule.Rule{
		{Computed: &rule.ComputedCond{Key: "orders", Op: rule.GTE, Value: 3}},
		{Consent: &rule.ConsentCond{Purpose: "marketing", Channel: "EMAIL"}},
	}})

	a := track(t, e, "a", "order", "a1")
	at := e.Clock.Now().Add(-time.Minute)
	res, err := e.Services.Ingest.Track(e.Ctx, e.Tenant, ingest.Caller{Subject: "t", ConsentWrite: true}, "inputs", []ingest.TrackInput{
		{TrackInput: timeline.TrackInput{MessageID: "b1", Identifiers: anon("b"), Name: "order", OccurredAt: &at},
			Consent: []consent.Choice{{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED", Source: "form"}}},
		{TrackInput: timeline.TrackInput{MessageID: "b2", Identifiers: anon("b"), Name: "order", OccurredAt: &at}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := res[0].Profile.ID
	if orders(t, e, a) != "1" || orders(t, e, b) != "2" || member(t, e, a, bigBuyers) || member(t, e, b, bigBuyers) {
		t.Fatalf("setup: orders %s and %s, members %v %v", orders(t, e, a), orders(t, e, b), member(t, e, a, bigBuyers), member(t, e, b, bigBuyers))
	}

	p, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, b, a, "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != a {
		t.Fatalf("survivor %s, want the older %s", p.ID, a)
	}
	if got := orders(t, e, a); got != "3" {
		t.Fatalf("survivor's orders after merge = %s, want 3 (recomputed from the moved events)", got)
	}
	if !member(t, e, a, bigBuyers) || !member(t, e, a, reachable) {
		t.Fatalf("survivor in big buyers %v, reachable big buyers %v; want both", member(t, e, a, bigBuyers), member(t, e, a, reachable))
	}

	hist, err := identity.History(e.Ctx, e.Tenant, a)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history %v %v", hist, err)
	}
	if _, err := e.Services.Identity.Unmerge(e.Ctx, e.Tenant, hist[0].ID, "tester"); err != nil {
		t.Fatal(err)
	}
	if oa, ob := orders(t, e, a), orders(t, e, b); oa != "1" || ob != "2" {
		t.Fatalf("orders after unmerge: %s and %s, want 1 and 2", oa, ob)
	}
	for _, id := range []string{a, b} {
		if member(t, e, id, bigBuyers) || member(t, e, id, reachable) {
			t.Fatalf("%s still a big buyer after the unmerge", id)
		}
	}
	recs, _, _, err := e.Services.Consent.History(e.Ctx, e.Tenant, b, 10, "")
	if err != nil || len(recs) != 1 {
		t.Fatalf("restored profile's consent log: %d records, %v; want its own 1", len(recs), err)
	}
}
