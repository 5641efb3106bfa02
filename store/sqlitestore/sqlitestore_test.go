package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/storetest"
)

func newBackend(t testing.TB, dir string) *Backend {
	t.Helper()
	b, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Backend {
		return newBackend(t, t.TempDir())
	})
}

type event struct {
	ID         string    `bson:"_id"`
	Version    int64     `bson:"version"`
	MessageID  string    `bson:"messageId"`
	ProfileID  string    `bson:"profileId"`
	OccurredAt time.Time `bson:"occurredAt"`
	Name       string    `bson:"name"`
	Counter    int64     `bson:"counter"`
}

func TestSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, b, app.Collections)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Tenant("ws").C(timeline.Events)
	at := time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	if err := c.Insert(ctx, event{ID: "e1", Version: 1, MessageID: "m1", ProfileID: "p1", OccurredAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}

	b2 := newBackend(t, dir)
	s2, err := store.Open(ctx, b2, app.Collections)
	if err != nil {
		t.Fatal(err)
	}
	c2 := s2.Tenant("ws").C(timeline.Events)
	var got event
	if err := c2.Get(ctx, "e1", &got); err != nil {
		t.Fatalf("get after reopen: %v", err)
	}
	if !got.OccurredAt.Equal(at) || got.MessageID != "m1" {
		t.Fatalf("after reopen: %+v", got)
	}
	docs, err := c2.Find(ctx, store.Query{Index: timeline.EventsByProfileTime, Eq: []any{"p1"}, Range: &store.Bound{Gte: at}})
	if err != nil || len(docs) != 1 {
		t.Fatalf("find after reopen: %d docs, %v", len(docs), err)
	}
	err = c2.Insert(ctx, event{ID: "e2", MessageID: "m1", ProfileID: "p1", OccurredAt: at})
	var dk *store.DuplicateKeyError
	if !errors.As(err, &dk) || dk.Index != timeline.EventsByMessage {
		t.Fatalf("unique after reopen: %v", err)
	}
}

