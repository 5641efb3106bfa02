package app_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// loopFrames are the functions of the goroutines Start launches.
var loopFrames = []string{
	"segment.(*Engine).RunSweeper",
	"app.(*Services).Start.func",
	"realtime.(*Hub).tailLoop",
	"realtime.(*Hub).pruneLoop",
}

// waitRunning waits (up to 5 s) until exactly the loop frames want are
// running (a goroutine just launched shows its wrapper until it is first
// scheduled; one that just returned lingers a moment), and returns them.
func waitRunning(want int) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := running()
		if len(r) == want || time.Now().After(deadline) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running lists the loop frames some goroutine is in.
func running() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, f := range loopFrames {
		if strings.Contains(string(buf), f) {
			out = append(out, f)
		}
	}
	return out
}

func anon(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.AnonymousID, Value: v}}
}

func queued(t *testing.T, e *apptest.Env) int64 {
	t.Helper()
	n, err := e.Store.Tenant(store.SystemWorkspace).C(identity.MergeQueue).Count(e.Ctx, store.Query{Index: identity.QueueByAt})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartRecoversFirst: a merge a crash interrupted is finished before
// the start-up work runs, and that before any background loop; after
// Start the loops run and every service publishes to the hub.
func TestStartRecoversFirst(t *testing.T) {
	e := apptest.New(t, start)
	// A "crash" in the middle of a merge: a mover fails, leaving the merge
	// running and queued.
	crashed := identity.New(identity.Deps{Now: e.Clock.Now, Followers: crashing{}})
	var ids []string
	for _, who := range []string{"a", "b"} {
		res, err := crashed.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon(who)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Profile.ID)
	}
	if _, err := crashed.Merge(e.Ctx, e.Tenant, ids[0], ids[1], "test", "tester"); err == nil {
		t.Fatal("merge with a failing mover succeeded")
	}
	if n := queued(t, e); n != 1 {
		t.Fatalf("%d merges queued after the crash, want 1", n)
	}

	ran := false
	svc := app.New(e.Clock.Now, app.WithStore(e.Store), app.WithStartup(func(ctx context.Context) error {
		ran = true
		if n := queued(t, e); n != 0 {
			t.Errorf("start-up work ran with %d merges queued", n)
		}
		if r := running(); len(r) > 0 {
			t.Errorf("background work running during start-up work: %v", r)
		}
		return nil
	}))
	defer svc.Close()
	// Summary refreshes the reads started end before the store closes.
	defer svc.Traits.Wait()
	if err := svc.Start(e.Ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !ran {
		t.Fatal("start-up work did not run")
	}
	if n := queued(t, e); n != 0 {
		t.Fatalf("%d merges queued after Start", n)
	}
	res, err := svc.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon("b")})
	if err != nil || res.Profile.ID != ids[0] && res.Profile.ID != ids[1] {
		t.Fatalf("b resolves to %v (%v)", res.Profile, err)
	}
	if byA, err := svc.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon("a")}); err != nil || byA.Profile.ID != res.Profile.ID {
		t.Fatalf("a and b resolve to different profiles after recovery: %v (%v)", byA.Profile, err)
	}
	if r := waitRunning(len(loopFrames)); len(r) != len(loopFrames) {
		t.Fatalf("running after Start: %v, want %v", r, loopFrames)
	}
	if svc.Hub() == nil {
		t.Fatal("no hub")
	}
	// The services publish to it (the relay they were built with points
	// at it): a trait change is announced.
	ch, cancel := svc.Hub().Subscribe("ws1", nil, "")
	defer cancel()
	if _, err := svc.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon("c"), Traits: map[string]any{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-ch:
		if c.Kind != realtime.ProfileUpdated {
			t.Fatalf("published %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the services do not publish to the hub")
	}
}

