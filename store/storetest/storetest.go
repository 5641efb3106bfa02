// Package storetest is the conformance suite every store.Backend must pass.
//
// It drives a backend only through store.Store, Tenant and Collection, so it
// checks what callers see: the same documents, errors, orders and cursors on
// every engine. Data sets are tiny because the suite also runs against slow
// engines (FerretDB costs tens of milliseconds per operation).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Collections and indexes of the suite. They are independent of
// Halo's own collections so the suite keeps covering shapes (dotted paths,
// compound unique indexes) whatever Halo's schema becomes.
const (
	Things = "things"
	Others = "others"

	ByOwnerN    = "by_owner_n"    // (owner, n)
	ByOwnerAt   = "by_owner_at"   // (owner, at)
	ByName      = "by_name"       // (name)
	ByGroupRank = "by_group_rank" // (meta.group, meta.rank)
	ByKindKey   = "by_kind_key"   // unique (kind, key)
	ByScore     = "by_score"      // (score)
)

// Specs declares the suite's collections.
var Specs = []store.CollectionSpec{
	// Things are declared large so that the suite covers both of the
	// embedded engine's table layouts.
	{Name: Things, LargeDocuments: true, Indexes: []store.Index{
		{Name: ByOwnerN, Fields: []string{"owner", "n"}},
		{Name: ByOwnerAt, Fields: []string{"owner", "at"}},
		{Name: ByName, Fields: []string{"name"}},
		{Name: ByGroupRank, Fields: []string{"meta.group", "meta.rank"}},
		{Name: ByKindKey, Fields: []string{"kind", "key"}, Unique: true},
	}},
	{Name: Others, Indexes: []store.Index{
		{Name: ByScore, Fields: []string{"score"}},
	}},
}

// Thing is the suite's document. Every indexed field is always present.
type Thing struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId,omitempty"`
	Version     int64     `bson:"version"`
	Owner       string    `bson:"owner"`
	N           int64     `bson:"n"`
	At          time.Time `bson:"at"`
	Name        string    `bson:"name"`
	Kind        string    `bson:"kind"`
	Key         string    `bson:"key"`
	Meta        Meta      `bson:"meta"`
	Note        string    `bson:"note,omitempty"`
	Tag         string    `bson:"tag"` // indexed only by SpecsV2
}

// Meta is a nested document with indexed fields.
type Meta struct {
	Group string `bson:"group"`
	Rank  int64  `bson:"rank"`
}

var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// thing returns a document whose unique (kind, key) is derived from id, so
// tests only think about uniqueness when they mean to.
func thing(id, owner string, n int64) Thing {
	return Thing{
		ID: id, Version: 1, Owner: owner, N: n,
		At:   base.Add(time.Duration(n) * time.Minute),
		Name: "name-" + id, Kind: "k", Key: id,
		Meta: Meta{Group: "g", Rank: n},
		Tag:  "t-" + id,
	}
}

func withKey(d Thing, key string) Thing {
	d.Key = key
	return d
}

// RunTests runs the suite. newBackend must return a fresh, empty backend
// and register its own cleanup with t.
func RunTests(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, b store.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripBytes", testRoundTripBytes},
		{"GetMissing", testGetMissing},
		{"DuplicateID", testDuplicateID},
		{"UniqueIndex", testUniqueIndex},
		{"InsertMany", testInsertMany},
		{"Replace", testReplace},
		{"Put", testPut},
		{"Delete", testDelete},
		{"DeleteMany", testDeleteMany},
		{"FindOrder", testFindOrder},
		{"FindRangeInts", testFindRangeInts},
		{"FindRangeTimes", testFindRangeTimes},
		{"FindPrefix", testFindPrefix},
		{"FindDottedPaths", testFindDottedPaths},
		{"FindUniqueIndex", testFindUniqueIndex},
		{"Pagination", testPagination},
		{"FindOne", testFindOne},
		{"BadQueries", testBadQueries},
		{"Count", testCount},
		{"FindIn", testFindIn},
		{"FindMerged", testFindMerged},
		{"IDs", testIDs},
		{"FindByID", testFindByID},
		{"TenantIsolation", testTenantIsolation},
		{"Reopen", testReopen},
		{"AddIndex", testAddIndex},
		{"RedefineIndex", testRedefineIndex},
		{"RetireIndex", testRetireIndex},
		{"Together", testTogether},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newBackend(t))
		})
	}
}

func open(t *testing.T, b store.Backend) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), b, Specs)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	return s
}

func mustInsert(t *testing.T, c store.Collection, docs ...Thing) {
	t.Helper()
	if len(docs) == 1 {
		if err := c.Insert(t.Context(), docs[0]); err != nil {
			t.Fatalf("insert %s: %v", docs[0].ID, err)
		}
		return
	}
	in := make([]any, len(docs))
	for i, d := range docs {
		in[i] = d
	}
	errs, err := c.InsertMany(t.Context(), in)
	if err != nil {
		t.Fatalf("insert many: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("insert many: doc %s: %v", docs[i].ID, err)
		}
	}
}

func mustGet(t *testing.T, c store.Collection, id string) Thing {
	t.Helper()
	var out Thing
	if err := c.Get(t.Context(), id, &out); err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantDup(t *testing.T, what string, err error, coll, index string) {
	t.Helper()
	wantErr(t, what, err, store.ErrDuplicateKey)
	var dk *store.DuplicateKeyError
	if !errors.As(err, &dk) {
		t.Fatalf("%s: %v is not a *DuplicateKeyError", what, err)
	}
	if dk.Index != index || dk.Collection != coll {
		t.Fatalf("%s: duplicate in %s/%s, want %s/%s", what, dk.Collection, dk.Index, coll, index)
	}
}

func ids(docs []store.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		v, err := d.Raw.LookupErr("_id")
		if err != nil {
			out[i] = "<no _id>"
			continue
		}
		out[i] = v.StringValue()
	}
	return out
}

