package segment_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// buildEnv is env whose segment saves do not wait for their builds.
func buildEnv(t *testing.T) *env {
	e := apptest.New(t, start, app.WithSegmentBuildWait(time.Nanosecond))
	t.Cleanup(e.Services.Segments.WaitBuilds) // before the store closes
	return &env{Env: e, seg: e.Services.Segments}
}

// orderBatch tracks an order by each of who, message ids batch-i.
func (e *env) orderBatch(t *testing.T, batch string, who []string) {
	t.Helper()
	in := make([]timeline.TrackInput, len(who))
	for i, w := range who {
		in[i] = timeline.TrackInput{MessageID: fmt.Sprint(batch, "-", i), Identifiers: anon(w), Name: "order"}
	}
	if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", in); err != nil {
		t.Fatal(err)
	}
}

// A segment built while ingest runs beside it: the build ends READY with
// every profile processed, members are exactly those the rule selects
// from the stored events, and each of them entered once.
func TestBuildBesideIngestIsExact(t *testing.T) {
	e := buildEnv(t)
	const people = 400
	who := func(i int) string { return fmt.Sprint("p", i) }
	for i := 0; i < people; i += 100 {
		batch := make([]string, 0, 100)
		for j := i; j < i+100; j++ {
			batch = append(batch, who(j))
		}
		e.orderBatch(t, fmt.Sprint("first", i), batch) // one order each: nobody qualifies yet
	}
	r := rule.Rule{Event: &rule.EventCond{Name: "order", Count: &rule.CountCond{Op: rule.GTE, Value: 2}}}
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "repeat", Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	// Second orders arrive while the build runs.
	rng := rand.New(rand.NewPCG(7, 8))
	var wg sync.WaitGroup
	for c := 0; c < 3; c++ {
		batch := make([]string, 50)
		for j := range batch {
			batch[j] = who(rng.IntN(people))
		}
		wg.Go(func() { e.orderBatch(t, fmt.Sprint("during", c), batch) })
	}
	wg.Wait()
	e.seg.WaitBuilds()

	members, entered := builtMembers(t, e, s, people)
	want := 0
	for i := 0; i < people; i++ {
		pid := e.identify(t, who(i), nil)
		var orders int
		if err := timeline.EventsOf(e.Ctx, e.Tenant, pid, func(ev *timeline.Event) error { orders++; return nil }); err != nil {
			t.Fatal(err)
		}
		qualifies := orders >= 2
		if qualifies {
			want++
		}
		if members[pid] != qualifies || (qualifies && entered[pid] != 1) || (!qualifies && entered[pid] != 0) {
			t.Fatalf("%s: %d orders, member %v, entered %d times", who(i), orders, members[pid], entered[pid])
		}
		if c := e.Profile(t, pid).Features[rule.FeatureKey("order", nil)]; c.CountWithin(time.Time{}, profile.NoEval) != int64(orders) {
			t.Fatalf("%s: counter %+v, %d orders stored", who(i), c, orders)
		}
	}
	if want == 0 {
		t.Fatal("no one qualified: the test measured nothing")
	}
}

// A build that counts nothing from the events (a trait rule) holds no
// write back: from the save on, every write decides the segment, and the
// build writes only the profiles whose memberships it changes. Members
// still end exact, each entered once, while identify calls change the
// trait beside the build.
func TestUngatedBuildBesideWritesIsExact(t *testing.T) {
	e := buildEnv(t)
	const people = 400
	who := func(i int) string { return fmt.Sprint("p", i) }
	tier := func(i int) string {
		if i%4 == 0 {
			return "gold"
		}
		return "silver"
	}
	ids := make([]string, people)
	for i := range people {
		ids[i] = e.identify(t, who(i), map[string]any{"tier": tier(i)})
	}
	// Profiles are born due: in a workspace with segments the sweeper
	// decides them soon after. Here a first segment's build does.
	other := rule.Rule{Trait: &rule.TraitCond{Key: "tier", Op: rule.EQ, Value: "platinum"}}
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "platinum", Rule: &other}); err != nil {
		t.Fatal(err)
	}
	e.seg.WaitBuilds()
	if _, err := e.seg.Sweep(e.Ctx, e.Tenant, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	for _, id := range ids {
		before[id] = e.Profile(t, id).Version
	}
	r := rule.Rule{Trait: &rule.TraitCond{Key: "tier", Op: rule.EQ, Value: "gold"}}
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "gold", Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	// Silver people turn gold while the build runs.
	rng := rand.New(rand.NewPCG(9, 10))
	promoted := map[int]bool{}
	var lists [3][]int
	for c := range lists {
		for range 40 {
			i := rng.IntN(people)
			if tier(i) == "silver" && !promoted[i] {
				promoted[i] = true
				lists[c] = append(lists[c], i)
			}
		}
	}
	var wg sync.WaitGroup
	for _, l := range lists {
		wg.Go(func() {
			for _, i := range l {
				e.identify(t, who(i), map[string]any{"tier": "gold"})
			}
		})
	}
	wg.Wait()
	e.seg.WaitBuilds()

	members, entered := builtMembers(t, e, s, people)
	untouched := 0
	for i, id := range ids {
		gold := tier(i) == "gold" || promoted[i]
		if members[id] != gold || (gold && entered[id] != 1) || (!gold && entered[id] != 0) {
			t.Fatalf("%s: gold %v, member %v, entered %d times", who(i), gold, members[id], entered[id])
		}
		if !gold {
			// Neither the build nor a write moved it: never rewritten.
			if v := e.Profile(t, id).Version; v != before[id] {
				t.Fatalf("%s: version %d -> %d: a non-member was rewritten by the build", who(i), before[id], v)
			}
			untouched++
		}
	}
	if len(promoted) == 0 || untouched == 0 {
		t.Fatalf("promoted %d, untouched %d: the test measured nothing", len(promoted), untouched)
	}
}

