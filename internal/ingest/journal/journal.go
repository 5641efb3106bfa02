// Package journal keeps, per server instance, which write calls may have
// stored events without counting them, so that what a crash (or a failed
// call) left uncounted is found and recounted.
//
// A track stores its events (one InsertMany), then counts them on their
// profiles (one compare-and-swap each). A call that dies in between
// leaves events stored and uncounted, and its retry is answered as a
// duplicate: nothing else would ever count them. Writing a record per
// call would close that gap at the price of two writes per call; the
// journal closes it with one small write per instance every few seconds
// instead, because event ids are time-ordered (store.NewID):
//
//   - every write call is begun here before its event ids are drawn, and
//     ended once its events are counted;
//   - each instance keeps an entry in the system workspace, rewritten
//     every Every (Beat): the workspaces it had calls in lately, and
//     SafeBefore, the start of its oldest call under way. A call in a
//     workspace the entry does not list yet writes the entry before it
//     goes on, so the entry always covers every call under way;
//   - an entry not rewritten for three intervals belongs to an instance
//     that died: the events stored in its workspaces from SafeBefore on
//     (a range of ids, store.ByID) are where uncounted events can be
//     (Interrupted). Package ingest recounts their profiles from their
//     stored events, then Releases each workspace of the entry, unless
//     its owner wrote it meanwhile;
//   - a call that fails after storing events (a store error while
//     counting) stays under way, failed, until the same recount has run
//     over its span.
//
// Recounting a profile whose events are all counted changes nothing, so
// a window wider than needed costs reads only. An instance stalled for
// three intervals (a frozen process, not a slow recount: beats run on
// their own) is recounted under, which is as harmless; if a peer released
// its entry just before it beat again and it then died before its next
// beat, calls in the workspaces its entry listed would go uncovered: a
// stall, a race and a crash together.
package journal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/halo-cdp/halo/store"
)

// The collection package journal owns, in the system workspace.
const (
	Entries            = "ingest_journal"
	EntriesByHeartbeat = "by_heartbeat" // (heartbeat)
)

// Collections declares it.
var Collections = []store.CollectionSpec{
	{Name: Entries, Indexes: []store.Index{{Name: EntriesByHeartbeat, Fields: []string{"heartbeat"}}}},
}

// DefaultEvery is how often an instance rewrites its entry.
const DefaultEvery = 5 * time.Second

const (
	// staleAfter is how many intervals an entry may go unwritten before
	// its instance is taken for dead.
	staleAfter = 3
	// forgetAfter is how many intervals a dead instance's entry, every
	// workspace of it released, is kept before it is removed.
	forgetAfter = 20
	// writeTimeout bounds a write of the entry: a call waiting for it
	// fails rather than hangs.
	writeTimeout = 10 * time.Second
)

// entry is an instance's stored journal.
type entry struct {
	ID         string    `bson:"_id"`
	Workspaces []string  `bson:"workspaces"`
	SafeBefore time.Time `bson:"safeBefore"`
	Heartbeat  time.Time `bson:"heartbeat"`
	Every      int64     `bson:"everyMs"` // the instance's interval, to judge its staleness
	Version    int64     `bson:"version"`
}

// Journal is one instance's journal (New). Begin, End and Close on a
// nil *Journal journal nothing.
//
// Its times are the wall clock's (time.Now), whatever clock the services
// run on (the seed replays history with a manual one): event ids are
// drawn with the wall clock, and windows are ranges of ids.
type Journal struct {
	id    string
	every time.Duration
	now   func() time.Time

	// wmu orders the writes of the entry, so that an older snapshot never
	// lands after a newer one; mu guards the state below, and is held
	// across no store call but Close's (End never waits for the store).
	wmu     sync.Mutex
	mu      sync.Mutex
	active  bool                 // Beat ran: calls are journaled from here on
	calls   map[*Call]bool       // under way, or failed and not recounted yet
	lately  map[string]time.Time // workspace → when its last call began
	durable map[string]bool      // workspaces the stored entry lists
	version int64
	written time.Time // when the entry was last written (its heartbeat)
}