func find(t *testing.T, c store.Collection, q store.Query) []string {
	t.Helper()
	docs, err := c.Find(t.Context(), q)
	if err != nil {
		t.Fatalf("find %+v: %v", q, err)
	}
	return ids(docs)
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// Rich is a document exercising value types that are not indexed.
type Rich struct {
	ID      string            `bson:"_id"`
	Version int64             `bson:"version"`
	Owner   string            `bson:"owner"`
	N       int64             `bson:"n"`
	At      time.Time         `bson:"at"`
	Name    string            `bson:"name"`
	Kind    string            `bson:"kind"`
	Key     string            `bson:"key"`
	Meta    Meta              `bson:"meta"`
	S       string            `bson:"s"`
	Empty   string            `bson:"empty"`
	I32     int32             `bson:"i32"`
	I64     int64             `bson:"i64"`
	Big     int64             `bson:"big"`
	F       float64           `bson:"f"`
	NegF    float64           `bson:"negF"`
	B       bool              `bson:"b"`
	T       time.Time         `bson:"t"`
	DT      bson.DateTime     `bson:"dt"`
	Nested  map[string]any    `bson:"nested"`
	Arr     []any             `bson:"arr"`
	Strs    []string          `bson:"strs"`
	NilMap  map[string]string `bson:"nilMap"`
	NilArr  []string          `bson:"nilArr"`
	Unicode string            `bson:"unicode"`
}

func testRoundTrip(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	ms := time.Date(2023, 11, 5, 7, 8, 9, 123_000_000, time.UTC)
	in := Rich{
		ID: "rich-1", Version: 3, Owner: "o", N: 1, At: ms, Name: "rich", Kind: "k", Key: "rich",
		Meta: Meta{Group: "g", Rank: 2},
		S:    "hello", I32: -7, I64: 1 << 40, Big: -1 << 62, F: 3.25, NegF: -0.5, B: true,
		T:       ms,
		DT:      bson.NewDateTimeFromTime(ms.Add(time.Hour)),
		Nested:  map[string]any{"a": "x", "deeper": map[string]any{"n": int64(5)}},
		Arr:     []any{"one", int64(2), 3.5, false},
		Strs:    []string{"a", "b"},
		Unicode: "Grüße, 世界 🚀",
	}
	if err := c.Insert(t.Context(), in); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var out Rich
	if err := c.Get(t.Context(), "rich-1", &out); err != nil {
		t.Fatalf("get: %v", err)
	}
	if !out.T.Equal(in.T) || !out.At.Equal(in.At) {
		t.Fatalf("times: got %v/%v, want %v", out.T, out.At, in.T)
	}
	out.T, out.At = in.T, in.At
	// Nested values come back as bson.D; compare them through bson.M.
	if got := fmt.Sprint(out.Nested["a"]); got != "x" {
		t.Fatalf("nested.a = %v", out.Nested["a"])
	}
	out.Nested = in.Nested
	if len(out.Arr) != 4 || out.Arr[0] != "one" || out.Arr[1] != int64(2) || out.Arr[2] != 3.5 || out.Arr[3] != false {
		t.Fatalf("arr = %#v", out.Arr)
	}
	out.Arr = in.Arr
	if out.NilMap != nil || out.NilArr != nil {
		t.Fatalf("nil map/slice came back as %#v / %#v", out.NilMap, out.NilArr)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", out, in)
	}

	// Value types must survive, not just values.
	var m bson.M
	if err := c.Get(t.Context(), "rich-1", &m); err != nil {
		t.Fatalf("get map: %v", err)
	}
	for field, want := range map[string]any{
		"i32": int32(-7), "i64": int64(1 << 40), "f": 3.25, "b": true,
		"t": bson.NewDateTimeFromTime(ms), "workspaceId": "ws-a", "nilMap": nil,
	} {
		if got := m[field]; !reflect.DeepEqual(got, want) {
			t.Errorf("field %s: got %#v (%T), want %#v (%T)", field, got, got, want, want)
		}
	}
	if got := lookup(t, c, "rich-1", "nested", "deeper", "n"); got != int64(5) {
		t.Fatalf("nested.deeper.n = %#v", got)
	}
	if got := lookup(t, c, "rich-1", "meta", "rank"); got != int64(2) {
		t.Fatalf("meta.rank = %#v", got)
	}

	// Times are stored with millisecond precision.
	sub := Thing{ID: "sub-ms", Owner: "o", At: ms.Add(456 * time.Microsecond), Name: "x", Kind: "k", Key: "sub-ms"}
	if err := c.Insert(t.Context(), sub); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if got := mustGet(t, c, "sub-ms").At; !got.Equal(ms) {
		t.Fatalf("sub-ms time: got %v, want %v", got, ms)
	}
}

// lookup reads one value of a stored document by path, decoded to Go.
func lookup(t *testing.T, c store.Collection, id string, path ...string) any {
	t.Helper()
	var raw bson.Raw
	if err := c.Get(t.Context(), id, &raw); err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	v, err := raw.LookupErr(path...)
	if err != nil {
		t.Fatalf("%s: no %v: %v", id, path, err)
	}
	var out any
	switch v.Type {
	case bson.TypeInt32:
		out = v.Int32()
	case bson.TypeInt64:
		out = v.Int64()
	case bson.TypeString:
		out = v.StringValue()
	case bson.TypeDouble:
		out = v.Double()
	default:
		out = v
	}
	return out
}

func testRoundTripBytes(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	// With _id first and workspaceId already in place, Store re-encodes the
	// document unchanged, so the engine must give back these exact bytes.
	d := bson.D{
		{Key: "_id", Value: "raw-1"},
		{Key: "workspaceId", Value: "ws-a"},
		{Key: "version", Value: int32(1)},
		{Key: "owner", Value: "o"},
		{Key: "n", Value: int32(4)},
		{Key: "at", Value: bson.NewDateTimeFromTime(base)},
		{Key: "name", Value: "raw"},
		{Key: "kind", Value: "k"},
		{Key: "key", Value: "raw-1"},
		{Key: "meta", Value: bson.D{{Key: "group", Value: "g"}, {Key: "rank", Value: 1.5}}},
		{Key: "z", Value: bson.A{bson.D{{Key: "q", Value: nil}}, "s"}},
		{Key: "a", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2}}},
	}
	want, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Insert(t.Context(), d); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got bson.Raw
	if err := c.Get(t.Context(), "raw-1", &got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got  %v\n want %v", got, bson.Raw(want))
	}
	docs, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}})
	if err != nil || len(docs) != 1 {
		t.Fatalf("find: %v, %d docs", err, len(docs))
	}
	if !bytes.Equal(docs[0].Raw, want) {
		t.Fatalf("find bytes differ:\n got  %v\n want %v", docs[0].Raw, bson.Raw(want))
	}
}

func testGetMissing(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	var out Thing
	wantErr(t, "get missing", c.Get(t.Context(), "nope", &out), store.ErrNotFound)
	if !store.IsNotFound(c.Get(t.Context(), "nope", &out)) {
		t.Fatal("IsNotFound false for a missing document")
	}
	// An empty collection and a populated one behave the same.
	mustInsert(t, c, thing("a", "o", 1))
	wantErr(t, "get missing", c.Get(t.Context(), "nope", &out), store.ErrNotFound)
}

func testDuplicateID(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("a", "o", 1))
	dup := thing("a", "p", 2)
	dup.Key = "other-key"
	wantDup(t, "duplicate _id", c.Insert(t.Context(), dup), Things, "_id")
	// Repeating the whole document breaks the unique index too; MongoDB
	// reports _id, and callers rely on that to recognise a retried insert.
	wantDup(t, "duplicate _id and unique key", c.Insert(t.Context(), thing("a", "o", 1)), Things, "_id")
	if got := mustGet(t, c, "a"); got.Owner != "o" {
		t.Fatalf("original overwritten: %+v", got)
	}
}

func testUniqueIndex(t *testing.T, b store.Backend) {
	s := open(t, b)
	a := s.Tenant("ws-a").C(Things)
	x := thing("x", "o", 1)
	x.Kind, x.Key = "email", "ann@example.com"
	mustInsert(t, a, x)

	y := thing("y", "o", 2)
	y.Kind, y.Key = "email", "ann@example.com"
	wantDup(t, "unique (kind,key)", a.Insert(t.Context(), y), Things, ByKindKey)
	wantErr(t, "get refused doc", a.Get(t.Context(), "y", &Thing{}), store.ErrNotFound)

	// Only the combination is unique.
	y.Kind = "phone"
	mustInsert(t, a, y)
	z := thing("z", "o", 3)
	z.Kind, z.Key = "email", "bob@example.com"
	mustInsert(t, a, z)

	// Uniqueness is per workspace.
	other := thing("x-b", "o", 1)
	other.Kind, other.Key = "email", "ann@example.com"
	mustInsert(t, s.Tenant("ws-b").C(Things), other)

	// Writes that would collide through Replace or Put are refused too.
	z2 := z
	z2.Key, z2.Version = "ann@example.com", 2
	wantDup(t, "replace into unique", a.Replace(t.Context(), z2, 1), Things, ByKindKey)
	wantDup(t, "put into unique", a.Put(t.Context(), z2), Things, ByKindKey)
	if got := mustGet(t, a, "z"); got.Key != "bob@example.com" || got.Version != 1 {
		t.Fatalf("refused write changed the doc: %+v", got)
	}

	// Deleting frees the value.
	if err := a.Delete(t.Context(), "x"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	y2 := thing("y2", "o", 4)
	y2.Kind, y2.Key = "email", "ann@example.com"
	mustInsert(t, a, y2)
}

func testInsertMany(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("old", "o", 0))

	uniq := thing("u2", "o", 6)
	uniq.Key = "u1"
	docs := []any{
		thing("m1", "o", 1),
		withKey(thing("old", "o", 2), "old-2"), // existing _id
		thing("m2", "o", 3),
		withKey(thing("m1", "o", 4), "m1-2"), // _id repeated within the batch
		thing("u1", "o", 5),
		uniq, // (kind, key) taken by u1 earlier in the batch
		thing("m3", "o", 7),
	}
	errs, err := c.InsertMany(t.Context(), docs)
	if err != nil {
		t.Fatalf("insert many: %v", err)
	}
	if len(errs) != len(docs) {
		t.Fatalf("got %d errs for %d docs", len(errs), len(docs))
	}
	for i, want := range []string{"", "_id", "", "_id", "", ByKindKey, ""} {
		if want == "" {
			if errs[i] != nil {
				t.Errorf("doc %d: unexpected error %v", i, errs[i])
			}
			continue
		}
		var dk *store.DuplicateKeyError
		if !errors.As(errs[i], &dk) || dk.Index != want || !errors.Is(errs[i], store.ErrDuplicateKey) {
			t.Errorf("doc %d: got %v, want duplicate on %s", i, errs[i], want)
		}
	}
	if got := mustGet(t, c, "m1"); got.N != 1 {
		t.Errorf("m1 is the later duplicate: %+v", got)
	}
	if got := mustGet(t, c, "old"); got.N != 0 {
		t.Errorf("old overwritten: %+v", got)
	}
	wantIDs(t, "stored", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}),
		[]string{"old", "m1", "m2", "u1", "m3"})

	if errs, err := c.InsertMany(t.Context(), nil); err != nil || len(errs) != 0 {
		t.Fatalf("empty insert many: %v %v", errs, err)
	}
}

