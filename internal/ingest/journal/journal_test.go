package journal_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	b, err := sqlitestore.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), b, journal.Collections)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

type stored struct {
	ID         string    `bson:"_id"`
	Workspaces []string  `bson:"workspaces"`
	SafeBefore time.Time `bson:"safeBefore"`
	Heartbeat  time.Time `bson:"heartbeat"`
}

func entries(t *testing.T, sys store.Tenant) []stored {
	t.Helper()
	docs, err := sys.C(journal.Entries).Find(t.Context(), store.Query{Index: journal.EntriesByHeartbeat})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]stored, len(docs))
	for i, d := range docs {
		if err := d.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The stored entry covers every call under way: a call in a workspace it
// does not list yet rewrites it before going on; SafeBefore is the start
// of the oldest call under way; a beat after the calls ended lists
// nothing. Before its first beat a journal journals nothing, and a clean
// close removes its entry.
func TestEntryCoversCallsUnderWay(t *testing.T) {
	ctx := t.Context()
	st := open(t)
	sys := st.Tenant(store.SystemWorkspace)
	j := journal.New(time.Hour)

	if c, err := j.Begin(ctx, st.Tenant("ws1")); c != nil || err != nil {
		t.Fatalf("Begin before the first beat = %v, %v; want nothing journaled", c, err)
	}
	if n := len(entries(t, sys)); n != 0 {
		t.Fatalf("%d entries before the first beat", n)
	}
	if err := j.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	es := entries(t, sys)
	if len(es) != 1 || len(es[0].Workspaces) != 0 {
		t.Fatalf("after the first beat: %+v, want one entry listing nothing", es)
	}
	start := time.Now().Add(-time.Millisecond)
	c1, err := j.Begin(ctx, st.Tenant("ws1"))
	if err != nil || c1 == nil {
		t.Fatalf("Begin: %v, %v", c1, err)
	}
	begun := time.Now()
	time.Sleep(5 * time.Millisecond)
	c2, err := j.Begin(ctx, st.Tenant("ws2"))
	if err != nil {
		t.Fatal(err)
	}
	es = entries(t, sys)
	if !slices.Equal(es[0].Workspaces, []string{"ws1", "ws2"}) {
		t.Errorf("entry lists %v, want ws1 and ws2 (written by the calls, not a beat)", es[0].Workspaces)
	}
	if es[0].SafeBefore.Before(start.Truncate(time.Millisecond)) || es[0].SafeBefore.After(begun) {
		t.Errorf("safeBefore %s, want the first call's start (about %s)", es[0].SafeBefore, start)
	}
	c1.End(true)
	if err := j.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	if es = entries(t, sys); !slices.Equal(es[0].Workspaces, []string{"ws1", "ws2"}) {
		t.Errorf("within an interval of ws1's last call the beat lists %v, want ws1 and ws2", es[0].Workspaces)
	}
	c2.End(true)
	j2 := journal.New(10 * time.Millisecond) // its interval passes in the test
	if err := j2.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	c3, err := j2.Begin(ctx, st.Tenant("ws3"))
	if err != nil {
		t.Fatal(err)
	}
	c3.End(true)
	time.Sleep(20 * time.Millisecond)
	if err := j2.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries(t, sys) {
		if slices.Contains(e.Workspaces, "ws3") {
			t.Errorf("an interval after its last call ended, ws3 is still listed: %v", e.Workspaces)
		}
	}
	if err := j2.Close(ctx, sys); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(ctx, sys); err != nil {
		t.Fatal(err)
	}
	if n := len(entries(t, sys)); n != 0 {
		t.Errorf("%d entries after a clean close, want 0", n)
	}
}

// An instance silent for three intervals is dead: its workspaces are
// windows from its SafeBefore, released one by one (the entry goes with
// the last). A live instance's entry is left alone, and a failed call of
// this instance is a window of its own until released.
func TestInterruptedWindows(t *testing.T) {
	ctx := t.Context()
	st := open(t)
	sys := st.Tenant(store.SystemWorkspace)
	const every = 20 * time.Millisecond
	dead, alive, me := journal.New(every), journal.New(time.Hour), journal.New(time.Hour)
	for _, j := range []*journal.Journal{dead, alive, me} {
		if err := j.Beat(ctx, sys); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Millisecond)
	for _, ws := range []string{"ws1", "ws2"} {
		if _, err := dead.Begin(ctx, st.Tenant(ws)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alive.Begin(ctx, st.Tenant("ws3")); err != nil {
		t.Fatal(err)
	}
	ws, err := me.Interrupted(ctx, sys)
	if err != nil || len(ws) != 0 {
		t.Fatalf("before the dead instance goes stale: %+v, %v; want none", ws, err)
	}
	time.Sleep(4 * every) // dead never beats again

	failed, err := me.Begin(ctx, st.Tenant("ws4"))
	if err != nil {
		t.Fatal(err)
	}
	failed.End(false)
	ws, err = me.Interrupted(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.Workspace)
		if w.From.Before(before.Truncate(time.Millisecond)) || !w.To.After(w.From) {
			t.Errorf("window %+v: want from the calls' start (%s) on", w, before)
		}
	}
	if !slices.Equal(got, []string{"ws1", "ws2", "ws4"}) {
		t.Fatalf("windows in %v, want ws1 and ws2 (dead instance) then ws4 (failed call)", got)
	}
	for _, w := range ws {
		if err := me.Release(ctx, sys, w); err != nil {
			t.Fatal(err)
		}
	}
	// Released twice: harmless.
	if err := me.Release(ctx, sys, ws[0]); err != nil {
		t.Errorf("a second release: %v", err)
	}
	if ws, err := me.Interrupted(ctx, sys); err != nil || len(ws) != 0 {
		t.Errorf("after releasing: %+v, %v; want none", ws, err)
	}
	if es := entries(t, sys); len(es) != 3 {
		t.Errorf("%d entries after releasing, want 3 (the dead one, emptied, is kept a while)", len(es))
	}
	time.Sleep(21 * every)
	if _, err := me.Interrupted(ctx, sys); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, sys); len(es) != 2 {
		t.Errorf("%d entries once the emptied one is old, want 2 (alive, me)", len(es))
	}
}

// An entry its owner writes again after a peer read it stale (a stalled
// instance, not a dead one) is left as the owner wrote it.
func TestReleaseLeavesAnEntryItsOwnerWrote(t *testing.T) {
	ctx := t.Context()
	st := open(t)
	sys := st.Tenant(store.SystemWorkspace)
	const every = 20 * time.Millisecond
	stalled, me := journal.New(every), journal.New(time.Hour)
	for _, j := range []*journal.Journal{stalled, me} {
		if err := j.Beat(ctx, sys); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stalled.Begin(ctx, st.Tenant("ws1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * every)
	ws, err := me.Interrupted(ctx, sys)
	if err != nil || len(ws) != 1 {
		t.Fatalf("windows %+v, %v; want ws1's", ws, err)
	}
	if err := stalled.Beat(ctx, sys); err != nil { // back to life
		t.Fatal(err)
	}
	if err := me.Release(ctx, sys, ws[0]); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries(t, sys) {
		if e.ID != "" && len(e.Workspaces) == 1 && e.Workspaces[0] == "ws1" {
			return
		}
	}
	t.Errorf("the owner's entry lost ws1 to a peer's release: %+v", entries(t, sys))
}

// The horizon is the start of the oldest call under way on any instance
// (its own calls, the others' entries as last written), less the clock
// skew allowed; a dead instance holds it back until its workspaces are
// released, then no longer. It names the workspaces with calls lately.
func TestHorizon(t *testing.T) {
	ctx := t.Context()
	st := open(t)
	sys := st.Tenant(store.SystemWorkspace)
	const every = 20 * time.Millisecond
	other, me := journal.New(every), journal.New(time.Hour)
	for _, j := range []*journal.Journal{other, me} {
		if err := j.Beat(ctx, sys); err != nil {
			t.Fatal(err)
		}
	}
	const skew = time.Second
	t0 := time.Now()
	h, ws, err := me.Horizon(ctx, sys)
	if err != nil || h.After(t0.Add(-skew+time.Millisecond)) || h.Before(t0.Add(-skew-time.Minute)) || len(ws) != 0 {
		t.Fatalf("no calls: horizon %s (now %s), workspaces %v, %v", h, t0, ws, err)
	}

	// A call of this instance under way holds it at its start.
	mine, err := me.Begin(ctx, st.Tenant("ws1"))
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	time.Sleep(30 * time.Millisecond)
	// safeBefore and call starts are kept to the millisecond.
	if h, ws, _ = me.Horizon(ctx, sys); h.After(started.Add(-skew+time.Millisecond)) || !slices.Equal(ws, []string{"ws1"}) {
		t.Fatalf("own call under way since %s: horizon %s, workspaces %v", started, h, ws)
	}
	mine.End(true)

	// Another instance's call, begun before its entry's write: held at
	// that entry's safeBefore; and once that instance is dead, until its
	// workspace is released.
	before := time.Now()
	if _, err := other.Begin(ctx, st.Tenant("ws2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * every) // other never beats again: dead
	h, ws, _ = me.Horizon(ctx, sys)
	if h.After(before.Add(-skew+time.Millisecond)) || !slices.Contains(ws, "ws2") {
		t.Fatalf("dead instance's call since %s: horizon %s, workspaces %v", before, h, ws)
	}
	windows, err := me.Interrupted(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range windows {
		if err := me.Release(ctx, sys, w); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	if h, _, _ = me.Horizon(ctx, sys); h.Before(after.Add(-skew - time.Millisecond)) {
		t.Fatalf("dead instance released at %s: horizon %s still held back", after, h)
	}
}

// A call may store its events while its instance's entry is fresh; once
// the entry has gone unwritten for all but one of the intervals after
// which the others take the instance for dead, it may not.
func TestFreshRefusesAStalledInstance(t *testing.T) {
	ctx := t.Context()
	st := open(t)
	sys := st.Tenant(store.SystemWorkspace)
	const every = 30 * time.Millisecond
	j := journal.New(every)
	if err := j.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	c, err := j.Begin(ctx, st.Tenant("ws1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fresh(); err != nil {
		t.Fatalf("just beaten: %v", err)
	}
	time.Sleep(3 * every) // no beat: a frozen process
	if err := c.Fresh(); !errors.Is(err, journal.ErrStalled) {
		t.Fatalf("after %s without a beat: %v, want ErrStalled", 3*every, err)
	}
	if err := j.Beat(ctx, sys); err != nil {
		t.Fatal(err)
	}
	if err := c.Fresh(); err != nil {
		t.Fatalf("beaten again: %v", err)
	}
	c.End(true)
}