// A later declaration may index a field nobody extracted yet: the column is
// added and filled from the stored documents.
func TestNewIndexBackfills(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t, t.TempDir())
	v1 := []store.CollectionSpec{{Name: "evs", Indexes: []store.Index{{Name: "by_profile", Fields: []string{"profileId"}}}}}
	s, err := store.Open(ctx, b, v1)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Tenant("ws").C("evs")
	for i := range 5 {
		e := event{ID: fmt.Sprintf("e%d", i), MessageID: fmt.Sprintf("m%d", i%3), ProfileID: "p", Name: fmt.Sprintf("n%d", 4-i)}
		if err := c.Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	v2 := []store.CollectionSpec{{Name: "evs", Indexes: []store.Index{
		{Name: "by_profile", Fields: []string{"profileId"}},
		{Name: "by_name", Fields: []string{"name"}},
	}}}
	s2, err := store.Open(ctx, b, v2)
	if err != nil {
		t.Fatalf("add index: %v", err)
	}
	docs, err := s2.Tenant("ws").C("evs").Find(ctx, store.Query{Index: "by_name", Range: &store.Bound{Lt: "n3"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Raw.Lookup("_id").StringValue())
	}
	if strings.Join(got, ",") != "e4,e3,e2" {
		t.Fatalf("backfilled index order: %v", got)
	}
	// A unique index the existing data violates is refused and leaves the
	// schema unchanged.
	v3 := []store.CollectionSpec{{Name: "evs", Indexes: []store.Index{{Name: "by_msg", Fields: []string{"messageId"}, Unique: true}}}}
	if _, err := store.Open(ctx, b, v3); err == nil {
		t.Fatal("unique index over duplicate data accepted")
	}
	if err := s2.Tenant("ws").C("evs").Insert(ctx, event{ID: "e9", MessageID: "m0"}); err != nil {
		t.Fatalf("insert after refused index: %v", err)
	}
}

// A collection declared with large documents, whose table was made keyed
// by id alone, moves to a rowid table when opened: every document, column
// and index (uniqueness included) comes along, and a second open leaves it.
func TestLargeDocumentsRelayout(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	spec := store.CollectionSpec{Name: "evs", Indexes: []store.Index{
		{Name: "by_profile", Fields: []string{"profileId", "occurredAt"}},
		{Name: "by_msg", Fields: []string{"messageId"}, Unique: true},
	}}
	b := newBackend(t, dir)
	s, err := store.Open(ctx, b, []store.CollectionSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var want []string
	for i := range 300 {
		e := event{ID: fmt.Sprintf("e%03d", i), Version: 1, MessageID: fmt.Sprintf("m%d", i), ProfileID: fmt.Sprintf("p%d", i%3), OccurredAt: at.Add(time.Duration(i) * time.Second), Name: strings.Repeat("x", 1500)}
		if err := s.Tenant("ws").C("evs").Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			want = append(want, e.ID)
		}
	}
	layout := func(b *Backend) string {
		var ddl string
		if err := b.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'evs'`).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		return ddl
	}
	if !strings.Contains(layout(b), "WITHOUT ROWID") {
		t.Fatalf("made without large documents: %s", layout(b))
	}

	spec.LargeDocuments = true
	for round := range 2 {
		s, err := store.Open(ctx, b, []store.CollectionSpec{spec})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		if strings.Contains(layout(b), "WITHOUT ROWID") {
			t.Fatalf("open %d: still %s", round, layout(b))
		}
		c := s.Tenant("ws").C("evs")
		docs, err := c.Find(ctx, store.Query{Index: "by_profile", Eq: []any{"p1"}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range docs {
			var e event
			if err := bson.Unmarshal(d.Raw, &e); err != nil {
				t.Fatal(err)
			}
			if len(e.Name) != 1500 || !e.OccurredAt.Equal(at.Add(time.Duration(len(got)*3+1)*time.Second)) {
				t.Fatalf("open %d: document %s came back as %+v", round, e.ID, e)
			}
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("open %d: by_profile p1 = %v, want %v", round, got, want)
		}
		var dk *store.DuplicateKeyError
		err = c.Insert(ctx, event{ID: fmt.Sprintf("new%d", round), MessageID: "m7"})
		if !errors.As(err, &dk) || dk.Index != "by_msg" {
			t.Fatalf("open %d: unique index after relayout: %v", round, err)
		}
		err = c.Insert(ctx, event{ID: "e007", MessageID: "fresh"})
		if !errors.As(err, &dk) || dk.Index != "_id" {
			t.Fatalf("open %d: taken id after relayout: %v", round, err)
		}
		if err := c.Insert(ctx, event{ID: fmt.Sprintf("new%d", round), MessageID: fmt.Sprintf("fresh%d", round), ProfileID: "p9"}); err != nil {
			t.Fatalf("open %d: insert after relayout: %v", round, err)
		}
		if n, err := c.Count(ctx, store.Query{Index: store.ByID}); err != nil || n != int64(301+round) {
			t.Fatalf("open %d: %d documents (%v)", round, n, err)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t, t.TempDir())
	s, err := store.Open(ctx, b, app.Collections)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Tenant("ws").C(timeline.Events)
	if err := c.Insert(ctx, event{ID: "hot", MessageID: "hot", ProfileID: "p"}); err != nil {
		t.Fatal(err)
	}
	const workers = 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%02d", w)
			if err := c.Insert(ctx, event{ID: id, MessageID: id, ProfileID: "p", OccurredAt: time.Now()}); err != nil {
				errs <- fmt.Errorf("insert %s: %w", id, err)
				return
			}
			// Read-modify-write on one shared document until the CAS wins.
			for attempt := 0; ; attempt++ {
				var cur event
				if err := c.Get(ctx, "hot", &cur); err != nil {
					errs <- fmt.Errorf("get: %w", err)
					return
				}
				cur.Counter++
				cur.Version++
				err := c.Replace(ctx, cur, cur.Version-1)
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrConflict) {
					errs <- fmt.Errorf("replace: %w", err)
					return
				}
				if attempt > 10_000 {
					errs <- errors.New("replace never won")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var hot event
	if err := c.Get(ctx, "hot", &hot); err != nil {
		t.Fatal(err)
	}
	if hot.Counter != workers || hot.Version != workers {
		t.Fatalf("hot doc: counter %d version %d, want %d", hot.Counter, hot.Version, workers)
	}
	n, err := c.Count(ctx, store.Query{Index: timeline.EventsByProfileTime, Eq: []any{"p"}})
	if err != nil || n != workers+1 {
		t.Fatalf("count: %d, %v", n, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t, t.TempDir())
	if _, err := store.Open(ctx, b, app.Collections); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(ctx, timeline.Events, "ws", bson.Raw{1, 2, 3}); !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("garbage bytes: %v", err)
	}
	if _, err := b.Get(ctx, "undeclared", "ws", "x"); !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("undeclared collection: %v", err)
	}
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "messageId", Value: bson.D{{Key: "a", Value: 1}}}})
	if err := b.Insert(ctx, timeline.Events, "ws", doc); !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("document as indexed value: %v", err)
	}
}

// benchEvents fills the events collection with n events over 100 profiles.
func benchEvents(b *testing.B, n int) (store.Collection, time.Time) {
	ctx := context.Background()
	be := newBackend(b, b.TempDir())
	s, err := store.Open(ctx, be, app.Collections)
	if err != nil {
		b.Fatal(err)
	}
	c := s.Tenant("ws").C(timeline.Events)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 5000
	for i := 0; i < n; i += batch {
		docs := make([]any, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			docs = append(docs, benchEvent(j, start))
		}
		errs, err := c.InsertMany(ctx, docs)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return c, start
}

func benchEvent(j int, start time.Time) bson.D {
	return bson.D{
		{Key: "_id", Value: fmt.Sprintf("ev-%08d", j)},
		{Key: "version", Value: int64(1)},
		{Key: "messageId", Value: fmt.Sprintf("msg-%08d", j)},
		{Key: "profileId", Value: fmt.Sprintf("profile-%03d", j%100)},
		{Key: "occurredAt", Value: start.Add(time.Duration(j) * time.Second)},
		{Key: "type", Value: "track"},
		{Key: "name", Value: "Order Completed"},
		{Key: "properties", Value: bson.D{
			{Key: "orderId", Value: fmt.Sprintf("o-%d", j)},
			{Key: "total", Value: float64(j%1000) + 0.99},
			{Key: "currency", Value: "EUR"},
		}},
	}
}

func BenchmarkInsertMany(b *testing.B) {
	ctx := context.Background()
	be := newBackend(b, b.TempDir())
	s, err := store.Open(ctx, be, app.Collections)
	if err != nil {
		b.Fatal(err)
	}
	c := s.Tenant("ws").C(timeline.Events)
	start := time.Now()
	const batch = 1000
	docs := make([]any, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range docs {
			docs[j] = benchEvent(i*batch+j, start)
		}
		errs, err := c.InsertMany(ctx, docs)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "docs/s")
}

func BenchmarkFindPage(b *testing.B) {
	c, start := benchEvents(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Each profile has 1000 events; read a page from the middle.
		q := store.Query{
			Index: timeline.EventsByProfileTime,
			Eq:    []any{fmt.Sprintf("profile-%03d", i%100)},
			Range: &store.Bound{Gte: start.Add(time.Duration(i%50_000) * time.Second)},
			Limit: 50,
			Desc:  i%2 == 1,
		}
		docs, err := c.Find(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(docs) == 0 {
			b.Fatal("empty page")
		}
		// Follow the cursor once, as a client paging would.
		q.After = docs[len(docs)-1].Key
		if _, err := c.Find(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "pages/s")
}

func BenchmarkGet(b *testing.B) {
	c, _ := benchEvents(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m bson.Raw
		if err := c.Get(ctx, fmt.Sprintf("ev-%08d", (i*7919)%100_000), &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	c, _ := benchEvents(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			var m bson.Raw
			if err := c.Get(ctx, fmt.Sprintf("ev-%08d", (i*7919)%100_000), &m); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// One-sided bounds stay within their type bracket, as in MongoDB.
func TestRangeTypeBracket(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t, t.TempDir())
	specs := []store.CollectionSpec{{Name: "mixed", Indexes: []store.Index{{Name: "by_v", Fields: []string{"v"}}}}}
	s, err := store.Open(ctx, b, specs)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Tenant("ws").C("mixed")
	for i, v := range []any{int64(5), 2.5, "a", "m", int64(-1)} {
		if err := c.Insert(ctx, bson.D{{Key: "_id", Value: fmt.Sprint(i)}, {Key: "v", Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(bound store.Bound) int64 {
		t.Helper()
		n, err := c.Count(ctx, store.Query{Index: "by_v", Range: &bound})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for name, tc := range map[string]struct {
		bound store.Bound
		want  int64
	}{
		"string upper": {store.Bound{Lt: "z"}, 2},
		"string lower": {store.Bound{Gte: "b"}, 1},
		"number lower": {store.Bound{Gt: 0}, 2},
		"number upper": {store.Bound{Lte: 100}, 3},
	} {
		if got := count(tc.bound); got != tc.want {
			t.Errorf("%s: got %d, want %d", name, got, tc.want)
		}
	}
}

func TestOpenSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data?dir")
	b := newBackend(t, dir)
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	for db, want := range map[*sql.DB]map[string]string{
		b.w: {"journal_mode": "wal", "busy_timeout": "10000", "synchronous": "1", "query_only": "0", "wal_autocheckpoint": fmt.Sprint(walBackstopPages)},
		b.r: {"journal_mode": "wal", "busy_timeout": "10000", "query_only": "1"},
	} {
		for pragma, v := range want {
			var got string
			if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
				t.Fatalf("%s: %v", pragma, err)
			}
			if got != v {
				t.Errorf("%s = %s, want %s", pragma, got, v)
			}
		}
	}
	if err := b.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