func testReplace(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("a", "o", 1))

	v2 := thing("a", "o", 2)
	v2.Version, v2.Note = 2, "second"
	if err := c.Replace(t.Context(), v2, 1); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if got := mustGet(t, c, "a"); got.Version != 2 || got.Note != "second" || got.N != 2 {
		t.Fatalf("after replace: %+v", got)
	}
	// The index follows the new values.
	wantIDs(t, "index after replace", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", int64(2)}}), []string{"a"})
	wantIDs(t, "old index entry", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", int64(1)}}), nil)

	stale := thing("a", "o", 3)
	stale.Version, stale.Note = 2, "stale"
	wantErr(t, "stale replace", c.Replace(t.Context(), stale, 1), store.ErrConflict)
	if got := mustGet(t, c, "a"); got.Note != "second" || got.Version != 2 {
		t.Fatalf("conflicting replace changed the doc: %+v", got)
	}

	missing := thing("ghost", "o", 1)
	missing.Version = 2
	wantErr(t, "replace missing", c.Replace(t.Context(), missing, 1), store.ErrNotFound)
	wantErr(t, "replace created doc", c.Get(t.Context(), "ghost", &Thing{}), store.ErrNotFound)

	// A document without a version field has version 0.
	nov := bson.D{{Key: "_id", Value: "nov"}, {Key: "owner", Value: "o"}, {Key: "n", Value: int64(9)},
		{Key: "at", Value: base}, {Key: "name", Value: "nov"}, {Key: "kind", Value: "k"}, {Key: "key", Value: "nov"},
		{Key: "meta", Value: bson.D{{Key: "group", Value: "g"}, {Key: "rank", Value: int64(0)}}}}
	if err := c.Insert(t.Context(), nov); err != nil {
		t.Fatalf("insert: %v", err)
	}
	nv := thing("nov", "o", 9)
	nv.Key = "nov"
	wantErr(t, "replace unversioned with 1", c.Replace(t.Context(), nv, 1), store.ErrConflict)
	if err := c.Replace(t.Context(), nv, 0); err != nil {
		t.Fatalf("replace unversioned with 0: %v", err)
	}
	// Versions compare equal whether stored as int32 or int64.
	i32 := bson.D{{Key: "_id", Value: "i32"}, {Key: "version", Value: int32(7)}, {Key: "owner", Value: "o"},
		{Key: "n", Value: int64(10)}, {Key: "at", Value: base}, {Key: "name", Value: "i32"}, {Key: "kind", Value: "k"},
		{Key: "key", Value: "i32"}, {Key: "meta", Value: bson.D{{Key: "group", Value: "g"}, {Key: "rank", Value: int64(0)}}}}
	if err := c.Insert(t.Context(), i32); err != nil {
		t.Fatalf("insert: %v", err)
	}
	n32 := thing("i32", "o", 10)
	n32.Version = 8
	if err := c.Replace(t.Context(), n32, 7); err != nil {
		t.Fatalf("replace int32 version: %v", err)
	}
}

func testPut(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	p := thing("p", "o", 1)
	if err := c.Put(t.Context(), p); err != nil {
		t.Fatalf("put insert: %v", err)
	}
	if got := mustGet(t, c, "p"); got.N != 1 {
		t.Fatalf("after put: %+v", got)
	}
	p.N, p.Version, p.Note = 5, 9, "again"
	if err := c.Put(t.Context(), p); err != nil {
		t.Fatalf("put overwrite: %v", err)
	}
	if got := mustGet(t, c, "p"); got.N != 5 || got.Version != 9 || got.Note != "again" {
		t.Fatalf("after overwrite: %+v", got)
	}
	wantIDs(t, "index after put", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", int64(5)}}), []string{"p"})
	wantIDs(t, "old index entry", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", int64(1)}}), nil)
	// The overwritten version is what Replace compares against.
	p.Version = 10
	if err := c.Replace(t.Context(), p, 9); err != nil {
		t.Fatalf("replace after put: %v", err)
	}
}

func testDelete(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("a", "o", 1), thing("b", "o", 2))
	if err := c.Delete(t.Context(), "a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantErr(t, "get deleted", c.Get(t.Context(), "a", &Thing{}), store.ErrNotFound)
	wantErr(t, "delete again", c.Delete(t.Context(), "a"), store.ErrNotFound)
	wantErr(t, "delete missing", c.Delete(t.Context(), "never"), store.ErrNotFound)
	wantIDs(t, "remaining", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"b"})
	// The id can be used again.
	mustInsert(t, c, thing("a", "o", 3))
}

func testDeleteMany(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	other := s.Tenant("ws-b").C(Things)
	for i := range 6 {
		mustInsert(t, c, thing(fmt.Sprint("a", i), "o", int64(i)))
	}
	mustInsert(t, c, thing("p0", "p", 1))
	mustInsert(t, other, thing("b0", "o", 1))
	del := func(what string, q store.Query, want int64) {
		t.Helper()
		n, err := c.DeleteMany(t.Context(), q)
		if err != nil || n != want {
			t.Fatalf("%s: deleted %d (%v), want %d", what, n, err, want)
		}
	}
	// A range, capped, in index order: the lowest n first.
	del("n < 4, limit 2", store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &store.Bound{Lt: int64(4)}, Limit: 2}, 2)
	wantIDs(t, "after the capped delete", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a2", "a3", "a4", "a5"})
	// Descending with a limit takes from the top.
	del("desc, limit 1", store.Query{Index: ByOwnerN, Eq: []any{"o"}, Desc: true, Limit: 1}, 1)
	wantIDs(t, "after the descending delete", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a2", "a3", "a4"})
	// After a cursor.
	docs, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 1})
	if err != nil || len(docs) != 1 {
		t.Fatalf("find first: %v %v", docs, err)
	}
	del("after the first", store.Query{Index: ByOwnerN, Eq: []any{"o"}, After: docs[0].Key, Limit: 1}, 1)
	wantIDs(t, "after the cursor delete", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a2", "a4"})
	mustInsert(t, c, thing("a5", "o", 5), thing("a6", "o", 6))
	del("after the first, no limit", store.Query{Index: ByOwnerN, Eq: []any{"o"}, After: docs[0].Key}, 3)
	wantIDs(t, "after the unbounded cursor delete", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a2"})
	mustInsert(t, c, thing("a4", "o", 4))
	// Nothing matching: zero, no error.
	del("nothing", store.Query{Index: ByOwnerN, Eq: []any{"nobody"}}, 0)
	// Unbounded: all of owner o in this workspace, nothing of another
	// owner or another workspace.
	del("all of o", store.Query{Index: ByOwnerN, Eq: []any{"o"}}, 2)
	wantIDs(t, "owner p kept", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"p"}}), []string{"p0"})
	wantIDs(t, "other workspace kept", find(t, other, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"b0"})
	// A bad query is refused as Find refuses it.
	if _, err := c.DeleteMany(t.Context(), store.Query{Index: "no_such_index"}); !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("delete by an unknown index: %v, want ErrBadQuery", err)
	}
	// The ids can be used again.
	mustInsert(t, c, thing("a0", "o", 9))
}

