package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
)

// groupEnv is a backend with one collection "docs" and a way to hold the
// writer busy, so that the writes queued meanwhile form one group.
type groupEnv struct {
	t  *testing.T
	b  *Backend
	st *store.Store
	c  store.Collection
}

func newGroupEnv(t *testing.T) *groupEnv {
	b := newBackend(t, t.TempDir())
	st, err := store.Open(t.Context(), b, []store.CollectionSpec{{Name: "docs", Indexes: []store.Index{{Name: "by_name", Fields: []string{"name"}, Unique: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	return &groupEnv{t: t, b: b, st: st, c: st.Tenant("ws").C("docs")}
}

type doc struct {
	ID      string `bson:"_id"`
	Version int64  `bson:"version"`
	Name    string `bson:"name"`
}

// hold occupies the writer until the returned func is called.
func (e *groupEnv) hold() (release func()) {
	started, stop := make(chan struct{}), make(chan struct{})
	go e.b.write(context.Background(), func(*sql.Tx) error { //nolint:errcheck // a no-op write
		close(started)
		<-stop
		return nil
	})
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(stop) }) }
	e.t.Cleanup(release) // a failed test must not leave Close waiting
	return release
}

// run makes the writes side by side and returns their answers.
func (e *groupEnv) run(writes ...func() error) []error {
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
	}
	wg.Wait()
	return errs
}

func (e *groupEnv) insert(id, name string) func() error {
	return func() error { return e.c.Insert(context.Background(), doc{ID: id, Version: 1, Name: name}) }
}

func (e *groupEnv) has(id string) bool {
	var d doc
	err := e.c.Get(context.Background(), id, &d)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// runQueued queues the writes in order behind a held writer, releases
// it and returns their answers: one group, in that order.
func (e *groupEnv) runQueued(release func(), writes ...func() error) []error {
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
		waitParked(e.t, e.b, int64(i+1))
	}
	release()
	wg.Wait()
	return errs
}

// waitParked waits until n writes wait on the writer's queue.
func waitParked(t *testing.T, b *Backend, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes waiting, want %d", b.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Writes queued together commit in one transaction, and each gets its
// own answer: a duplicate key refuses one write only.
func TestGroupCommitAnswersEachWrite(t *testing.T) {
	e := newGroupEnv(t)
	if err := e.insert("a", "taken")(); err != nil {
		t.Fatal(err)
	}
	g0, w0 := e.b.GroupStats()
	release := e.hold()
	done := make(chan []error)
	go func() {
		done <- e.run(e.insert("b", "b"), e.insert("c", "taken"), e.insert("d", "d"), e.insert("a", "a2"))
	}()
	waitParked(t, e.b, 4)
	release()
	errs := <-done
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("good inserts failed: %v", errs)
	}
	var dk *store.DuplicateKeyError
	if !errors.As(errs[1], &dk) || dk.Index != "by_name" {
		t.Errorf("insert of a taken name: %v, want duplicate by_name", errs[1])
	}
	if !errors.As(errs[3], &dk) || dk.Index != "_id" {
		t.Errorf("insert of a taken id: %v, want duplicate _id", errs[3])
	}
	for id, want := range map[string]bool{"b": true, "c": false, "d": true} {
		if e.has(id) != want {
			t.Errorf("doc %s stored = %v, want %v", id, !want, want)
		}
	}
	g1, w1 := e.b.GroupStats()
	if g1-g0 != 2 || w1-w0 != 5 {
		t.Errorf("groups %d for %d writes, want the held write alone then one group of 4", g1-g0, w1-w0)
	}
}

// A write failing in the engine rolls its group back; the other writes
// run again alone and land, the failed one leaves nothing.
func TestGroupCommitEngineFailureIsolated(t *testing.T) {
	e := newGroupEnv(t)
	// Statements are prepared on the writer's connection before a write
	// queues: prepare the insert first, while the writer is free.
	if err := e.insert("warm", "warm")(); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	release := e.hold()
	// Queued one after the other, so the group runs them in this order:
	// a write before the failing one and one after it.
	writes := []func() error{e.insert("a", "a"), func() error {
		return e.b.write(context.Background(), func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO "docs" (ws, id, version, doc, "f_name") VALUES ('ws', 'x', 1, x'00', 'x')`); err != nil {
				return err
			}
			return boom
		})
	}, e.insert("b", "b")}
	errs := e.runQueued(release, writes...)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("writes beside the failing one: %v", errs)
	}
	if !errors.Is(errs[1], boom) {
		t.Fatalf("failing write answered %v, want its own error", errs[1])
	}
	if !e.has("a") || !e.has("b") {
		t.Error("a write beside the failing one was lost")
	}
	var n int
	if err := e.b.r.QueryRow(`SELECT count(*) FROM "docs" WHERE id = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed write left %d rows (%v)", n, err)
	}
}

// A caller whose context ended before its write started gets its error
// and nothing is written; writes after Close are refused.
func TestGroupCommitCancelAndClose(t *testing.T) {
	e := newGroupEnv(t)
	if err := e.insert("warm", "warm")(); err != nil {
		t.Fatal(err)
	}
	release := e.hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.c.Insert(ctx, doc{ID: "late", Version: 1, Name: "late"}) }()
	waitParked(t, e.b, 1)
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
	if e.has("late") {
		t.Error("a write cancelled before it started was stored")
	}
	if err := e.b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.b.write(context.Background(), func(*sql.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// A write rerun after its group rolled back starts over: a duplicate it
// met in the group (here, a name another write of the group took, which
// then did not land) is not carried into the rerun.
func TestGroupCommitRerunStartsOver(t *testing.T) {
	e := newGroupEnv(t)
	if err := e.insert("warm", "warm")(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.InsertMany(context.Background(), []any{doc{ID: "warm2", Version: 1, Name: "warm2"}}); err != nil {
		t.Fatal(err)
	}
	release := e.hold()
	zctx, cancelZ := context.WithCancel(context.Background())
	defer cancelZ()
	var manyErrs []error
	writes := []func() error{
		func() error { return e.c.Insert(zctx, doc{ID: "z", Version: 1, Name: "shared"}) },
		func() error {
			var err error
			manyErrs, err = e.c.InsertMany(context.Background(), []any{doc{ID: "m", Version: 1, Name: "shared"}})
			return err
		},
		func() error {
			return e.b.write(context.Background(), func(*sql.Tx) error {
				cancelZ() // z will not run again
				return errors.New("disk on fire")
			})
		},
	}
	errs := e.runQueued(release, writes...)
	if !errors.Is(errs[0], context.Canceled) || e.has("z") {
		t.Fatalf("z: %v, stored %v; want cancelled before its rerun", errs[0], e.has("z"))
	}
	if errs[1] != nil || len(manyErrs) != 1 || manyErrs[0] != nil || !e.has("m") {
		t.Fatalf("insert many: %v %v, stored %v; want m stored on its rerun", errs[1], manyErrs, e.has("m"))
	}
}

// The first writes of a store.Together's fns run in one group, even on an
// idle writer: the call waits for one commit. A fn's later write is not
// held. A write is held 5 ms at most, so a scheduler that starts a fn
// later than that splits the group: the test tries a few times.
func TestTogetherSharesOneGroup(t *testing.T) {
	e := newGroupEnv(t)
	ctx := t.Context()
	if err := e.c.Insert(ctx, doc{ID: "pre", Version: 1, Name: "taken"}); err != nil {
		t.Fatal(err)
	}
	for try := range 5 {
		groups, writes := e.b.GroupStats()
		var errs [4]error
		a, c := fmt.Sprint("a", try), fmt.Sprint("c", try)
		store.Together(ctx,
			func(ctx context.Context) { errs[0] = e.c.Insert(ctx, doc{ID: a, Version: 1, Name: a}) },
			func(ctx context.Context) { errs[1] = e.c.Insert(ctx, doc{ID: "b", Version: 1, Name: "taken"}) },
			func(ctx context.Context) {
				if errs[2] = e.c.Insert(ctx, doc{ID: c, Version: 1, Name: c}); errs[2] == nil {
					errs[3] = e.c.Put(ctx, doc{ID: c, Version: 2, Name: c + "'"})
				}
			},
			func(ctx context.Context) {},
		)
		g, w := e.b.GroupStats()
		if errs[0] != nil || !errors.Is(errs[1], store.ErrDuplicateKey) || errs[2] != nil || errs[3] != nil {
			t.Fatalf("answers %v", errs)
		}
		if !e.has(a) || e.has("b") || !e.has(c) {
			t.Fatal("stored documents differ from the answers")
		}
		if w-writes != 4 {
			t.Fatalf("%d writes, want 4", w-writes)
		}
		if g-groups == 2 {
			return
		}
		t.Logf("try %d: 4 writes in %d groups", try, g-groups)
	}
	t.Fatal("the 3 first writes never shared a group")
}

// A Together over a closed store answers each write (and returns).
func TestTogetherAfterClose(t *testing.T) {
	e := newGroupEnv(t)
	if err := e.b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var errs [2]error
	store.Together(t.Context(),
		func(ctx context.Context) { errs[0] = e.c.Insert(ctx, doc{ID: "a", Version: 1, Name: "a"}) },
		func(ctx context.Context) { errs[1] = e.c.Insert(ctx, doc{ID: "b", Version: 1, Name: "b"}) },
	)
	if errs[0] == nil || errs[1] == nil {
		t.Fatalf("answers %v", errs)
	}
}
