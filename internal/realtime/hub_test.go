package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	b, err := sqlitestore.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), b, Collections)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

func newHub(t testing.TB, st *store.Store, opt Options) *Hub {
	t.Helper()
	if opt.Poll == 0 {
		opt.Poll = 10 * time.Millisecond
	}
	h := NewHub(st, opt)
	t.Cleanup(h.Close)
	return h
}

func publish(t testing.TB, h *Hub, tn store.Tenant, kind, profileID string) {
	t.Helper()
	if err := h.Publish(t.Context(), tn, Change{Kind: kind, ProfileID: profileID}); err != nil {
		t.Fatal(err)
	}
}

// recv waits for the next change, failing after d.
// outboxDocs counts tn's outbox documents.
func outboxDocs(t testing.TB, tn store.Tenant) int64 {
	t.Helper()
	n, err := tn.C(Changes).Count(t.Context(), store.Query{Index: ChangesBySeq})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func recv(t testing.TB, ch <-chan Change, d time.Duration) Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return c
	case <-time.After(d):
		t.Fatal("no change within", d)
	}
	return Change{}
}

// quiet checks nothing more arrives within d.
func quiet(t testing.TB, ch <-chan Change, d time.Duration) {
	t.Helper()
	select {
	case c, ok := <-ch:
		if ok {
			t.Fatalf("unexpected change %s %s", c.Kind, c.ProfileID)
		}
	case <-time.After(d):
	}
}

func TestLocalPublishIsDeliveredAtOnce(t *testing.T) {
	st := openStore(t)
	h := newHub(t, st, Options{Poll: time.Hour}) // the tailer never runs
	tn := st.Tenant("ws1")
	ch, cancel := h.Subscribe("ws1", func(c Change) bool { return c.ProfileID == "p1" }, "")
	defer cancel()
	publish(t, h, tn, TimelineAppended, "p2")
	start := time.Now()
	if err := h.Publish(t.Context(), tn, Change{Kind: TimelineAppended, ProfileID: "p1", Payload: map[string]any{PayloadItemIDs: []string{"e1"}}}); err != nil {
		t.Fatal(err)
	}
	c := recv(t, ch, time.Second)
	if c.ProfileID != "p1" || c.Kind != TimelineAppended || c.WorkspaceID != "ws1" || c.ID == "" || c.Seq != c.ID {
		t.Fatalf("got %+v", c)
	}
	if got := c.Strings(PayloadItemIDs); len(got) != 1 || got[0] != "e1" {
		t.Fatalf("item ids %v", got)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("local delivery took %v", d)
	}
	quiet(t, ch, 50*time.Millisecond)
	// It is in the outbox too.
	if n := outboxDocs(t, tn); n != 2 {
		t.Fatalf("outbox has %d, want 2", n)
	}
}

func TestSecondHubDeliversByTailing(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h2 := newHub(t, st, Options{})
	tn := st.Tenant("ws1")
	ch, cancel := h2.Subscribe("ws1", nil, "")
	defer cancel()
	publish(t, h1, tn, ProfileUpdated, "p1")
	c := recv(t, ch, 2*time.Second)
	if c.ProfileID != "p1" || c.Kind != ProfileUpdated {
		t.Fatalf("got %+v", c)
	}
	// Its own changes come once (locally), not again from the tail.
	publish(t, h2, tn, ProfileUpdated, "p2")
	if c := recv(t, ch, time.Second); c.ProfileID != "p2" {
		t.Fatalf("got %+v", c)
	}
	quiet(t, ch, 200*time.Millisecond)
}