// seed inserts owner "o" documents with repeated n values, in an order that
// is neither id nor n order, plus noise under other owners.
func seed(t *testing.T, c store.Collection) []Thing {
	t.Helper()
	ns := map[string]int64{
		"id-07": 3, "id-02": 5, "id-10": 3, "id-01": 8, "id-05": 1,
		"id-03": 3, "id-09": 10, "id-04": 7, "id-06": 5, "id-08": -2,
	}
	var docs []Thing
	for _, id := range []string{"id-07", "id-02", "id-10", "id-01", "id-05", "id-03", "id-09", "id-04", "id-06", "id-08"} {
		docs = append(docs, thing(id, "o", ns[id]))
	}
	noise := []Thing{thing("n-1", "a", 4), thing("n-2", "p", 4), thing("n-3", "oo", 4)}
	mustInsert(t, c, append(slices.Clone(docs), noise...)...)
	return docs
}

// expect returns the ids of docs passing keep, ordered by (n, _id).
func expect(docs []Thing, keep func(Thing) bool, desc bool) []string {
	var sel []Thing
	for _, d := range docs {
		if keep == nil || keep(d) {
			sel = append(sel, d)
		}
	}
	sort.Slice(sel, func(i, j int) bool {
		if sel[i].N != sel[j].N {
			return sel[i].N < sel[j].N
		}
		return sel[i].ID < sel[j].ID
	})
	out := make([]string, len(sel))
	for i, d := range sel {
		out[i] = d.ID
	}
	if desc {
		slices.Reverse(out)
	}
	return out
}

func testFindOrder(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	wantIDs(t, "asc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), expect(docs, nil, false))
	wantIDs(t, "desc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Desc: true}), expect(docs, nil, true))
	// Ties on every index field are ordered by _id.
	wantIDs(t, "eq full", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", 3}}), []string{"id-03", "id-07", "id-10"})
	wantIDs(t, "eq full desc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", int32(3)}, Desc: true}), []string{"id-10", "id-07", "id-03"})
	wantIDs(t, "limit", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 3}), expect(docs, nil, false)[:3])
	wantIDs(t, "limit desc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 2, Desc: true}), expect(docs, nil, true)[:2])
	wantIDs(t, "limit over size", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 100}), expect(docs, nil, false))
	wantIDs(t, "no match", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"nobody"}}), nil)

	// Without an equality prefix the order spans all owners: owner, n, _id.
	all := find(t, c, store.Query{Index: ByOwnerN})
	want := append([]string{"n-1"}, expect(docs, nil, false)...)
	want = append(want, "n-3", "n-2")
	wantIDs(t, "whole index", all, want)

	// Keys are URL-safe.
	found, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range found {
		if strings.ContainsAny(d.Key, "+/=?&# ") || d.Key == "" {
			t.Fatalf("key %q is not URL-safe", d.Key)
		}
	}
}

func testFindRangeInts(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	cases := []struct {
		name  string
		bound store.Bound
		keep  func(Thing) bool
	}{
		{"gt", store.Bound{Gt: 3}, func(d Thing) bool { return d.N > 3 }},
		{"gte", store.Bound{Gte: int64(3)}, func(d Thing) bool { return d.N >= 3 }},
		{"lt", store.Bound{Lt: int32(5)}, func(d Thing) bool { return d.N < 5 }},
		{"lte", store.Bound{Lte: 5}, func(d Thing) bool { return d.N <= 5 }},
		{"gt lt", store.Bound{Gt: 1, Lt: 8}, func(d Thing) bool { return d.N > 1 && d.N < 8 }},
		{"gte lte", store.Bound{Gte: 3, Lte: 7}, func(d Thing) bool { return d.N >= 3 && d.N <= 7 }},
		{"negative", store.Bound{Lt: 0}, func(d Thing) bool { return d.N < 0 }},
		{"float bound", store.Bound{Gt: 2.5, Lte: 5.0}, func(d Thing) bool { return d.N > 2 && d.N <= 5 }},
		{"empty", store.Bound{Gt: 100}, func(d Thing) bool { return false }},
		{"inverted", store.Bound{Gt: 8, Lt: 3}, func(d Thing) bool { return false }},
	}
	for _, tc := range cases {
		bound := tc.bound
		wantIDs(t, tc.name+" asc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &bound}), expect(docs, tc.keep, false))
		wantIDs(t, tc.name+" desc", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &bound, Desc: true}), expect(docs, tc.keep, true))
	}
}

func testFindRangeTimes(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c) // at = base + n minutes
	at := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	cases := []struct {
		name  string
		bound store.Bound
		keep  func(Thing) bool
	}{
		{"gt time.Time", store.Bound{Gt: at(3)}, func(d Thing) bool { return d.N > 3 }},
		{"gte DateTime", store.Bound{Gte: store.DateTime(at(3))}, func(d Thing) bool { return d.N >= 3 }},
		{"lt", store.Bound{Lt: at(5)}, func(d Thing) bool { return d.N < 5 }},
		{"lte ms after", store.Bound{Lte: at(5).Add(time.Millisecond)}, func(d Thing) bool { return d.N <= 5 }},
		{"window", store.Bound{Gte: at(1), Lt: at(8)}, func(d Thing) bool { return d.N >= 1 && d.N < 8 }},
		{"before base", store.Bound{Lt: at(0)}, func(d Thing) bool { return d.N < 0 }},
	}
	for _, tc := range cases {
		bound := tc.bound
		wantIDs(t, tc.name+" asc", find(t, c, store.Query{Index: ByOwnerAt, Eq: []any{"o"}, Range: &bound}), expect(docs, tc.keep, false))
		wantIDs(t, tc.name+" desc", find(t, c, store.Query{Index: ByOwnerAt, Eq: []any{"o"}, Range: &bound, Desc: true}), expect(docs, tc.keep, true))
	}
	// Equality on a time.
	wantIDs(t, "eq time", find(t, c, store.Query{Index: ByOwnerAt, Eq: []any{"o", at(5)}}), []string{"id-02", "id-06"})
}

func testFindPrefix(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	names := []string{"an", "ann", "anna", "anne", "Ann", "amy", "ao", "b", "ä", "äb", "ändern", "a", "日本", "日本語", "日"}
	var docs []Thing
	for i, n := range names {
		d := thing(fmt.Sprintf("p-%02d", i), "o", int64(i))
		d.Name = n
		docs = append(docs, d)
	}
	mustInsert(t, c, docs...)
	byName := func(prefix string, desc bool) []string {
		var sel []Thing
		for _, d := range docs {
			if strings.HasPrefix(d.Name, prefix) {
				sel = append(sel, d)
			}
		}
		// Binary UTF-8 order is code point order, which Go's < gives.
		sort.Slice(sel, func(i, j int) bool { return sel[i].Name < sel[j].Name })
		out := make([]string, len(sel))
		for i, d := range sel {
			out[i] = d.ID
		}
		if desc {
			slices.Reverse(out)
		}
		return out
	}
	for _, p := range []string{"an", "ann", "a", "ä", "日本", "zz", "A"} {
		wantIDs(t, "prefix "+p, find(t, c, store.Query{Index: ByName, Range: &store.Bound{Prefix: &p}}), byName(p, false))
		wantIDs(t, "prefix desc "+p, find(t, c, store.Query{Index: ByName, Range: &store.Bound{Prefix: &p}, Desc: true}), byName(p, true))
	}
	// String range bounds compare bytewise.
	wantIDs(t, "string range", find(t, c, store.Query{Index: ByName, Range: &store.Bound{Gte: "ann", Lt: "ao"}}),
		[]string{"p-01", "p-02", "p-03"})
}

func testFindDottedPaths(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	var docs []Thing
	for i, g := range []string{"red", "blue", "red", "red", "blue", "green"} {
		d := thing(fmt.Sprintf("d-%d", i), "o", int64(i))
		d.Meta = Meta{Group: g, Rank: int64(10 - i%3)}
		docs = append(docs, d)
	}
	mustInsert(t, c, docs...)
	// red: d-0 rank 10, d-2 rank 8, d-3 rank 10
	wantIDs(t, "group", find(t, c, store.Query{Index: ByGroupRank, Eq: []any{"red"}}), []string{"d-2", "d-0", "d-3"})
	wantIDs(t, "group desc", find(t, c, store.Query{Index: ByGroupRank, Eq: []any{"red"}, Desc: true}), []string{"d-3", "d-0", "d-2"})
	wantIDs(t, "group rank", find(t, c, store.Query{Index: ByGroupRank, Eq: []any{"red", 10}}), []string{"d-0", "d-3"})
	wantIDs(t, "group range", find(t, c, store.Query{Index: ByGroupRank, Eq: []any{"red"}, Range: &store.Bound{Gt: 8}}), []string{"d-0", "d-3"})
	wantIDs(t, "whole", find(t, c, store.Query{Index: ByGroupRank}),
		[]string{"d-1", "d-4", "d-5", "d-2", "d-0", "d-3"})
	n, err := c.Count(t.Context(), store.Query{Index: ByGroupRank, Eq: []any{"blue"}})
	if err != nil || n != 2 {
		t.Fatalf("count blue: %d, %v", n, err)
	}
}

