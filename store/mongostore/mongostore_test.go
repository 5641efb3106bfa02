package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/ferrettest"
	"github.com/halo-cdp/halo/store/mongostore"
	"github.com/halo-cdp/halo/store/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ferretURI is one FerretDB shared by all tests; each backend gets its own
// database so tests stay independent without paying FerretDB's start-up
// per test.
var ferretURI string

func TestMain(m *testing.M) {
	uri, stop, err := ferrettest.StartForMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferretURI = uri
	code := m.Run()
	stop()
	os.Exit(code)
}

var dbSeq atomic.Int64

// engines are the deployments the tests run against: always FerretDB, and
// a real MongoDB when HALO_TEST_MONGODB_URI points at one.
func engines() map[string]string {
	e := map[string]string{"ferretdb": ferretURI}
	if uri := os.Getenv("HALO_TEST_MONGODB_URI"); uri != "" {
		e["mongodb"] = uri
	}
	return e
}

// newBackend opens a backend on a fresh database of uri and drops it when
// the test ends.
func newBackend(t *testing.T, uri string) store.Backend {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("halotest_%d_%d", time.Now().UnixNano()%1e9, dbSeq.Add(1))
	b, err := mongostore.Open(ctx, uri, name)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		dropDatabase(t, uri, name)
	})
	return b
}

// dropDatabase keeps a real MongoDB clean; the backend deliberately has no
// such method.
func dropDatabase(t *testing.T, uri, name string) {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Errorf("connect to drop %s: %v", name, err)
		return
	}
	defer client.Disconnect(ctx)
	if err := client.Database(name).Drop(ctx); err != nil {
		t.Errorf("drop %s: %v", name, err)
	}
}

func forEachEngine(t *testing.T, f func(t *testing.T, newBackend func(t *testing.T) store.Backend)) {
	for name, uri := range engines() {
		t.Run(name, func(t *testing.T) {
			f(t, func(t *testing.T) store.Backend { return newBackend(t, uri) })
		})
	}
}

// TestConformance runs the engine-independent suite.
func TestConformance(t *testing.T) {
	forEachEngine(t, storetest.RunTests)
}

const things = "things"

var thingSpecs = []store.CollectionSpec{{Name: things, Indexes: []store.Index{
	{Name: "by_kind_rank", Fields: []string{"kind", "rank"}},
	{Name: "by_key", Fields: []string{"key"}, Unique: true},
	{Name: "by_at", Fields: []string{"meta.at"}},
}}}

type meta struct {
	At time.Time `bson:"at"`
}

type thing struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId,omitempty"`
	Kind        string `bson:"kind"`
	Rank        int64  `bson:"rank"`
	Key         string `bson:"key"`
	Meta        meta   `bson:"meta"`
	Version     int64  `bson:"version,omitempty"`
	Note        string `bson:"note,omitempty"`
}

func openStore(t *testing.T, b store.Backend) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), b, thingSpecs)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	return s
}

func TestOpenDefaultDatabase(t *testing.T) {
	ctx := context.Background()
	b, err := mongostore.Open(ctx, ferretURI, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if got := b.Database(); got != mongostore.DefaultDatabase {
		t.Errorf("database = %q, want %q", got, mongostore.DefaultDatabase)
	}
	b2, err := mongostore.Open(ctx, strings.TrimSuffix(ferretURI, "/")+"/fromuri", "")
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close(ctx)
	if got := b2.Database(); got != "fromuri" {
		t.Errorf("database = %q, want fromuri", got)
	}
	if _, err := mongostore.Open(ctx, "mongodb://user:secret@host:notaport/", ""); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URI: err = %v, want an error without the password", err)
	}
}

func TestCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		ctx := context.Background()
		b := newBackend(t)
		s := openStore(t, b)
		// Indexes are created idempotently.
		if err := b.EnsureCollections(ctx, thingSpecs); err != nil {
			t.Fatalf("second EnsureCollections: %v", err)
		}
		c := s.Tenant("ws1").C(things)
		at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		a := thing{ID: store.NewID(), Kind: "k", Rank: 1, Key: "a", Meta: meta{At: at}}
		if err := c.Insert(ctx, a); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var got thing
		if err := c.Get(ctx, a.ID, &got); err != nil {
			t.Fatalf("get: %v", err)
		}
		a.WorkspaceID = "ws1"
		if got != a {
			t.Errorf("get = %+v, want %+v", got, a)
		}
		if err := c.Get(ctx, store.NewID(), &got); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get missing: err = %v, want ErrNotFound", err)
		}

		// CAS: the stored document has no version field, which counts as 0.
		a.Note, a.Version = "v1", 1
		if err := c.Replace(ctx, a, 1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("replace at wrong version: err = %v, want ErrConflict", err)
		}
		if err := c.Replace(ctx, a, 0); err != nil {
			t.Fatalf("replace at version 0: %v", err)
		}
		a.Note, a.Version = "v2", 2
		if err := c.Replace(ctx, a, 0); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale replace: err = %v, want ErrConflict", err)
		}
		if err := c.Replace(ctx, a, 1); err != nil {
			t.Fatalf("replace at version 1: %v", err)
		}
		if got, err := get(c, a.ID); err != nil || got != a {
			t.Errorf("after replace: got %+v, %v; want %+v", got, err, a)
		}
		missing := thing{ID: store.NewID(), Kind: "k", Key: "m", Version: 1}
		if err := c.Replace(ctx, missing, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replace missing: err = %v, want ErrNotFound", err)
		}

		// Put inserts, then overwrites.
		p := thing{ID: store.NewID(), Kind: "k", Rank: 2, Key: "p", Meta: meta{At: at}, Note: "first"}
		if err := c.Put(ctx, p); err != nil {
			t.Fatalf("put new: %v", err)
		}
		p.Note = "second"
		if err := c.Put(ctx, p); err != nil {
			t.Fatalf("put existing: %v", err)
		}
		p.WorkspaceID = "ws1"
		if got, err := get(c, p.ID); err != nil || got != p {
			t.Errorf("after put: got %+v, %v; want %+v", got, err, p)
		}

		if err := c.Delete(ctx, p.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := c.Delete(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: err = %v, want ErrNotFound", err)
		}
		if err := c.Get(ctx, p.ID, &got); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get deleted: err = %v, want ErrNotFound", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
}

func TestEnsureCollectionsRefusesRedefinition(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		ctx := context.Background()
		b := newBackend(t)
		openStore(t, b)
		changed := []store.CollectionSpec{{Name: things, Indexes: []store.Index{
			{Name: "by_kind_rank", Fields: []string{"kind", "rank"}},
			{Name: "by_key", Fields: []string{"key"}}, // no longer unique
		}}}
		if err := b.EnsureCollections(ctx, changed); err == nil || !strings.Contains(err.Error(), "by_key") {
			t.Errorf("redefined unique index: err = %v, want an error naming by_key", err)
		}
		moved := []store.CollectionSpec{{Name: things, Indexes: []store.Index{
			{Name: "by_kind_rank", Fields: []string{"rank", "kind"}},
		}}}
		if err := b.EnsureCollections(ctx, moved); err == nil || !strings.Contains(err.Error(), "by_kind_rank") {
			t.Errorf("reordered index: err = %v, want an error naming by_kind_rank", err)
		}
		// A new index next to existing ones is just added.
		added := append(slices.Clone(thingSpecs[0].Indexes), store.Index{Name: "by_note", Fields: []string{"note"}})
		if err := b.EnsureCollections(ctx, []store.CollectionSpec{{Name: things, Indexes: added}}); err != nil {
			t.Errorf("added index: %v", err)
		}
	})
}

// TestHaloSchema declares Halo's real collections, twice, as every start
// of the server does.
func TestHaloSchema(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		b := newBackend(t)
		for range 2 {
			if _, err := store.Open(context.Background(), b, app.Collections); err != nil {
				t.Fatalf("store.Open: %v", err)
			}
		}
	})
}

func wantDup(t *testing.T, what string, err error, index string) {
	t.Helper()
	var de *store.DuplicateKeyError
	if !errors.As(err, &de) || !errors.Is(err, store.ErrDuplicateKey) {
		t.Errorf("%s: err = %v, want *DuplicateKeyError", what, err)
		return
	}
	if de.Collection != things || de.Index != index {
		t.Errorf("%s: duplicate in %s/%s, want %s/%s", what, de.Collection, de.Index, things, index)
	}
}

