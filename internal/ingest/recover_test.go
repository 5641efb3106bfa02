package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// profileWritesFail is an engine whose profile writes fail while armed:
// a call then stores its events and cannot count them, as if the process
// died between the two.
type profileWritesFail struct {
	store.Backend
	armed atomic.Bool
}

var errInjected = errors.New("injected: profile write failed")

func (b *profileWritesFail) Replace(ctx context.Context, coll, ws, id string, v int64, doc bson.Raw) error {
	if b.armed.Load() && coll == profile.Profiles {
		return errInjected
	}
	return b.Backend.Replace(ctx, coll, ws, id, v, doc)
}

// uncountedEnv is a store with a segment reading purchases and one known
// person, and a way to make a trackBatch store events it cannot count.
type uncountedEnv struct {
	*apptest.Env
	engine *profileWritesFail
	seg    string
	person string
}

func newUncountedEnv(t *testing.T) *uncountedEnv {
	t.Helper()
	sb, err := sqlitestore.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fb := &profileWritesFail{Backend: sb}
	e := apptest.NewOver(t, fb, start)
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &rule.Rule{
		Event: &rule.EventCond{Name: "purchase", Count: &rule.CountCond{Op: rule.GTE, Value: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{Identifiers: email("ann@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	return &uncountedEnv{Env: e, engine: fb, seg: seg.ID, person: res.Profile.ID}
}

// failTrack runs a trackBatch on svc whose counting fails: its events
// (three purchases by the known person, two by a new one) are stored,
// none is counted. Profile writes fail until the caller disarms them.
func (u *uncountedEnv) failTrack(t *testing.T, svc *app.Services) {
	t.Helper()
	var in []ingest.TrackInput
	for i := range 3 {
		in = append(in, event(fmt.Sprint("ann-", i), "ann@example.com", "purchase"))
	}
	for i := range 2 {
		in = append(in, event(fmt.Sprint("bob-", i), "bob@example.com", "purchase"))
	}
	u.engine.armed.Store(true)
	_, err := svc.Ingest.Track(u.Ctx, u.Tenant, ingest.Caller{Subject: "t"}, "inputs", in)
	if !errors.Is(err, errInjected) {
		t.Fatalf("trackBatch with failing profile writes: %v, want the injected error", err)
	}
	if n := u.Count(t, timeline.Events, timeline.EventsByProfileTime); n != 5 {
		t.Fatalf("%d events stored, want 5 (stored, then counting failed)", n)
	}
}

// differences verifies every live profile (segment.Verify) and returns
// what differs from a count of their stored events.
func (u *uncountedEnv) differences(t *testing.T) []string {
	t.Helper()
	var out []string
	err := profile.EachLive(u.Ctx, u.Tenant, func(p *profile.Profile) error {
		ms, err := u.Services.Ingest.Verify(u.Ctx, u.Tenant, p, u.Clock.Now())
		for _, m := range ms {
			out = append(out, m.String())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (u *uncountedEnv) wantCounted(t *testing.T) {
	t.Helper()
	if d := u.differences(t); len(d) > 0 {
		t.Fatalf("after recovery, profiles differ from their stored events:\n%v", d)
	}
	if p := u.Profile(t, u.person); p.EventCount != 3 {
		t.Errorf("ann's eventCount %d, want 3", p.EventCount)
	}
	members, err := u.Services.Segments.ProfileSegments(u.Ctx, u.Tenant, u.person)
	if err != nil || len(members) != 1 || members[0].SegmentID != u.seg {
		t.Errorf("ann's memberships %+v (%v), want buyers", members, err)
	}
}

// A call that stored its events and failed to count them stays in the
// journal; Recover recounts the profiles of its window (the known person
// and the one it created) from their stored events, memberships included.
func TestRecoverCountsAFailedCall(t *testing.T) {
	u := newUncountedEnv(t)
	// No beat but Start's: the recovery below is the test's own call.
	svc := app.New(u.Clock.Now, app.WithStore(u.Store), app.WithJournalEvery(time.Hour))
	defer svc.Close()
	defer svc.Traits.Wait()
	if err := svc.Start(u.Ctx); err != nil {
		t.Fatal(err)
	}
	u.failTrack(t, svc)
	u.engine.armed.Store(false)
	if d := u.differences(t); len(d) == 0 {
		t.Fatal("the failed call left every profile counted: the test shows nothing")
	}
	n, err := svc.Ingest.Recover(u.Ctx, u.Store)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("recounted %d profiles, want 2 (ann, bob)", n)
	}
	u.wantCounted(t)
	if n, err := svc.Ingest.Recover(u.Ctx, u.Store); err != nil || n != 0 {
		t.Errorf("a second Recover recounted %d (%v), want 0: the window is released", n, err)
	}
}

// An instance that dies with uncounted events (here: its counting fails,
// and so does its own recount, then it stops) leaves its journal entry;
// the next instance to start, once the entry has gone unwritten for three
// intervals, recounts its window and removes the entry.
func TestNextInstanceRecountsADeadOnes(t *testing.T) {
	u := newUncountedEnv(t)
	const every = 20 * time.Millisecond
	dead := app.New(u.Clock.Now, app.WithStore(u.Store), app.WithJournalEvery(every))
	if err := dead.Start(u.Ctx); err != nil {
		t.Fatal(err)
	}
	u.failTrack(t, dead) // its own recounts fail too, until it is gone
	dead.Traits.Wait()
	dead.Close()
	u.engine.armed.Store(false)
	if d := u.differences(t); len(d) == 0 {
		t.Fatal("the dead instance left every profile counted: the test shows nothing")
	}
	time.Sleep(4 * every)

	next := app.New(u.Clock.Now, app.WithStore(u.Store), app.WithJournalEvery(time.Hour))
	defer next.Close()
	defer next.Traits.Wait()
	if err := next.Start(u.Ctx); err != nil {
		t.Fatal(err)
	}
	u.wantCounted(t)
	// The dead instance's entry is released: it lists no workspace.
	docs, err := u.Store.Tenant(store.SystemWorkspace).C(journal.Entries).Find(u.Ctx, store.Query{Index: journal.EntriesByHeartbeat})
	if err != nil || len(docs) != 2 {
		t.Fatalf("%d journal entries (%v), want 2: the dead one's and the next instance's", len(docs), err)
	}
	listed := 0
	for _, d := range docs {
		var e struct{ Workspaces []string }
		if err := d.Decode(&e); err != nil {
			t.Fatal(err)
		}
		listed += len(e.Workspaces)
	}
	if listed != 0 {
		t.Errorf("%d workspaces still listed, want none (the dead one's released, the next one idle)", listed)
	}
}