func testFindUniqueIndex(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	var docs []Thing
	for i, kk := range [][2]string{{"email", "b"}, {"email", "a"}, {"phone", "1"}, {"email", "c"}} {
		d := thing(fmt.Sprintf("u-%d", i), "o", int64(i))
		d.Kind, d.Key = kk[0], kk[1]
		docs = append(docs, d)
	}
	mustInsert(t, c, docs...)
	wantIDs(t, "lookup", find(t, c, store.Query{Index: ByKindKey, Eq: []any{"email", "a"}}), []string{"u-1"})
	wantIDs(t, "by kind", find(t, c, store.Query{Index: ByKindKey, Eq: []any{"email"}}), []string{"u-1", "u-0", "u-3"})
	wantIDs(t, "by kind desc", find(t, c, store.Query{Index: ByKindKey, Eq: []any{"email"}, Desc: true}), []string{"u-3", "u-0", "u-1"})
	walkPages(t, c, store.Query{Index: ByKindKey, Eq: []any{"email"}}, 2, []string{"u-1", "u-0", "u-3"})
}

// walkPages reads q in pages of size and checks the concatenation is want:
// no document skipped, none repeated, and the last page is where it ends.
func walkPages(t *testing.T, c store.Collection, q store.Query, size int, want []string) {
	t.Helper()
	q.Limit = size
	var got []string
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > len(want)+1 {
			t.Fatalf("pagination does not end: %v", got)
		}
		docs, err := c.Find(t.Context(), q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if len(docs) > size {
			t.Fatalf("page %d has %d docs, limit %d", page, len(docs), size)
		}
		for _, id := range ids(docs) {
			if seen[id] {
				t.Fatalf("page %d repeats %s", page, id)
			}
			seen[id] = true
			got = append(got, id)
		}
		if len(docs) < size {
			break
		}
		q.After = docs[len(docs)-1].Key
	}
	wantIDs(t, fmt.Sprintf("pages of %d (desc=%v)", size, q.Desc), got, want)
}

func testPagination(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	for _, size := range []int{1, 3, 10} {
		walkPages(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}, size, expect(docs, nil, false))
		walkPages(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Desc: true}, size, expect(docs, nil, true))
	}
	// Pages respect the range too, in time order.
	keep := func(d Thing) bool { return d.N >= 3 && d.N < 10 }
	bound := store.Bound{Gte: base.Add(3 * time.Minute), Lt: base.Add(10 * time.Minute)}
	walkPages(t, c, store.Query{Index: ByOwnerAt, Eq: []any{"o"}, Range: &bound}, 2, expect(docs, keep, false))
	walkPages(t, c, store.Query{Index: ByOwnerAt, Eq: []any{"o"}, Range: &bound, Desc: true}, 2, expect(docs, keep, true))
	// A cursor past a bound stands for it (the SQLite engine then seeks
	// to the cursor): pages of one document through ties at an inclusive
	// and an exclusive bound, either way, and through the primary key.
	for _, c3 := range []struct {
		name  string
		bound store.Bound
		keep  func(Thing) bool
	}{
		{"n >= 3", store.Bound{Gte: int64(3)}, func(d Thing) bool { return d.N >= 3 }},
		{"n > 3", store.Bound{Gt: int64(3)}, func(d Thing) bool { return d.N > 3 }},
		{"n <= 3", store.Bound{Lte: int64(3)}, func(d Thing) bool { return d.N <= 3 }},
		{"n < 3", store.Bound{Lt: int64(3)}, func(d Thing) bool { return d.N < 3 }},
	} {
		bound := c3.bound
		walkPages(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &bound}, 1, expect(docs, c3.keep, false))
		walkPages(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &bound, Desc: true}, 1, expect(docs, c3.keep, true))
	}
	byID := find(t, c, store.Query{Index: store.ByID})
	if len(byID) > 4 {
		mid := store.Bound{Gte: byID[1], Lt: byID[len(byID)-1]}
		walkPages(t, c, store.Query{Index: store.ByID, Range: &mid}, 2, byID[1:len(byID)-1])
		walkPages(t, c, store.Query{Index: store.ByID, Range: &mid, Desc: true}, 2, reversed(byID[1:len(byID)-1]))
		below := store.Bound{Lt: byID[len(byID)-1]} // one-sided: the engine closes the other side
		walkPages(t, c, store.Query{Index: store.ByID, Range: &below}, 2, byID[:len(byID)-1])
		walkPages(t, c, store.Query{Index: store.ByID, Range: &below, Desc: true}, 2, reversed(byID[:len(byID)-1]))
	}
	// Ties on the whole index are paged by _id.
	walkPages(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o", 3}}, 1, []string{"id-03", "id-07", "id-10"})
	// A cursor over the whole index crosses the equality groups.
	all := find(t, c, store.Query{Index: ByOwnerN})
	walkPages(t, c, store.Query{Index: ByOwnerN}, 4, all)

	// A cursor stays valid after its document is deleted.
	first, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), ids(first)[1]); err != nil {
		t.Fatal(err)
	}
	rest := find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, After: first[1].Key})
	wantIDs(t, "after deleted", rest, expect(docs, nil, false)[2:])
}

func testFindOne(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	seed(t, c)
	var out Thing
	if err := c.FindOne(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, Desc: true}, &out); err != nil {
		t.Fatalf("find one: %v", err)
	}
	if out.ID != "id-09" {
		t.Fatalf("find one: got %s", out.ID)
	}
	wantErr(t, "find one none", c.FindOne(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"nobody"}}, &out), store.ErrNotFound)
}

func testBadQueries(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	seed(t, c)
	_, err := c.Find(t.Context(), store.Query{Index: "no_such_index"})
	wantErr(t, "unknown index", err, store.ErrBadQuery)
	_, err = c.Count(t.Context(), store.Query{Index: "no_such_index"})
	wantErr(t, "count unknown index", err, store.ErrBadQuery)
	_, err = c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o", 1, 2}})
	wantErr(t, "too many equalities", err, store.ErrBadQuery)
	_, err = c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: -1})
	wantErr(t, "negative limit", err, store.ErrBadQuery)
	_, err = c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{struct{}{}}})
	wantErr(t, "unsupported value", err, store.ErrBadQuery)

	// A key from a different index shape (2 order fields vs 3) is refused.
	other, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 1})
	if err != nil || len(other) != 1 {
		t.Fatalf("find: %v", err)
	}
	valid, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, Limit: 1})
	if err != nil || len(valid) != 1 {
		t.Fatalf("find: %v", err)
	}
	for name, after := range map[string]string{
		"not base64":  "!!!not-a-cursor!!!",
		"not bson":    "aGVsbG8gd29ybGQ",
		"truncated":   valid[0].Key[:len(valid[0].Key)/2],
		"wrong shape": other[0].Key,
	} {
		_, err := c.Find(t.Context(), store.Query{Index: ByOwnerN, After: after})
		wantErr(t, "cursor "+name, err, store.ErrBadCursor)
	}
}