// builtMembers checks that s's build ended READY with all people
// processed and that its history holds only entries, and returns its
// members and how many times each profile entered.
func builtMembers(t *testing.T, e *env, s *segment.Segment, people int64) (map[string]bool, map[string]int) {
	t.Helper()
	b, err := e.seg.BuildOf(e.Ctx, e.Tenant, s)
	if err != nil || b == nil || b.Status != segment.Ready || b.Processed != b.Total || b.Total != people {
		t.Fatalf("build %+v (%v), want READY with %d processed", b, err, people)
	}
	ms, _, _, err := e.seg.Members(e.Ctx, e.Tenant, s.ID, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]bool{}
	for _, m := range ms {
		members[m.ProfileID] = true
	}
	cs, _, _, err := e.seg.History(e.Ctx, e.Tenant, s.ID, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	entered := map[string]int{}
	for _, c := range cs {
		if c.Kind != segment.Entered {
			t.Fatalf("unexpected %s of %s", c.Kind, c.ProfileID)
		}
		entered[c.ProfileID]++
	}
	return members, entered
}

// A build left BUILDING by a process that died is resumed from where it
// stood, and the profiles it had visited are not decided twice.
func TestBuildResumesAfterARestart(t *testing.T) {
	e := buildEnv(t)
	for i := 0; i < 5; i++ {
		e.orderBatch(t, fmt.Sprint("o", i), []string{"a", "b", fmt.Sprint("c", i)})
	}
	r := rule.Rule{Event: &rule.EventCond{Name: "order", Count: &rule.CountCond{Op: rule.GTE, Value: 3}}}
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "loyal", Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	e.seg.WaitBuilds()
	first := fmt.Sprint(e.history(t, s.ID))
	if first != "[ENTERED:segment.created ENTERED:segment.created]" {
		t.Fatalf("history after the build %s", first)
	}
	// The build as a dead runner would have left it, half way.
	b, err := e.seg.BuildOf(e.Ctx, e.Tenant, s)
	if err != nil || b == nil {
		t.Fatal(b, err)
	}
	prev := b.Version
	b.Status, b.Processed, b.Owner, b.LeaseUntil, b.FinishedAt, b.Version = segment.Building, 3, "dead", start, time.Time{}, b.Version+1
	if err := e.Tenant.C(segment.SegmentBuilds).Replace(e.Ctx, b, prev); err != nil {
		t.Fatal(err)
	}
	// A new process over the same store resumes it.
	svc := app.New(e.Clock.Now, app.WithStore(e.Store))
	if n, err := svc.Segments.ResumeBuilds(e.Ctx, e.Store); err != nil || n != 1 {
		t.Fatalf("resumed %d (%v)", n, err)
	}
	svc.Segments.WaitBuilds()
	b, err = e.seg.BuildOf(e.Ctx, e.Tenant, s)
	if err != nil || b.Status != segment.Ready || b.Owner != "" {
		t.Fatalf("after the resume: %+v (%v)", b, err)
	}
	if got := fmt.Sprint(e.history(t, s.ID)); got != first {
		t.Fatalf("history after the resume %s, want %s", got, first)
	}
	if n, err := svc.Segments.ResumeBuilds(e.Ctx, e.Store); err != nil || n != 0 {
		t.Fatalf("a ready build resumed again: %d (%v)", n, err)
	}
}