// TestStartupErrorStartsNothing: failed start-up work ends Start with its
// error and nothing in the background.
func TestStartupErrorStartsNothing(t *testing.T) {
	e := apptest.New(t, start)
	boom := errors.New("boom")
	svc := app.New(e.Clock.Now, app.WithStore(e.Store), app.WithStartup(func(context.Context) error { return boom }))
	if err := svc.Start(e.Ctx); !errors.Is(err, boom) {
		t.Fatalf("start: %v, want %v", err, boom)
	}
	if r := waitRunning(0); len(r) > 0 || svc.Hub() != nil {
		t.Fatalf("running after a failed start: %v (hub %v)", r, svc.Hub())
	}
	svc.Close()
}

// TestSweeperRuns: after Start, a profile whose segment window closed
// leaves the segment without anyone calling Sweep.
func TestSweeperRuns(t *testing.T) {
	e := apptest.New(t, start)
	svc := app.New(e.Clock.Now, app.WithStore(e.Store))
	seg, err := svc.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &rule.Rule{Event: &rule.EventCond{
		Name: "order", Count: &rule.CountCond{Op: rule.GTE, Value: 1},
		Window: &rule.Window{Last: &rule.Last{Amount: 7, Unit: rule.Days}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{
		MessageID: "m1", Identifiers: anon("a"), Name: "order",
	}})
	if err != nil {
		t.Fatal(err)
	}
	pid := res[0].Profile.ID
	member := func() bool {
		ms, _, _, err := svc.Segments.Members(e.Ctx, e.Tenant, seg.ID, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(ms) == 1 && ms[0].ProfileID == pid
	}
	if !member() {
		t.Fatal("not a member after an order")
	}
	due := e.Profile(t, pid).EvalAt()
	if due.IsZero() {
		t.Fatal("no nextEvalAt")
	}
	e.Clock.Set(due.Add(time.Second))

	if err := svc.Start(e.Ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	defer svc.Traits.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for member() {
		if time.Now().After(deadline) {
			t.Fatal("still a member 10 s after its window closed: the sweeper does not run")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCloseStopsEverything: Close returns once every goroutine Start
// launched has ended; Start twice, Start after Close, Close twice and
// Close without Start are safe.
func TestCloseStopsEverything(t *testing.T) {
	e := apptest.New(t, start)
	before := runtime.NumGoroutine()

	svc := app.New(e.Clock.Now, app.WithStore(e.Store))
	t.Cleanup(svc.Close)
	if err := svc.Start(e.Ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(e.Ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if r := waitRunning(len(loopFrames)); len(r) != len(loopFrames) {
		t.Fatalf("running after Start: %v, want %v", r, loopFrames)
	}
	// A subscription ends at Close.
	ch, cancel := svc.Hub().Subscribe("ws1", nil, "")
	defer cancel()
	svc.Close()
	// The sweeper has returned before its goroutine says it is done; only
	// the goroutines' last instructions may still be on their way out.
	if slices.Contains(running(), "segment.(*Engine).RunSweeper") {
		t.Fatal("Close returned before the sweeper stopped")
	}
	if r := waitRunning(0); len(r) > 0 {
		t.Fatalf("still running after Close: %v", r)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a change after Close")
		}
	default:
		t.Fatal("subscription still open after Close")
	}
	svc.Close()
	if err := svc.Start(e.Ctx); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	// The store's own goroutines may take a moment to settle.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before Start:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}

	never := app.New(e.Clock.Now, app.WithStore(e.Store))
	never.Close()
	never.Close()
	never.StopRealtime()
	if never.Hub() != nil {
		t.Fatal("a hub without Start")
	}
	if err := app.New(e.Clock.Now).Start(e.Ctx); err == nil {
		t.Fatal("Start without a store succeeded")
	}
}

// crashing is merge followers whose merge step fails, as a crash after
// the source was claimed and folded would leave it.
type crashing struct{}

func (crashing) MoveProfileData(context.Context, store.Tenant, string, string) error {
	return errors.New("crash")
}

func (crashing) RestoreProfileData(context.Context, store.Tenant, string, string, []string, time.Time, []identity.Identifier) error {
	return nil
}

func (crashing) CountItems(context.Context, store.Tenant, string) (int64, time.Time, time.Time, error) {
	return 0, time.Time{}, time.Time{}, nil
}

func (crashing) AfterWrite(context.Context, store.Tenant, []string, string, rule.Touched) {}