func TestResumeAfter(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h2 := newHub(t, st, Options{})
	tn := st.Tenant("ws1")
	first, cancel := h1.Subscribe("ws1", nil, "")
	var got []Change
	for i := range 5 {
		publish(t, h1, tn, TimelineAppended, fmt.Sprint("p", i))
		got = append(got, recv(t, first, time.Second))
	}
	cancel()
	if _, ok := <-first; ok {
		t.Fatal("cancel did not close the channel")
	}

	replayed := []string{"p2", "p4"}
	for round, h := range []*Hub{h1, h2} { // the same instance, then another
		ch, cancel := h.Subscribe("ws1", func(c Change) bool { return c.ProfileID != "p3" }, got[1].ID)
		for _, want := range replayed {
			if c := recv(t, ch, time.Second); c.ProfileID != want {
				t.Fatalf("round %d replay: got %s, want %s", round, c.ProfileID, want)
			}
		}
		live := fmt.Sprint("live", round)
		publish(t, h1, tn, TimelineAppended, live)
		if c := recv(t, ch, 2*time.Second); c.ProfileID != live {
			t.Fatalf("round %d live: got %s", round, c.ProfileID)
		}
		quiet(t, ch, 700*time.Millisecond) // past a sweep: nothing comes twice
		cancel()
		replayed = append(replayed, live)
	}
}

func lastID(t *testing.T, tn store.Tenant) string {
	docs, err := tn.C(Changes).Find(t.Context(), store.Query{Index: ChangesBySeq, Desc: true, Limit: 1})
	if err != nil || len(docs) != 1 {
		t.Fatalf("last change: %v", err)
	}
	b, err := decodeBatch(docs[0].Raw)
	if err != nil || len(b.Changes) == 0 {
		t.Fatalf("last change: %v", err)
	}
	return b.Changes[len(b.Changes)-1].ID
}

// A change committed late (its id minted before changes already read)
// is still delivered, once; concurrent publishers on two instances lose
// nothing and duplicate nothing.
func TestNoGapsOrDuplicatesAcrossOverlap(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h3 := newHub(t, st, Options{})
	// The subscriber's buffer holds the whole burst: on a loaded machine
	// one poll can deliver all 400 changes before this goroutine runs, and
	// dropping a slow subscriber is another test's subject.
	h2 := newHub(t, st, Options{Sweep: 100 * time.Millisecond, Buffer: 1000})
	tn := st.Tenant("ws1")
	ch, cancel := h2.Subscribe("ws1", nil, "")
	defer cancel()

	// Late commit: id minted, others committed and read, then it lands.
	lateID := store.NewID()
	time.Sleep(5 * time.Millisecond)
	publish(t, h1, tn, ProfileUpdated, "early")
	if c := recv(t, ch, time.Second); c.ProfileID != "early" {
		t.Fatalf("got %s", c.ProfileID)
	}
	time.Sleep(50 * time.Millisecond) // the tailer's cursor is past lateID now
	late := Change{ID: lateID, Seq: lateID, Kind: ProfileUpdated, ProfileID: "late", Origin: "elsewhere", At: time.Now()}
	if err := tn.C(Changes).Insert(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, ch, time.Second); c.ProfileID != "late" {
		t.Fatalf("got %s", c.ProfileID)
	}

	const writers, each = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		h := h1
		if w%2 == 1 {
			h = h3
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := h.Publish(context.Background(), tn, Change{Kind: TimelineAppended, ProfileID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	for len(seen) < writers*each {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("dropped")
			}
			seen[c.ProfileID]++
			if seen[c.ProfileID] > 1 {
				t.Fatalf("duplicate %s", c.ProfileID)
			}
		case <-deadline:
			t.Fatalf("got %d of %d", len(seen), writers*each)
		}
	}
	wg.Wait()
	quiet(t, ch, 300*time.Millisecond)
}

func TestWorkspaceIsolation(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h2 := newHub(t, st, Options{})
	a, cancelA := h2.Subscribe("ws-a", nil, "")
	defer cancelA()
	local, cancelL := h1.Subscribe("ws-a", nil, "")
	defer cancelL()
	publish(t, h1, st.Tenant("ws-b"), ProfileUpdated, "b1")
	publish(t, h1, st.Tenant("ws-a"), ProfileUpdated, "a1")
	if c := recv(t, a, 2*time.Second); c.ProfileID != "a1" || c.WorkspaceID != "ws-a" {
		t.Fatalf("got %+v", c)
	}
	if c := recv(t, local, time.Second); c.ProfileID != "a1" {
		t.Fatalf("got %+v", c)
	}
	quiet(t, a, 200*time.Millisecond)
	quiet(t, local, 50*time.Millisecond)
	// Resuming cannot read another workspace's outbox either.
	r, cancelR := h2.Subscribe("ws-a", nil, "0")
	defer cancelR()
	if c := recv(t, r, time.Second); c.ProfileID != "a1" {
		t.Fatalf("got %+v", c)
	}
	quiet(t, r, 200*time.Millisecond)
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	st := openStore(t)
	h := newHub(t, st, Options{Buffer: 4})
	tn := st.Tenant("ws1")
	slow, cancelSlow := h.Subscribe("ws1", nil, "")
	defer cancelSlow()
	fast, cancelFast := h.Subscribe("ws1", nil, "")
	defer cancelFast()
	start := time.Now()
	for i := range 10 {
		publish(t, h, tn, ProfileUpdated, fmt.Sprint("p", i))
		recv(t, fast, time.Second)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing took %v", d)
	}
	n := 0
	for range slow {
		n++
	}
	if n != 4 {
		t.Fatalf("slow subscriber got %d before being closed, want its buffer (4)", n)
	}
	if got := h.Subscribers(); got != 1 {
		t.Fatalf("%d subscribers left, want 1", got)
	}
}

// oldChanges inserts n changes minted age ago into tn's outbox.
func oldChanges(t *testing.T, tn store.Tenant, n int, age time.Duration) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		c := Change{ID: fmt.Sprintf("%s-7000-8000-%012d", floorID(time.Now().Add(-age).UnixMilli()), i), Kind: ProfileUpdated, ProfileID: "old"}
		c.Seq = c.ID
		docs[i] = c
	}
	errs, err := tn.C(Changes).InsertMany(t.Context(), docs)
	if err = errors.Join(append(errs, err)...); err != nil {
		t.Fatal(err)
	}
}

