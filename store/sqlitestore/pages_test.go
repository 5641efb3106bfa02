package sqlitestore

import (
	"context"
	"fmt"
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
		if _, err := b.ck.ExecContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
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

// Under steady reads and writes the log is restarted once long, instead
// of growing to the writer's backstop, from where every commit would
// checkpoint on the writer.
func TestLogRestartsUnderSteadyReads(t *testing.T) {
	b := newBackend(t, t.TempDir())
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs"}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Tenant("ws").C("docs")
	ctx, stop := context.WithCancel(t.Context())
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for ctx.Err() == nil {
				if _, err := c.Find(ctx, store.Query{Index: store.ByID, Limit: 50, Desc: true}); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	body := string(make([]byte, 2000))
	peak := 0
	// About 3 × walRestartPages frames of log in all.
	for batch := range 250 {
		docs := make([]any, 100)
		for i := range docs {
			docs[i] = paged{ID: fmt.Sprintf("b%04d-%03d", batch, i), Body: body}
		}
		if _, err := c.InsertMany(t.Context(), docs); err != nil {
			t.Fatal(err)
		}
		if batch%10 == 0 {
			peak = max(peak, logFrames(t, b))
		}
	}
	stop()
	readers.Wait()
	t.Logf("longest log seen: %d frames", peak)
	if peak >= 2*walRestartPages {
		t.Fatalf("the log grew to %d frames (restart from %d): it was not restarted", peak, walRestartPages)
	}
}

// Under a queue that never empties the writer still restarts the log,
// once it is very long.
func TestLogRestartsUnderAFullQueue(t *testing.T) {
	b := newBackend(t, t.TempDir())
	b.restartFrames, b.forceFrames = 500, 3000
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
	if peak >= 2*int(b.forceFrames) {
		t.Fatalf("the log grew to %d frames (forced restart from %d)", peak, b.forceFrames)
	}
}