// In matches any of its values in the field after the Eq prefix, in
// index order, on a first field, a second one and a unique index; it
// counts, caps with Limit, and is refused with a range, a cursor or too
// many values.
func testFindIn(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	mustInsert(t, s.Tenant("ws-b").C(Things), thing("b-1", "o", 3))
	in := func(vals ...any) []any { return vals }
	byN := func(ns ...int64) []string {
		return expect(docs, func(d Thing) bool { return slices.Contains(ns, d.N) }, false)
	}
	byNDesc := func(ns ...int64) []string {
		return expect(docs, func(d Thing) bool { return slices.Contains(ns, d.N) }, true)
	}
	wantIDs(t, "owner o, n in 3, 8, 99", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(8, 3, 99)}), byN(3, 8))
	wantIDs(t, "descending", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(8, 3), Desc: true}), byNDesc(3, 8))
	wantIDs(t, "limit", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(8, 3), Limit: 2}), byN(3, 8)[:2])
	wantIDs(t, "repeated values", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(5, 5, 5)}), byN(5))
	wantIDs(t, "first field", find(t, c, store.Query{Index: ByName, In: in("name-id-04", "name-n-2", "name-none")}), []string{"id-04", "n-2"})
	wantIDs(t, "unique index", find(t, c, store.Query{Index: ByKindKey, Eq: []any{"k"}, In: in("id-09", "id-01", "nope")}), []string{"id-01", "id-09"})
	// 33 values: past a power of two, the longest list an engine pads.
	many := []any{"name-id-10"}
	for i := range 32 {
		many = append(many, fmt.Sprint("absent-", i))
	}
	wantIDs(t, "33 values", find(t, c, store.Query{Index: ByName, In: many}), []string{"id-10"})
	for len(many) < store.MaxIn {
		many = append(many, fmt.Sprint("absent-", len(many)))
	}
	wantIDs(t, "MaxIn values", find(t, c, store.Query{Index: ByName, In: many}), []string{"id-10"})
	// An empty list matches nothing (not everything).
	wantIDs(t, "empty list", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: []any{}}), nil)
	if n, err := c.Count(t.Context(), store.Query{Index: ByOwnerN, In: []any{}}); err != nil || n != 0 {
		t.Errorf("count of an empty list: %d (%v), want 0", n, err)
	}
	if n, err := c.DeleteMany(t.Context(), store.Query{Index: ByOwnerN, In: []any{}}); err != nil || n != 0 {
		t.Errorf("delete by an empty list: %d (%v), want 0", n, err)
	}
	if n, err := c.Count(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(3, 5)}); err != nil || n != int64(len(byN(3, 5))) {
		t.Errorf("count: %d (%v), want %d", n, err, len(byN(3, 5)))
	}
	if n, err := c.DeleteMany(t.Context(), store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(3, 99)}); err != nil || n != int64(len(byN(3))) {
		t.Errorf("delete by a list: %d (%v), want %d", n, err, len(byN(3)))
	}
	wantIDs(t, "after deleting n = 3", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}, In: in(3, 5)}), byN(5))
	for name, q := range map[string]store.Query{
		"with a range":  {Index: ByOwnerN, Eq: []any{"o"}, In: in(3), Range: &store.Bound{Gt: 1}},
		"with a cursor": {Index: ByOwnerN, Eq: []any{"o"}, In: in(3), After: "x"},
		"no field left": {Index: ByOwnerN, Eq: []any{"o", 3}, In: in(3)},
		"too many":      {Index: ByName, In: make([]any, store.MaxIn+1)},
	} {
		if _, err := c.Find(t.Context(), q); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("In %s: %v, want ErrBadQuery", name, err)
		}
	}
}

// testFindByID reads the primary key, undeclared (store.ByID): ranges of
// ids in order, pages, counts, only the workspace's own.
func testFindByID(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	mustInsert(t, s.Tenant("ws-b").C(Things), thing("id-055", "o", 3))
	all := []string{}
	for _, d := range docs {
		all = append(all, d.ID)
	}
	all = append(all, "n-1", "n-2", "n-3")
	slices.Sort(all)
	wantIDs(t, "all", find(t, c, store.Query{Index: store.ByID}), all)
	wantIDs(t, "id-03 <= id < id-06", find(t, c, store.Query{Index: store.ByID, Range: &store.Bound{Gte: "id-03", Lt: "id-06"}}),
		[]string{"id-03", "id-04", "id-05"})
	wantIDs(t, "descending, after id-08", find(t, c, store.Query{Index: store.ByID, Range: &store.Bound{Gt: "id-08"}, Desc: true}),
		[]string{"n-3", "n-2", "n-1", "id-10", "id-09"})
	prefix := "n-"
	wantIDs(t, "prefix n-", find(t, c, store.Query{Index: store.ByID, Range: &store.Bound{Prefix: &prefix}}), []string{"n-1", "n-2", "n-3"})
	walkPages(t, c, store.Query{Index: store.ByID, Range: &store.Bound{Gte: "id-02"}}, 3, all[1:])
	desc := slices.Clone(all)
	slices.Reverse(desc)
	walkPages(t, c, store.Query{Index: store.ByID, Desc: true}, 4, desc)
	wantIDs(t, "in id-09, id-03, n-2, b's id-055, absent", find(t, c, store.Query{Index: store.ByID, In: []any{"id-09", "id-03", "n-2", "id-055", "nope"}}),
		[]string{"id-03", "id-09", "n-2"})
	if n, err := c.Count(t.Context(), store.Query{Index: store.ByID, Range: &store.Bound{Lt: "id-05"}}); err != nil || n != 4 {
		t.Errorf("count of ids below id-05: %d (%v), want 4", n, err)
	}
	if _, err := c.Find(t.Context(), store.Query{Index: store.ByID, Eq: []any{"id-01", "x"}}); !errors.Is(err, store.ErrBadQuery) {
		t.Errorf("two equalities on the primary key: %v, want ErrBadQuery", err)
	}
}

