package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
)

type paged struct {
	ID      string `bson:"_id"`
	Version int64  `bson:"version"`
	Created int64  `bson:"created"`
	Seen    int64  `bson:"seen"`
	Body    string `bson:"body"`
}

// logFrames is how many frames the write-ahead log holds now.
func logFrames(t *testing.T, b *Backend) int {
	t.Helper()
	b.ckMu.Lock() // as the checkpointer does: a restart beside it would be refused
	defer b.ckMu.Unlock()
	var busy, frames, copied int
	if err := b.ck.QueryRowContext(t.Context(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	return frames
}

// A compare-and-swap that leaves an indexed field as it was does not
// rewrite that field's index entry: the pages it dirties, which the
// commit writes to the log, are the document's alone.
func TestReplaceRewritesOnlyChangedIndexEntries(t *testing.T) {
	b := newBackend(t, t.TempDir())
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs", Indexes: []store.Index{
		{Name: "by_created", Fields: []string{"created"}},
		{Name: "by_seen", Fields: []string{"seen"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Tenant("ws").C("docs")
	const n = 4000
	docs := make([]any, n)
	for i := range docs {
		// Index keys in another order than the ids, so that the entries
		// of neighbouring documents lie on different index pages.
		docs[i] = paged{ID: fmt.Sprintf("d%05d", i), Created: int64(i*7919) % n, Seen: int64(i*104729) % n, Body: "x"}
	}
	if _, err := c.InsertMany(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
	// The first 100 documents (neighbours in the table, scattered in the
	// indexes), in one group: the pages that group dirties.
	replaceEvery := func(change func(*paged)) int {
		b.ckMu.Lock()
		_, err := b.ck.ExecContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`)
		b.ckMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		before := logFrames(t, b)
		release := (&groupEnv{t: t, b: b}).hold()
		var wg sync.WaitGroup
		for i := range 100 {
			d := docs[i].(paged)
			wg.Go(func() {
				next := d
				next.Version++
				change(&next)
				if err := c.Replace(context.Background(), next, d.Version); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(50 * time.Millisecond) // the writes queue behind the held one
		release()
		wg.Wait()
		for i := range 100 {
			d := docs[i].(paged)
			d.Version++
			change(&d)
			docs[i] = d
		}
		return logFrames(t, b) - before
	}
	// The first round prepares the statement for a body-only change.
	replaceEvery(func(p *paged) { p.Body += "y" })
	bodyOnly := replaceEvery(func(p *paged) { p.Body += "y" })
	indexed := replaceEvery(func(p *paged) { p.Seen += n; p.Created += n })
	t.Logf("log frames: body only %d, both indexed fields %d", bodyOnly, indexed)
	if bodyOnly*4 > indexed {
		t.Fatalf("a body-only change wrote %d frames, one of both indexed fields %d: unchanged index entries were rewritten", bodyOnly, indexed)
	}
	// And the indexes say what the documents say.
	for _, q := range []struct {
		index string
		value int64
		want  string
	}{{"by_seen", docs[40].(paged).Seen, "d00040"}, {"by_created", docs[80].(paged).Created, "d00080"}, {"by_seen", docs[400].(paged).Seen, "d00400"}} {
		got, err := c.Find(t.Context(), store.Query{Index: q.index, Eq: []any{q.value}})
		if err != nil || len(got) != 1 {
			t.Fatalf("%s = %d: %d documents, %v", q.index, q.value, len(got), err)
		}
		var d paged
		if err := got[0].Decode(&d); err != nil || d.ID != q.want {
			t.Fatalf("%s = %d: %+v %v", q.index, q.value, d, err)
		}
	}
}

// An idle writer restarts a long log (told so by the checkpointer), and
// only once it has been idle for idleRestart.
func TestIdleWriterRestartsALongLog(t *testing.T) {
	b := newBackend(t, t.TempDir())
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs"}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Tenant("ws").C("docs")
	if err := c.Insert(t.Context(), paged{ID: "a", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * checkpointEvery) // the checkpointer has looked, and rests: no new group
	// As the checkpointer says it after a long burst.
	b.logFrames.Store(walRestartPages)
	b.longLog <- struct{}{}
	deadline := time.Now().Add(2 * time.Second)
	for b.logFrames.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle writer did not restart a long log")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Under a queue that never empties the writer still restarts the log,
// once it is very long.
func TestLogRestartsUnderAFullQueue(t *testing.T) {
	b := newBackend(t, t.TempDir())
	b.restartFrames, b.forceFrames = 500, 2000
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs"}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Tenant("ws").C("docs")
	body := string(make([]byte, 2000))
	var (
		mu    sync.Mutex
		peak  int
		write sync.WaitGroup
	)
	for w := range 8 {
		write.Go(func() {
			for batch := range 40 {
				docs := make([]any, 50)
				for i := range docs {
					docs[i] = paged{ID: fmt.Sprintf("w%d-%03d-%02d", w, batch, i), Body: body}
				}
				if _, err := c.InsertMany(t.Context(), docs); err != nil {
					t.Error(err)
					return
				}
				if w == 0 && batch%4 == 0 {
					mu.Lock()
					peak = max(peak, logFrames(t, b))
					mu.Unlock()
				}
			}
		})
	}
	write.Wait()
	t.Logf("longest log seen: %d frames", peak)
	// Unrestarted, the log ends at about 20,700 frames; restarted, it may
	// still overshoot forceFrames by what the writers add between two
	// looks of the checkpointer.
	if peak >= 10000 {
		t.Fatalf("the log grew to %d frames (forced restart from %d)", peak, b.forceFrames)
	}
}

// ReplaceOver trusts the document it is told only at the expected version:
// the indexes follow every change, a stale stored document changes
// nothing, and the compare-and-swap still refuses a stale version.
func TestReplaceOver(t *testing.T) {
	b := newBackend(t, t.TempDir())
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs", Indexes: []store.Index{
		{Name: "by_seen", Fields: []string{"seen"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Tenant("ws").C("docs")
	ctx := t.Context()
	v1, err := c.InsertStored(ctx, paged{ID: "a", Version: 1, Seen: 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := func(v int64) []string {
		t.Helper()
		docs, err := c.Find(ctx, store.Query{Index: "by_seen", Eq: []any{v}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range docs {
			var p paged
			if err := d.Decode(&p); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, fmt.Sprintf("%s@%d", p.ID, p.Version))
		}
		return ids
	}
	v2, err := c.ReplaceOver(ctx, paged{ID: "a", Version: 2, Seen: 20}, 1, v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := seen(20); len(got) != 1 || got[0] != "a@2" || len(seen(10)) != 0 {
		t.Fatalf("after a change of seen: 20 → %v, 10 → %v", got, seen(10))
	}
	// Told version 1's document while replacing version 2: it is not
	// believed (seen would look unchanged at 10), the row is read instead.
	if _, err := c.ReplaceOver(ctx, paged{ID: "a", Version: 3, Seen: 10}, 2, v1); err != nil {
		t.Fatal(err)
	}
	if got := seen(10); len(got) != 1 || got[0] != "a@3" || len(seen(20)) != 0 {
		t.Fatalf("after a stale stored document: 10 → %v, 20 → %v", got, seen(20))
	}
	// A stale expected version is a conflict, whatever it is told.
	if _, err := c.ReplaceOver(ctx, paged{ID: "a", Version: 3, Seen: 30}, 2, v2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if _, err := c.ReplaceOver(ctx, paged{ID: "b", Version: 2}, 1, v1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing document: %v", err)
	}
	if got := seen(10); len(got) != 1 || got[0] != "a@3" {
		t.Fatalf("refused writes changed the index: %v", got)
	}
	// Same id and version, other content: c deleted and created again.
	// Told the first c, the write still leaves the index right.
	c1, err := c.InsertStored(ctx, paged{ID: "c", Version: 1, Seen: 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InsertStored(ctx, paged{ID: "c", Version: 1, Seen: 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReplaceOver(ctx, paged{ID: "c", Version: 2, Seen: 40}, 1, c1); err != nil {
		t.Fatal(err)
	}
	if got := seen(40); len(got) != 1 || got[0] != "c@2" || len(seen(50)) != 0 {
		t.Fatalf("after a write told an older c: 40 → %v, 50 → %v", got, seen(50))
	}
}

// Reads over the primary key (store.ByID) use it, whatever indexes the
// collection declares: the planner, without statistics, preferred a
// declared index for `ws = ?` and scanned the workspace's entries (1.9 s
// for 50 memberships by id at 700,000 rows, against 1 ms).
// In a rowid table (large documents) the id's own unique index serves.
func TestByIDReadsUseThePrimaryKey(t *testing.T) {
	for _, large := range []bool{false, true} {
		t.Run(fmt.Sprint("large=", large), func(t *testing.T) { byIDReads(t, large) })
	}
}

func byIDReads(t *testing.T, large bool) {
	b := newBackend(t, t.TempDir())
	if _, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs", LargeDocuments: large, Indexes: []store.Index{
		{Name: "by_seen", Fields: []string{"seen"}},
	}}}); err != nil {
		t.Fatal(err)
	}
	info, err := b.coll("docs")
	if err != nil {
		t.Fatal(err)
	}
	key := "PRIMARY KEY"
	if large {
		key = "USING INDEX sqlite_autoindex_docs_1 (id"
	}
	byID := store.Index{Name: store.ByID, Fields: []string{"_id"}, Unique: true}
	in := make([]any, 50)
	for i := range in {
		in[i] = fmt.Sprintf("id-%02d", i)
	}
	for name, q := range map[string]store.ResolvedQuery{
		"in":    {Index: byID, In: in},
		"range": {Index: byID, RangeFrom: &store.RangeEdge{Value: "a/", Inclusive: true}, RangeTo: &store.RangeEdge{Value: "a0"}},
		"desc":  {Index: byID, RangeFrom: &store.RangeEdge{Value: "a"}, Desc: true, Limit: 10},
	} {
		for _, what := range []selectWhat{selectDocs, selectCount, selectIDs} {
			query, args, err := buildQuery(info, q, what)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := b.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, append([]any{"ws"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var plan strings.Builder
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(detail + "; ")
			}
			rows.Close()
			if !strings.Contains(plan.String(), key) {
				t.Errorf("%s (%d): plan %q for %s", name, what, plan.String(), query)
			}
		}
	}
}