func TestDuplicates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		ctx := context.Background()
		s := openStore(t, newBackend(t))
		c1, c2 := s.Tenant("ws1").C(things), s.Tenant("ws2").C(things)
		a := thing{ID: store.NewID(), Kind: "k", Key: "a"}
		if err := c1.Insert(ctx, a); err != nil {
			t.Fatal(err)
		}
		wantDup(t, "same _id", c1.Insert(ctx, thing{ID: a.ID, Kind: "k", Key: "other"}), "_id")
		wantDup(t, "same key", c1.Insert(ctx, thing{ID: store.NewID(), Kind: "k", Key: "a"}), "by_key")
		// Unique indexes are per workspace...
		if err := c2.Insert(ctx, thing{ID: store.NewID(), Kind: "k", Key: "a"}); err != nil {
			t.Errorf("same key in another workspace: %v", err)
		}
		// ...but ids are global, and Put must not take over another
		// workspace's document.
		wantDup(t, "same _id in another workspace", c2.Insert(ctx, thing{ID: a.ID, Kind: "k", Key: "z"}), "_id")
		err := c2.Put(ctx, thing{ID: a.ID, Kind: "k", Key: "z", Note: "hijack"})
		wantDup(t, "put over another workspace's _id", err, "_id")
		var got thing
		if err := c1.Get(ctx, a.ID, &got); err != nil || got.Note != "" || got.WorkspaceID != "ws1" {
			t.Errorf("owner's document after foreign put: %+v, %v", got, err)
		}

		b := thing{ID: store.NewID(), Kind: "k", Key: "b"}
		if err := c1.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Key, b.Version = "a", 1
		wantDup(t, "replace onto a taken key", c1.Replace(ctx, b, 0), "by_key")
		wantDup(t, "put onto a taken key", c1.Put(ctx, b), "by_key")
		wantDup(t, "put new doc onto a taken key", c1.Put(ctx, thing{ID: store.NewID(), Kind: "k", Key: "a"}), "by_key")

		errs, err := c1.InsertMany(ctx, []any{
			thing{ID: store.NewID(), Kind: "k", Key: "m1"},
			thing{ID: a.ID, Kind: "k", Key: "m2"},
			thing{ID: store.NewID(), Kind: "k", Key: "a"},
			thing{ID: store.NewID(), Kind: "k", Key: "m1"},
			thing{ID: store.NewID(), Kind: "k", Key: "m4"},
		})
		if err != nil {
			t.Fatalf("insert many: %v", err)
		}
		if len(errs) != 5 {
			t.Fatalf("insert many: %d errors, want 5", len(errs))
		}
		for _, i := range []int{0, 4} {
			if errs[i] != nil {
				t.Errorf("insert many [%d]: %v", i, errs[i])
			}
		}
		wantDup(t, "insert many [1]", errs[1], "_id")
		wantDup(t, "insert many [2]", errs[2], "by_key")
		wantDup(t, "insert many [3]", errs[3], "by_key")
		n, err := c1.Count(ctx, store.Query{Index: "by_key"})
		if err != nil || n != 4 {
			t.Errorf("count after insert many = %d, %v; want 4", n, err)
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		ctx := context.Background()
		be := newBackend(t)
		s := openStore(t, be)
		c1, c2 := s.Tenant("ws1").C(things), s.Tenant("ws2").C(things)
		a := thing{ID: store.NewID(), Kind: "k", Key: "a", Rank: 1}
		if err := c1.Insert(ctx, a); err != nil {
			t.Fatal(err)
		}
		var got thing
		if err := c2.Get(ctx, a.ID, &got); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get from other workspace: err = %v, want ErrNotFound", err)
		}
		a.Version = 1
		if err := c2.Replace(ctx, a, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replace from other workspace: err = %v, want ErrNotFound", err)
		}
		if err := c2.Delete(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete from other workspace: err = %v, want ErrNotFound", err)
		}
		docs, err := c2.Find(ctx, store.Query{Index: "by_kind_rank", Eq: []any{"k"}})
		if err != nil || len(docs) != 0 {
			t.Errorf("find in other workspace: %d docs, %v", len(docs), err)
		}
		if n, err := c2.Count(ctx, store.Query{Index: "by_key"}); err != nil || n != 0 {
			t.Errorf("count in other workspace = %d, %v", n, err)
		}
		if err := c1.Get(ctx, a.ID, &got); err != nil || got.Version != 0 {
			t.Errorf("owner's document: %+v, %v", got, err)
		}

		// Below Store, a document stamped for another workspace is refused.
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: store.NewID()}, {Key: "workspaceId", Value: "ws2"}, {Key: "kind", Value: "k"}, {Key: "key", Value: "x"}})
		if err := be.Insert(ctx, things, "ws1", raw); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("insert of a document stamped for another workspace: err = %v, want ErrBadQuery", err)
		}
	})
}

// seed inserts n things of two kinds with ranks that collide, so _id has to
// break ties, and returns them.
func seed(t *testing.T, tn store.Tenant, n int) []thing {
	c := tn.C(things)
	t.Helper()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var docs []any
	var out []thing
	for i := range n {
		th := thing{
			ID:   store.NewID(),
			Kind: []string{"a", "b"}[i%2],
			Rank: int64(i % 5),
			Key:  fmt.Sprintf("key-%03d", i),
			Meta: meta{At: base.Add(time.Duration(i%7) * time.Hour)},
		}
		docs = append(docs, th)
		th.WorkspaceID = tn.Workspace()
		out = append(out, th)
	}
	errs, err := c.InsertMany(context.Background(), docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("seed [%d]: %v", i, e)
		}
	}
	return out
}