func testCount(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	docs := seed(t, c)
	count := func(q store.Query) int64 {
		t.Helper()
		n, err := c.Count(t.Context(), q)
		if err != nil {
			t.Fatalf("count %+v: %v", q, err)
		}
		return n
	}
	cases := []struct {
		name string
		q    store.Query
		want int
	}{
		{"all", store.Query{Index: ByOwnerN}, len(docs) + 3},
		{"eq", store.Query{Index: ByOwnerN, Eq: []any{"o"}}, len(docs)},
		{"eq full", store.Query{Index: ByOwnerN, Eq: []any{"o", 3}}, 3},
		{"range", store.Query{Index: ByOwnerN, Eq: []any{"o"}, Range: &store.Bound{Gte: 3, Lt: 8}}, len(expect(docs, func(d Thing) bool { return d.N >= 3 && d.N < 8 }, false))},
		{"time range", store.Query{Index: ByOwnerAt, Eq: []any{"o"}, Range: &store.Bound{Gt: base}}, len(expect(docs, func(d Thing) bool { return d.N > 0 }, false))},
		{"none", store.Query{Index: ByOwnerN, Eq: []any{"nobody"}}, 0},
		// Limit and After do not apply to counts.
		{"limit ignored", store.Query{Index: ByOwnerN, Eq: []any{"o"}, Limit: 2, After: "garbage"}, len(docs)},
	}
	for _, tc := range cases {
		if got := count(tc.q); got != int64(tc.want) {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	// An empty collection counts zero.
	n, err := s.Tenant("ws-a").C(Others).Count(t.Context(), store.Query{Index: ByScore})
	if err != nil || n != 0 {
		t.Fatalf("empty count: %d, %v", n, err)
	}
}

func testTenantIsolation(t *testing.T, b store.Backend) {
	s := open(t, b)
	a := s.Tenant("ws-a").C(Things)
	bb := s.Tenant("ws-b").C(Things)
	doc := thing("shared-id", "o", 1)
	mustInsert(t, a, doc)

	// The stored document carries A's workspace, whatever the caller set.
	forged := thing("forged", "o", 2)
	forged.WorkspaceID = "ws-b"
	mustInsert(t, a, forged)
	if got := mustGet(t, a, "forged"); got.WorkspaceID != "ws-a" {
		t.Fatalf("workspaceId not stamped: %q", got.WorkspaceID)
	}
	wantErr(t, "B reads forged", bb.Get(t.Context(), "forged", &Thing{}), store.ErrNotFound)

	wantErr(t, "B get", bb.Get(t.Context(), "shared-id", &Thing{}), store.ErrNotFound)
	wantIDs(t, "B find", find(t, bb, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), nil)
	wantIDs(t, "B find all", find(t, bb, store.Query{Index: ByOwnerN}), nil)
	if n, err := bb.Count(t.Context(), store.Query{Index: ByOwnerN}); err != nil || n != 0 {
		t.Fatalf("B count: %d, %v", n, err)
	}
	evil := thing("shared-id", "evil", 666)
	evil.Version = 2
	wantErr(t, "B replace", bb.Replace(t.Context(), evil, 1), store.ErrNotFound)
	wantErr(t, "B delete", bb.Delete(t.Context(), "shared-id"), store.ErrNotFound)
	if got := mustGet(t, a, "shared-id"); got.Owner != "o" || got.Version != 1 {
		t.Fatalf("A's doc changed: %+v", got)
	}

	// A cursor from A's results shows nothing of A to B.
	docsA, err := a.Find(t.Context(), store.Query{Index: ByOwnerN, Limit: 1})
	if err != nil || len(docsA) != 1 {
		t.Fatalf("A find: %v", err)
	}
	wantIDs(t, "B with A's cursor", find(t, bb, store.Query{Index: ByOwnerN, After: docsA[0].Key}), nil)

	// Ids are globally unique (MongoDB's _id index is not per workspace):
	// B cannot take A's id, by Insert or by Put, and A's document is left
	// as it was.
	mine := thing("shared-id", "b-owner", 7)
	mine.Key = "b-key"
	wantDup(t, "B insert A's id", bb.Insert(t.Context(), mine), Things, "_id")
	wantDup(t, "B put A's id", bb.Put(t.Context(), mine), Things, "_id")
	wantErr(t, "B get after refused writes", bb.Get(t.Context(), "shared-id", &Thing{}), store.ErrNotFound)
	if got := mustGet(t, a, "shared-id"); got.Owner != "o" || got.Version != 1 || got.WorkspaceID != "ws-a" {
		t.Fatalf("A's doc after B's writes: %+v", got)
	}
	// B's own documents live beside A's, unseen by A.
	mustInsert(t, bb, thing("b-only", "o", 1))
	wantErr(t, "A get B's doc", a.Get(t.Context(), "b-only", &Thing{}), store.ErrNotFound)
	wantIDs(t, "A find", find(t, a, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"shared-id", "forged"})
}

func testReopen(t *testing.T, b store.Backend) {
	s1 := open(t, b)
	mustInsert(t, s1.Tenant("ws-a").C(Things), thing("a", "o", 1), thing("b", "o", 2))
	if err := s1.Tenant("ws-a").C(Others).Insert(t.Context(), bson.D{{Key: "_id", Value: "x"}, {Key: "score", Value: 1.5}}); err != nil {
		t.Fatalf("insert other: %v", err)
	}
	// Declaring the same collections again is a no-op, data included.
	s2 := open(t, b)
	c := s2.Tenant("ws-a").C(Things)
	if got := mustGet(t, c, "a"); got.N != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	wantIDs(t, "find after reopen", find(t, c, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a", "b"})
	// Indexes still enforce uniqueness after being declared twice.
	d := thing("c", "o", 3)
	d.Key = "a"
	wantDup(t, "unique after reopen", c.Insert(t.Context(), d), Things, ByKindKey)
	wantDup(t, "_id after reopen", c.Insert(t.Context(), withKey(thing("a", "o", 9), "a-2")), Things, "_id")
	var o bson.M
	if err := s2.Tenant("ws-a").C(Others).Get(t.Context(), "x", &o); err != nil || o["score"] != 1.5 {
		t.Fatalf("other after reopen: %v %v", o, err)
	}
	if err := s2.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// ByTag is declared only on a second Open, over existing documents.
const ByTag = "by_tag" // (tag)

func withIndexes(extra ...store.Index) []store.CollectionSpec {
	specs := slices.Clone(Specs)
	specs[0].Indexes = append(slices.Clone(specs[0].Indexes), extra...)
	return specs
}

func testAddIndex(t *testing.T, b store.Backend) {
	s1 := open(t, b)
	c1 := s1.Tenant("ws-a").C(Things)
	mustInsert(t, c1, thing("c", "o", 1), thing("a", "o", 2), thing("b", "o", 3))
	mustInsert(t, s1.Tenant("ws-b").C(Things), thing("z", "o", 1))

	s2, err := store.Open(t.Context(), b, withIndexes(store.Index{Name: ByTag, Fields: []string{"tag"}}))
	if err != nil {
		t.Fatalf("open with a new index: %v", err)
	}
	c2 := s2.Tenant("ws-a").C(Things)
	mustInsert(t, c2, thing("aa", "o", 4))
	wantIDs(t, "new index over old and new docs", find(t, c2, store.Query{Index: ByTag}), []string{"a", "aa", "b", "c"})
	p := "t-a"
	wantIDs(t, "new index prefix", find(t, c2, store.Query{Index: ByTag, Range: &store.Bound{Prefix: &p}, Desc: true}), []string{"aa", "a"})
	// The earlier Store still works; it just does not know the new index.
	mustInsert(t, c1, thing("d", "o", 5))
	wantIDs(t, "new index sees writes of the old Store", find(t, c2, store.Query{Index: ByTag, Range: &store.Bound{Gte: "t-c"}}), []string{"c", "d"})
	_, err = c1.Find(t.Context(), store.Query{Index: ByTag})
	wantErr(t, "old Store, new index", err, store.ErrBadQuery)
}

// testRetireIndex: a retired index is dropped from the engine (a unique
// one stops refusing duplicates; the name can be declared again with
// another definition) and can no longer be queried.
func testRetireIndex(t *testing.T, b store.Backend) {
	byTag := store.Index{Name: "by_tag_unique", Fields: []string{"tag"}, Unique: true}
	s := open(t, b)
	if _, err := store.Open(t.Context(), b, withIndexes(byTag)); err != nil {
		t.Fatal(err)
	}
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("a", "o", 1))
	sameTag := thing("b", "o", 2)
	sameTag.Tag = "t-a"

	retired := withIndexes()
	retired[0].Retired = []string{byTag.Name}
	s2, err := store.Open(t.Context(), b, retired)
	if err != nil {
		t.Fatalf("open retiring %s: %v", byTag.Name, err)
	}
	c2 := s2.Tenant("ws-a").C(Things)
	if err := c2.Insert(t.Context(), sameTag); err != nil {
		t.Errorf("a tag the retired unique index refused: %v, want stored", err)
	}
	if _, err := c2.Find(t.Context(), store.Query{Index: byTag.Name}); !errors.Is(err, store.ErrBadQuery) {
		t.Errorf("query by a retired index: %v, want ErrBadQuery", err)
	}
	// Retiring again (every open does) is a no-op.
	if _, err := store.Open(t.Context(), b, retired); err != nil {
		t.Errorf("open retiring it again: %v", err)
	}
	redefined := withIndexes(store.Index{Name: byTag.Name, Fields: []string{"owner", "tag"}})
	if _, err := store.Open(t.Context(), b, redefined); err != nil {
		t.Errorf("the retired name declared again, another definition: %v", err)
	}
	both := withIndexes(byTag)
	both[0].Retired = []string{byTag.Name}
	if _, err := store.Open(t.Context(), b, both); err == nil {
		t.Error("an index both declared and retired was accepted")
	}
}

func testRedefineIndex(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	mustInsert(t, c, thing("a", "o", 1), thing("b", "o", 2))

	// Changing an index under the same name is refused, not done silently:
	// dropping uniqueness or reordering fields changes what callers get.
	redefined := withIndexes()
	for i, ix := range redefined[0].Indexes {
		if ix.Name == ByKindKey {
			redefined[0].Indexes[i] = store.Index{Name: ByKindKey, Fields: []string{"kind", "key"}}
		}
	}
	if _, err := store.Open(t.Context(), b, redefined); err == nil || !strings.Contains(err.Error(), ByKindKey) {
		t.Errorf("unique index made non-unique: err = %v, want an error naming %s", err, ByKindKey)
	}
	reordered := withIndexes()
	for i, ix := range reordered[0].Indexes {
		if ix.Name == ByOwnerN {
			reordered[0].Indexes[i] = store.Index{Name: ByOwnerN, Fields: []string{"n", "owner"}}
		}
	}
	if _, err := store.Open(t.Context(), b, reordered); err == nil || !strings.Contains(err.Error(), ByOwnerN) {
		t.Errorf("reordered index: err = %v, want an error naming %s", err, ByOwnerN)
	}
	// A unique index the stored documents already violate cannot be built.
	dupTags := withIndexes(store.Index{Name: "by_owner_unique", Fields: []string{"owner"}, Unique: true})
	if _, err := store.Open(t.Context(), b, dupTags); err == nil {
		t.Error("unique index over duplicate values accepted")
	}

	// The original declaration still holds.
	s2 := open(t, b)
	c2 := s2.Tenant("ws-a").C(Things)
	wantDup(t, "unique after refused redefinition", c2.Insert(t.Context(), withKey(thing("c", "o", 3), "a")), Things, ByKindKey)
	mustInsert(t, c2, thing("c", "o", 3))
	wantIDs(t, "index after refused redefinition", find(t, c2, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"a", "b", "c"})
}

// Writes made through store.Together keep each its own outcome, as if
// made alone, whether they are a fn's first (held, on an engine that
// commits in groups) or a later one, and a fn that writes nothing, or
// waits for another, holds nobody up for long.
func testTogether(t *testing.T, b store.Backend) {
	s := open(t, b)
	things, others := s.Tenant("ws-a").C(Things), s.Tenant("ws-a").C(Others)
	mustInsert(t, things, thing("taken", "o", 0))
	var (
		inserted, dup, replaced, second, deleted error
		many                                     []error
	)
	store.Together(t.Context(),
		func(ctx context.Context) { inserted = things.Insert(ctx, thing("t1", "o", 1)) },
		func(ctx context.Context) { dup = things.Insert(ctx, withKey(thing("taken", "o", 2), "other")) },
		func(ctx context.Context) {
			many, _ = others.InsertMany(ctx, []any{
				bson.D{{Key: "_id", Value: "x1"}, {Key: "score", Value: 1.5}},
				bson.D{{Key: "_id", Value: "x2"}, {Key: "score", Value: 2.5}},
			})
		},
		func(ctx context.Context) {}, // writes nothing
		func(ctx context.Context) {
			var got Thing
			if replaced = things.Get(ctx, "taken", &got); replaced != nil { // a read first
				return
			}
			got.N, got.Version = 10, got.Version+1
			if replaced = things.Replace(ctx, got, got.Version-1); replaced != nil {
				return
			}
			second = things.Replace(ctx, got, got.Version-1) // stale now: the first moved it
		},
		func(ctx context.Context) { deleted = others.Delete(ctx, "missing") },
	)
	if inserted != nil || replaced != nil || len(many) != 2 || many[0] != nil || many[1] != nil {
		t.Fatalf("insert %v, replace %v, insert many %v", inserted, replaced, many)
	}
	var dk *store.DuplicateKeyError
	if !errors.As(dup, &dk) || dk.Index != "_id" {
		t.Fatalf("held duplicate: %v", dup)
	}
	if !errors.Is(second, store.ErrConflict) || !errors.Is(deleted, store.ErrNotFound) {
		t.Fatalf("second replace %v, delete of a missing document %v", second, deleted)
	}
	if got := mustGet(t, things, "taken"); got.N != 10 {
		t.Fatalf("replaced document: %+v", got)
	}
	if n, err := others.Count(t.Context(), store.Query{Index: ByScore}); err != nil || n != 2 {
		t.Fatalf("others: %d, %v", n, err)
	}
	wantIDs(t, "things", find(t, things, store.Query{Index: ByOwnerN, Eq: []any{"o"}}), []string{"t1", "taken"})

	// A fn that waits, before its first write, for another's write to
	// land delays it a moment only.
	landed := make(chan struct{})
	var first, after error
	store.Together(t.Context(),
		func(ctx context.Context) {
			first = things.Insert(ctx, thing("w1", "w", 1))
			close(landed)
		},
		func(ctx context.Context) {
			<-landed
			after = things.Insert(ctx, thing("w2", "w", 2))
		},
	)
	if first != nil || after != nil {
		t.Fatalf("waiting fns: %v, %v", first, after)
	}
	wantIDs(t, "waited", find(t, things, store.Query{Index: ByOwnerN, Eq: []any{"w"}}), []string{"w1", "w2"})
}

func reversed(in []string) []string {
	out := slices.Clone(in)
	slices.Reverse(out)
	return out
}

// Merged: In's values' documents come together in the order of the
// field after the In field (then _id), bounded by a range on it, paged
// with After in that order, in both directions, in the workspace only; it
// needs In and a field after it.
func testFindMerged(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	var docs []Thing
	for i, owner := range []string{"a", "b", "c", "d", "a", "b", "c", "a", "b", "a", "d", "c"} {
		// Ties across owners: n repeats every five documents.
		docs = append(docs, thing(fmt.Sprintf("m-%02d", i), owner, int64(i%5)))
	}
	mustInsert(t, c, docs...)
	mustInsert(t, s.Tenant("ws-b").C(Things), thing("m-other", "a", 1))
	owners := []any{"a", "c", "zz"}
	for _, desc := range []bool{false, true} {
		for _, bound := range []*store.Bound{nil, {Lt: base.Add(3 * time.Minute)}, {Gte: base.Add(time.Minute)}} {
			name := fmt.Sprintf("desc %v, bound %+v", desc, bound)
			var want []Thing
			for _, d := range docs {
				if !slices.Contains(owners, any(d.Owner)) {
					continue
				}
				if bound != nil && (bound.Lt != nil && !d.At.Before(bound.Lt.(time.Time)) || bound.Gte != nil && d.At.Before(bound.Gte.(time.Time))) {
					continue
				}
				want = append(want, d)
			}
			sort.Slice(want, func(i, j int) bool {
				less := want[i].At.Before(want[j].At) || want[i].At.Equal(want[j].At) && want[i].ID < want[j].ID
				if desc {
					return !less
				}
				return less
			})
			wantOrder := make([]string, len(want))
			for i, d := range want {
				wantOrder[i] = d.ID
			}
			var got []string
			q := store.Query{Index: ByOwnerAt, In: owners, Merged: true, Range: bound, Desc: desc, Limit: 2}
			for range 20 {
				page, err := c.Find(t.Context(), q)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, d := range page {
					id, _ := d.Raw.Lookup("_id").StringValueOK()
					got = append(got, id)
					q.After = d.Key
				}
				if len(page) < q.Limit {
					break
				}
			}
			if !slices.Equal(got, wantOrder) {
				t.Errorf("%s: got %v, want %v", name, got, wantOrder)
			}
		}
	}
	if n, err := c.Count(t.Context(), store.Query{Index: ByOwnerAt, In: owners, Merged: true, Range: &store.Bound{Lt: base.Add(3 * time.Minute)}}); err != nil || n != 5 {
		t.Errorf("count: %d (%v), want 5", n, err)
	}
	for name, q := range map[string]store.Query{
		"without In":           {Index: ByOwnerAt, Merged: true},
		"no field after In":    {Index: ByName, In: []any{"x"}, Merged: true},
		"no field after equal": {Index: ByOwnerAt, Eq: []any{"a"}, In: []any{base}, Merged: true},
	} {
		_, err := c.Find(t.Context(), q)
		wantErr(t, name, err, store.ErrBadQuery)
	}
}

// IDs returns what Find would, as ids, for every shape of read.
func testIDs(t *testing.T, b store.Backend) {
	s := open(t, b)
	c := s.Tenant("ws-a").C(Things)
	seed(t, c)
	mustInsert(t, s.Tenant("ws-b").C(Things), thing("b-1", "o", 3))
	for name, q := range map[string]store.Query{
		"owner o":          {Index: ByOwnerN, Eq: []any{"o"}},
		"descending":       {Index: ByOwnerN, Eq: []any{"o"}, Desc: true, Limit: 4},
		"a range":          {Index: ByOwnerN, Eq: []any{"o"}, Range: &store.Bound{Gte: 3, Lt: 8}},
		"in":               {Index: ByOwnerN, Eq: []any{"o"}, In: []any{8, 3}},
		"merged":           {Index: ByOwnerAt, In: []any{"o", "a"}, Merged: true, Desc: true, Limit: 5},
		"merged unique":    {Index: ByKindKey, In: []any{"k", "nope"}, Merged: true, Desc: true},
		"by id":            {Index: store.ByID, Limit: 3},
		"unique index":     {Index: ByKindKey, Eq: []any{"k"}},
		"an empty In list": {Index: ByOwnerN, In: []any{}},
	} {
		want := find(t, c, q)
		got, err := c.IDs(t.Context(), q)
		if err != nil || len(got)+len(want) > 0 && !slices.Equal(got, want) {
			t.Errorf("%s: ids %v (%v), want %v", name, got, err, want)
		}
	}
	_, err := c.IDs(t.Context(), store.Query{Index: "nope"})
	wantErr(t, "an unknown index", err, store.ErrBadQuery)
}