// New makes an instance's journal (every 0: DefaultEvery). It journals
// nothing until its first Beat, so tools that run the write path without
// the background work (the seed, the harness's dataset) leave no entry.
func New(every time.Duration) *Journal {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Journal{id: store.NewID(), every: every, now: time.Now,
		calls: map[*Call]bool{}, lately: map[string]time.Time{}, durable: map[string]bool{}}
}

// Every is how often Beat should run.
func (j *Journal) Every() time.Duration { return j.every }

// Call is a write call under way (Begin).
type Call struct {
	j      *Journal
	ws     string
	start  time.Time
	failed bool
	end    time.Time
}

// Begin journals a write call in tn's workspace, before it draws its
// event ids. If the stored entry does not list the workspace yet, it is
// written first: an error then means the call must not go on.
func (j *Journal) Begin(ctx context.Context, tn store.Tenant) (*Call, error) {
	if j == nil {
		return nil, nil
	}
	j.mu.Lock()
	if !j.active {
		j.mu.Unlock()
		return nil, nil
	}
	c := &Call{j: j, ws: tn.Workspace(), start: j.now()}
	j.calls[c] = true
	j.lately[c.ws] = c.start
	durable := j.durable[c.ws]
	j.mu.Unlock()
	if durable {
		return c, nil
	}
	if err := j.write(ctx, tn.System(), c.ws); err != nil {
		c.End(true)
		return nil, fmt.Errorf("journal the call: %w", err)
	}
	return c, nil
}

// End ends the call. counted says that every event it stored (if any) is
// counted on its profile; if not, the call stays journaled, failed, for
// Interrupted to hand out.
func (c *Call) End(counted bool) {
	if c == nil {
		return
	}
	j := c.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if counted {
		delete(j.calls, c)
		return
	}
	c.failed, c.end = true, j.now()
}

// Beat rewrites the instance's entry (sys is the system workspace): the
// workspaces of its calls under way or begun within the last interval,
// and the start of the oldest call under way. The first Beat starts the
// journaling.
func (j *Journal) Beat(ctx context.Context, sys store.Tenant) error {
	j.mu.Lock()
	j.active = true
	j.mu.Unlock()
	return j.write(ctx, sys, "")
}

// write stores the entry as the calls stand: for a call that needs
// workspace ws listed (nothing to do if a write just before did it), or
// for a beat (ws ""), which also forgets the workspaces idle for an
// interval. The owner's versions are positive and only grow, so a peer's
// release (which writes negative ones) never matches one it did not read.
func (j *Journal) write(ctx context.Context, sys store.Tenant, ws string) error {
	beat := ws == ""
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	if !beat && j.durable[ws] {
		j.mu.Unlock()
		return nil
	}
	now := j.now()
	e := entry{ID: j.id, SafeBefore: now, Heartbeat: now, Every: j.every.Milliseconds()}
	inFlight := map[string]bool{}
	for c := range j.calls {
		inFlight[c.ws] = true
		if c.start.Before(e.SafeBefore) {
			e.SafeBefore = c.start
		}
	}
	for ws, at := range j.lately {
		if beat && !inFlight[ws] && now.Sub(at) > j.every {
			// Dropped from the entry: from here on a call in it writes
			// the entry again before going on.
			delete(j.lately, ws)
			delete(j.durable, ws)
			continue
		}
		e.Workspaces = append(e.Workspaces, ws)
	}
	j.version++
	e.Version = j.version
	j.mu.Unlock()
	slices.Sort(e.Workspaces)
	e.SafeBefore, e.Heartbeat = e.SafeBefore.UTC().Truncate(time.Millisecond), e.Heartbeat.UTC().Truncate(time.Millisecond)

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := sys.C(Entries).Put(wctx, e); err != nil {
		return fmt.Errorf("write the ingest journal: %w", err)
	}
	j.mu.Lock()
	for _, ws := range e.Workspaces {
		j.durable[ws] = true
	}
	j.written = now
	j.mu.Unlock()
	return nil
}