// Prune deletes in bounded batches until everything older is gone, and
// keeps what is newer and other workspaces' changes.
func TestPrune(t *testing.T) {
	st := openStore(t)
	h := newHub(t, st, Options{PruneEvery: -1})
	tn := st.Tenant("ws1")
	oldChanges(t, tn, 2*pruneBatch+5, 48*time.Hour)
	oldChanges(t, st.Tenant("ws2"), 3, 48*time.Hour)
	publish(t, h, tn, ProfileUpdated, "new")
	if n, err := Prune(t.Context(), tn, time.Now().Add(-24*time.Hour), 7); err != nil || n != 7 {
		t.Fatalf("pruned %d (%v) with limit 7", n, err)
	}
	n, err := Prune(t.Context(), tn, time.Now().Add(-24*time.Hour), 0)
	if err != nil || n != 2*pruneBatch-2 {
		t.Fatalf("pruned %d (%v), want %d", n, err, 2*pruneBatch-2)
	}
	if left := outboxDocs(t, tn); left != 1 {
		t.Fatalf("%d changes left, want the new one", left)
	}
	if left := outboxDocs(t, st.Tenant("ws2")); left != 3 {
		t.Fatalf("other workspace: %d changes left, want 3", left)
	}
}

// The hub prunes the workspaces it writes to, every PruneEvery, to its
// Retention.
func TestHubPrunesToRetention(t *testing.T) {
	st := openStore(t)
	h := newHub(t, st, Options{Retention: time.Minute, PruneEvery: 20 * time.Millisecond})
	tn := st.Tenant("ws1")
	oldChanges(t, tn, 50, 2*time.Minute)
	publish(t, h, tn, ProfileUpdated, "new")
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := outboxDocs(t, tn)
		if left == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes left after 5 s, want the new one only", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIDTime(t *testing.T) {
	id := store.NewID()
	ms, ok := idTime(id)
	if !ok || time.Since(time.UnixMilli(ms)) > time.Second {
		t.Fatalf("idTime(%s) = %d %v", id, ms, ok)
	}
	if f := floorID(ms); !(f <= id && floorID(ms+1) > id) {
		t.Fatalf("floor %s, id %s", f, id)
	}
}