// page reads q to the end, limit documents at a time.
func page(t *testing.T, c store.Collection, q store.Query, limit int) []thing {
	t.Helper()
	q.Limit = limit
	var out []thing
	for range 100 {
		docs, err := c.Find(context.Background(), q)
		if err != nil {
			t.Fatalf("find %+v: %v", q, err)
		}
		for _, d := range docs {
			var th thing
			if err := d.Decode(&th); err != nil {
				t.Fatal(err)
			}
			out = append(out, th)
		}
		if limit == 0 || len(docs) < limit {
			return out
		}
		q.After = docs[len(docs)-1].Key
	}
	t.Fatal("pagination does not end")
	return nil
}

func ids(ts []thing) []string {
	out := make([]string, len(ts))
	for i, th := range ts {
		out[i] = th.ID
	}
	return out
}

func TestFindAndCount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, newBackend func(*testing.T) store.Backend) {
		ctx := context.Background()
		s := openStore(t, newBackend(t))
		c := s.Tenant("ws1").C(things)
		all := seed(t, s.Tenant("ws1"), 23)
		seed(t, s.Tenant("ws2"), 5) // noise from another tenant

		byRankID := func(x, y thing) int {
			if x.Rank != y.Rank {
				return int(x.Rank - y.Rank)
			}
			return strings.Compare(x.ID, y.ID)
		}
		byKindRankID := func(x, y thing) int {
			if x.Kind != y.Kind {
				return strings.Compare(x.Kind, y.Kind)
			}
			return byRankID(x, y)
		}
		byAtID := func(x, y thing) int {
			if c := x.Meta.At.Compare(y.Meta.At); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		}
		filter := func(keep func(thing) bool, cmp func(x, y thing) int, desc bool) []thing {
			var out []thing
			for _, th := range all {
				if keep(th) {
					out = append(out, th)
				}
			}
			slices.SortFunc(out, cmp)
			if desc {
				slices.Reverse(out)
			}
			return out
		}
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		tests := []struct {
			name string
			q    store.Query
			want func(desc bool) []thing
		}{
			{"whole index", store.Query{Index: "by_kind_rank"}, func(desc bool) []thing {
				return filter(func(thing) bool { return true }, byKindRankID, desc)
			}},
			{"eq prefix", store.Query{Index: "by_kind_rank", Eq: []any{"b"}}, func(desc bool) []thing {
				return filter(func(th thing) bool { return th.Kind == "b" }, byRankID, desc)
			}},
			{"eq and range", store.Query{Index: "by_kind_rank", Eq: []any{"a"}, Range: &store.Bound{Gt: 0, Lte: 3}}, func(desc bool) []thing {
				return filter(func(th thing) bool { return th.Kind == "a" && th.Rank > 0 && th.Rank <= 3 }, byRankID, desc)
			}},
			{"all eq", store.Query{Index: "by_kind_rank", Eq: []any{"a", int64(2)}}, func(desc bool) []thing {
				return filter(func(th thing) bool { return th.Kind == "a" && th.Rank == 2 }, byRankID, desc)
			}},
			{"dotted datetime range", store.Query{Index: "by_at", Range: &store.Bound{Gte: base.Add(time.Hour), Lt: base.Add(5 * time.Hour)}}, func(desc bool) []thing {
				return filter(func(th thing) bool {
					return !th.Meta.At.Before(base.Add(time.Hour)) && th.Meta.At.Before(base.Add(5*time.Hour))
				}, byAtID, desc)
			}},
			{"unique prefix", store.Query{Index: "by_key", Range: &store.Bound{Prefix: ptr("key-01")}}, func(desc bool) []thing {
				return filter(func(th thing) bool { return strings.HasPrefix(th.Key, "key-01") }, func(x, y thing) int { return strings.Compare(x.Key, y.Key) }, desc)
			}},
		}
		for _, tt := range tests {
			for _, desc := range []bool{false, true} {
				name := tt.name
				if desc {
					name += " desc"
				}
				t.Run(name, func(t *testing.T) {
					q := tt.q
					q.Desc = desc
					want := ids(tt.want(desc))
					if len(want) == 0 {
						t.Fatal("test selects nothing")
					}
					for _, limit := range []int{0, 3} {
						if got := ids(page(t, c, q, limit)); !slices.Equal(got, want) {
							t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
						}
					}
					n, err := c.Count(ctx, q)
					if err != nil || n != int64(len(want)) {
						t.Errorf("count = %d, %v; want %d", n, err, len(want))
					}
				})
			}
		}
	})
}

// get reads into a fresh value: decoding into a used one keeps fields the
// document lacks.
func get(c store.Collection, id string) (thing, error) {
	var th thing
	err := c.Get(context.Background(), id, &th)
	return th, err
}

func ptr[T any](v T) *T { return &v }