// ErrStalled refuses to store events for a call of an instance whose
// journal entry is about to look dead to the others (Call.Fresh).
var ErrStalled = errors.New("journal: this instance's entry was not written lately (a stalled process): the call stops before storing its events; retry it")

// Fresh says the call may store its events: this instance's entry was
// written within staleAfter-1 intervals. An instance whose entry goes
// stale is taken for dead; its workspaces are recounted and released,
// and consumers that read events up to the horizon (Horizon) pass its
// calls' ids. A call that stored events after that would leave them
// behind those readers, so a call checks, just before it stores, that
// its instance still looks alive, with an interval to spare for the
// store write itself. (A process frozen between this check and the
// write for that interval is the case left.)
func (c *Call) Fresh() error {
	if c == nil {
		return nil
	}
	j := c.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.active && j.now().Sub(j.written) > (staleAfter-1)*j.every {
		return ErrStalled
	}
	return nil
}

// clockSkew is how far apart the clocks of two instances may be: ids
// drawn on another instance are judged on this one's clock.
const clockSkew = time.Second

// Horizon is the time before which no write call under way, on this
// instance or any other, can still store an event: every event whose id
// was drawn before it (store.IDAt) is stored already, or never will be.
// A consumer that reads events in id order (analytics' rollups) reads up
// to it and misses none. It also returns the workspaces with calls
// lately, on this instance and on the others (their entries), where new
// events are.
//
// Each instance's calls began at or after the safeBefore of its entry as
// last written (a call in a workspace its entry does not list writes the
// entry before drawing ids); the horizon is the earliest of them and of
// this instance's own calls under way, less clockSkew. An instance dead
// with workspaces unreleased holds it back until its calls are recounted
// (Release); one dead with none cannot store anything.
func (j *Journal) Horizon(ctx context.Context, sys store.Tenant) (time.Time, []string, error) {
	now := j.now()
	h := now
	j.mu.Lock()
	for c := range j.calls {
		if c.start.Before(h) {
			h = c.start
		}
	}
	seen := map[string]bool{}
	for ws := range j.lately {
		seen[ws] = true
	}
	j.mu.Unlock()
	entries, err := readEntries(ctx, sys)
	if err != nil {
		return time.Time{}, nil, err
	}
	for _, e := range entries {
		if e.ID == j.id || e.idle(now, staleAfter) && len(e.Workspaces) == 0 {
			continue
		}
		if e.SafeBefore.Before(h) {
			h = e.SafeBefore
		}
		for _, ws := range e.Workspaces {
			seen[ws] = true
		}
	}
	out := slices.Sorted(maps.Keys(seen))
	return h.Add(-clockSkew), out, nil
}

// readEntries reads every instance's entry: one per instance, few.
func readEntries(ctx context.Context, sys store.Tenant) ([]*entry, error) {
	docs, err := sys.C(Entries).Find(ctx, store.Query{Index: EntriesByHeartbeat})
	if err != nil {
		return nil, fmt.Errorf("read the ingest journal: %w", err)
	}
	out := make([]*entry, len(docs))
	for i, d := range docs {
		out[i] = new(entry)
		if err := d.Decode(out[i]); err != nil {
			return nil, fmt.Errorf("decode ingest journal entry: %w", err)
		}
	}
	return out, nil
}

// idle says the entry went unwritten for more than n of its owner's
// intervals at now: staleAfter of them, its owner is taken for dead.
func (e *entry) idle(now time.Time, n time.Duration) bool {
	every := time.Duration(e.Every) * time.Millisecond
	return e.Heartbeat.Before(now.Add(-n * every))
}

// Window is a span of stored events that may hold uncounted ones: those
// stored in Workspace with ids drawn in [From, To).
type Window struct {
	Workspace string
	From, To  time.Time

	entry *entry // the dead instance's entry as read; nil for a call of this one
	call  *Call
}

// Interrupted lists the windows to recount: those of instances whose
// entry went stale (dead), then this instance's failed calls. Release
// each once recounted.
func (j *Journal) Interrupted(ctx context.Context, sys store.Tenant) ([]Window, error) {
	now := j.now()
	entries, err := readEntries(ctx, sys)
	if err != nil {
		return nil, err
	}
	var out []Window
	for _, e := range entries {
		if e.ID == j.id || !e.idle(now, staleAfter) {
			continue
		}
		if len(e.Workspaces) == 0 {
			if e.idle(now, forgetAfter) {
				if err := forget(ctx, sys, e); err != nil {
					return nil, err
				}
			}
			continue
		}
		// Its calls drew their ids before it died, so before now.
		for _, ws := range e.Workspaces {
			out = append(out, Window{Workspace: ws, From: e.SafeBefore, To: now, entry: e})
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for c := range j.calls {
		if c.failed {
			out = append(out, Window{Workspace: c.ws, From: c.start, To: c.end.Add(time.Millisecond), call: c})
		}
	}
	return out, nil
}

// forget removes a dead instance's emptied entry, unless it was written
// since it was read (its owner was only stalled).
func forget(ctx context.Context, sys store.Tenant, read *entry) error {
	var e entry
	err := sys.C(Entries).Get(ctx, read.ID, &e)
	if errors.Is(err, store.ErrNotFound) || err == nil && (e.Version != read.Version || len(e.Workspaces) > 0) {
		return nil
	}
	if err == nil {
		err = sys.C(Entries).Delete(ctx, e.ID)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove ingest journal entry %s: %w", read.ID, err)
	}
	return nil
}

// Release forgets a window recounted: a failed call of this instance
// ends; a dead instance's entry loses the workspace, unless its owner
// wrote it since it was read (alive after all: its entry stays as it
// wrote it). An entry left with no workspace is removed later
// (Interrupted). Releasing a window twice is harmless.
func (j *Journal) Release(ctx context.Context, sys store.Tenant, w Window) error {
	if w.call != nil {
		j.mu.Lock()
		delete(j.calls, w.call)
		j.mu.Unlock()
		return nil
	}
	if w.entry == nil {
		return nil
	}
	c := sys.C(Entries)
	for attempt := 0; attempt < 10; attempt++ {
		var e entry
		err := c.Get(ctx, w.entry.ID, &e)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read ingest journal entry %s: %w", w.entry.ID, err)
		}
		if !e.Heartbeat.Equal(w.entry.Heartbeat) || !slices.Contains(e.Workspaces, w.Workspace) {
			return nil // written by its owner since, or released already
		}
		prev := e.Version
		e.Workspaces = slices.DeleteFunc(e.Workspaces, func(ws string) bool { return ws == w.Workspace })
		// Negative: never a version the owner writes (write).
		e.Version = -(max(prev, -prev) + 1)
		err = c.Replace(ctx, e, prev)
		if !errors.Is(err, store.ErrConflict) {
			if err != nil {
				return fmt.Errorf("release ingest journal entry %s: %w", e.ID, err)
			}
			return nil
		}
		// Another workspace released meanwhile, or the owner wrote: read again.
	}
	return fmt.Errorf("release ingest journal entry %s: too much contention", w.entry.ID)
}

// Close removes the instance's entry at a clean shutdown, when no call
// is under way (a failed call not recounted keeps it, for the next start
// or another instance to recount).
func (j *Journal) Close(ctx context.Context, sys store.Tenant) error {
	if j == nil {
		return nil
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.active || len(j.calls) > 0 {
		return nil
	}
	j.active = false
	if err := sys.C(Entries).Delete(ctx, j.id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove the ingest journal entry: %w", err)
	}
	return nil
}
