package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

const items = "items"

var specs = []store.CollectionSpec{{Name: items, Indexes: []store.Index{
	{Name: "by_name", Fields: []string{"name"}},
	{Name: "by_group_at", Fields: []string{"group", "at"}},
	{Name: "by_code", Fields: []string{"code"}, Unique: true},
}}}

type item struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Name        string    `bson:"name"`
	Group       string    `bson:"group"`
	At          time.Time `bson:"at"`
	Code        string    `bson:"code"`
	Version     int64     `bson:"version"`
}

func open(t *testing.T) (context.Context, *store.Store) {
	t.Helper()
	ctx := t.Context()
	b, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, b, specs)
	if err != nil {
		b.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return ctx, s
}

func TestQueryValidation(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	p := "x"
	tests := []struct {
		name string
		q    store.Query
	}{
		{"unknown index", store.Query{Index: "by_nothing"}},
		{"index of another collection", store.Query{Index: "by_profile_time"}},
		{"too many Eq", store.Query{Index: "by_name", Eq: []any{"a", "b"}}},
		{"too many Eq on two fields", store.Query{Index: "by_group_at", Eq: []any{"g", at, "extra"}}},
		{"range without a free field", store.Query{Index: "by_group_at", Eq: []any{"g", at}, Range: &store.Bound{Gte: at}}},
		{"Gt and Gte", store.Query{Index: "by_group_at", Eq: []any{"g"}, Range: &store.Bound{Gt: at, Gte: at}}},
		{"Lt and Lte", store.Query{Index: "by_group_at", Eq: []any{"g"}, Range: &store.Bound{Lt: at, Lte: at}}},
		{"prefix with a bound", store.Query{Index: "by_name", Range: &store.Bound{Prefix: &p, Gte: "a"}}},
		{"negative limit", store.Query{Index: "by_name", Limit: -1}},
		{"unsupported Eq value", store.Query{Index: "by_name", Eq: []any{[]string{"a"}}}},
		{"nil Eq value", store.Query{Index: "by_name", Eq: []any{nil}}},
		{"unsupported range value", store.Query{Index: "by_name", Range: &store.Bound{Gte: struct{}{}}}},
		{"unsupported upper bound", store.Query{Index: "by_name", Range: &store.Bound{Lt: uint(3)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Find(ctx, tt.q); !errors.Is(err, store.ErrBadQuery) {
				t.Errorf("Find err = %v, want ErrBadQuery", err)
			}
			if _, err := c.Count(ctx, tt.q); tt.name != "negative limit" && !errors.Is(err, store.ErrBadQuery) {
				t.Errorf("Count err = %v, want ErrBadQuery", err)
			}
			var out item
			if err := c.FindOne(ctx, tt.q, &out); tt.name != "negative limit" && !errors.Is(err, store.ErrBadQuery) {
				t.Errorf("FindOne err = %v, want ErrBadQuery", err)
			}
		})
	}
	// Count ignores Limit (and After).
	if _, err := c.Count(ctx, store.Query{Index: "by_name", Limit: -1, After: "garbage!"}); err != nil {
		t.Errorf("Count with Limit/After: %v", err)
	}
}

func TestCanonical(t *testing.T) {
	at := time.Date(2024, 2, 3, 4, 5, 6, 7_000_000, time.FixedZone("X", 3600))
	dt := bson.NewDateTimeFromTime(at)
	tests := []struct {
		in   any
		want any
	}{
		{"s", "s"},
		{"", ""},
		{42, int64(42)},
		{int32(-7), int64(-7)},
		{int64(1 << 40), int64(1 << 40)},
		{float32(1.5), float64(1.5)},
		{2.25, 2.25},
		{true, true},
		{at, dt},
		{dt, dt},
	}
	for _, tt := range tests {
		got, err := store.Canonical(tt.in)
		if err != nil {
			t.Errorf("Canonical(%#v): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Canonical(%#v) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
		}
	}
	if got, _ := store.Canonical(at); got.(bson.DateTime).Time().UnixMilli() != at.UnixMilli() {
		t.Errorf("time lost precision beyond milliseconds: %v", got)
	}
	for _, bad := range []any{nil, uint(1), uint64(1), int8(1), []byte("x"), []any{1}, map[string]any{}, struct{}{}, &at} {
		if v, err := store.Canonical(bad); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("Canonical(%#v) = %#v, %v; want ErrBadQuery", bad, v, err)
		}
	}
}

func cursor(t *testing.T, doc any) string {
	t.Helper()
	b, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestCursorDecoding(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := c.Insert(ctx, item{ID: fmt.Sprintf("id%d", i), Name: fmt.Sprintf("n%d", i), Group: "g", At: base.Add(time.Duration(i) * time.Hour), Code: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	q := store.Query{Index: "by_group_at", Eq: []any{"g"}, Limit: 2}
	docs, err := c.Find(ctx, q)
	if err != nil || len(docs) != 2 {
		t.Fatalf("first page: %d docs, %v", len(docs), err)
	}
	real := docs[1].Key

	// A real cursor continues after its document.
	q.After = real
	next, err := c.Find(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range next {
		var it item
		if err := d.Decode(&it); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	if !reflect.DeepEqual(ids, []string{"id2", "id3"}) {
		t.Fatalf("page after cursor: %v", ids)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(real)
	// The cursor is {k: [at (datetime), _id (string)]}.
	dtAt := bytes.Index(raw, []byte{0x09, '0', 0})
	strAt := bytes.Index(raw, []byte{0x02, '1', 0})
	if dtAt < 0 || strAt < 0 {
		t.Fatalf("cursor layout unexpected: % x", raw)
	}
	retyped := slices.Clone(raw)
	retyped[dtAt] = 0x03 // the datetime now claims to be a document
	restrung := slices.Clone(raw)
	restrung[strAt+3] += 9 // the _id string's length runs past the end
	nulled := slices.Clone(raw)
	nulled[strAt] = 0x0A // the _id becomes null, its bytes garbage
	truncated := raw[:len(raw)-2]
	wrongLen := slices.Clone(raw)
	wrongLen[0]++ // declared length no longer matches

	bad := []struct {
		name string
		key  string
	}{
		{"not base64", "!!!not-base64!!!"},
		{"padded base64", base64.URLEncoding.EncodeToString(raw)},
		{"standard alphabet", "+/+/"},
		{"base64 of nothing useful", "AAAA"},
		{"empty document", cursor(t, bson.D{})},
		{"no k", cursor(t, bson.D{{Key: "x", Value: bson.A{"a", "b"}}})},
		{"k not an array", cursor(t, bson.D{{Key: "k", Value: "id1"}})},
		{"too few values", cursor(t, bson.D{{Key: "k", Value: bson.A{"id1"}}})},
		{"too many values", cursor(t, bson.D{{Key: "k", Value: bson.A{bson.NewDateTimeFromTime(base), "id1", "x"}}})},
		{"last value not a string", cursor(t, bson.D{{Key: "k", Value: bson.A{bson.NewDateTimeFromTime(base), int64(1)}}})},
		{"unsupported value type", cursor(t, bson.D{{Key: "k", Value: bson.A{bson.D{{Key: "a", Value: 1}}, "id1"}}})},
		{"null value", cursor(t, bson.D{{Key: "k", Value: bson.A{nil, "id1"}}})},
		{"tampered type tag", base64.RawURLEncoding.EncodeToString(retyped)},
		{"tampered string length", base64.RawURLEncoding.EncodeToString(restrung)},
		{"tampered to null", base64.RawURLEncoding.EncodeToString(nulled)},
		{"truncated", base64.RawURLEncoding.EncodeToString(truncated)},
		{"wrong declared length", base64.RawURLEncoding.EncodeToString(wrongLen)},
		{"truncated text", real[:len(real)-3]},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			q := store.Query{Index: "by_group_at", Eq: []any{"g"}, After: tt.key}
			docs, err := c.Find(ctx, q)
			if !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("Find err = %v (%d docs), want ErrBadCursor", err, len(docs))
			}
		})
	}

	// The same cursor on an index with another number of order fields.
	if _, err := c.Find(ctx, store.Query{Index: "by_group_at", After: real}); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("cursor of 2 values on a 3-field order: err = %v, want ErrBadCursor", err)
	}
}

func TestPrefixCoversNonASCII(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	names := []string{
		"zo", "zoa", "zoé", "zoë", "zo\u00ff", "zo\u07ff", "zo\uffff", "zo😀", "zo\U0010FFFD", "zp", "zn\U0010FFFD", "z",
		"日", "日本", "日本語", "日本\U0001F5FE", "日付", "東京",
	}
	for i, n := range names {
		if err := c.Insert(ctx, item{ID: fmt.Sprintf("id%02d", i), Name: n, Code: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"zo", []string{"zo", "zoa", "zoé", "zoë", "zo\u00ff", "zo\u07ff", "zo\uffff", "zo😀", "zo\U0010FFFD"}},
		{"zoë", []string{"zoë"}},
		{"日本", []string{"日本", "日本語", "日本\U0001F5FE"}},
		{"日", []string{"日", "日付", "日本", "日本語", "日本\U0001F5FE"}},
		{"東", []string{"東京"}},
		{"zq", nil},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			p := tt.prefix
			q := store.Query{Index: "by_name", Range: &store.Bound{Prefix: &p}}
			docs, err := c.Find(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				var it item
				if err := d.Decode(&it); err != nil {
					t.Fatal(err)
				}
				got = append(got, it.Name)
			}
			want := slices.Clone(tt.want)
			slices.Sort(want) // index order is binary UTF-8 order
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("prefix %q: got %q, want %q", tt.prefix, got, want)
			}
			n, err := c.Count(ctx, q)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
			}
			// Paging one at a time yields the same.
			var paged []string
			after := ""
			for {
				q.After, q.Limit = after, 1
				docs, err := c.Find(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(docs) == 0 {
					break
				}
				var it item
				if err := docs[0].Decode(&it); err != nil {
					t.Fatal(err)
				}
				paged = append(paged, it.Name)
				after = docs[0].Key
			}
			if !reflect.DeepEqual(paged, got) {
				t.Fatalf("paged %q, want %q", paged, got)
			}
		})
	}
}

func TestWorkspaceStampedOverForgedValue(t *testing.T) {
	ctx, s := open(t)
	a, other := s.Tenant("A"), s.Tenant("other")
	ca := a.C(items)
	forged := item{ID: "x1", WorkspaceID: "other", Name: "n", Code: "c1"}
	if err := ca.Insert(ctx, forged); err != nil {
		t.Fatal(err)
	}
	var got item
	if err := ca.Get(ctx, "x1", &got); err != nil {
		t.Fatalf("read back through A: %v", err)
	}
	if got.WorkspaceID != "A" {
		t.Fatalf("stored workspaceId = %q, want A", got.WorkspaceID)
	}
	if err := other.C(items).Get(ctx, "x1", &got); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("forged document visible to 'other': err = %v", err)
	}
	if docs, err := other.C(items).Find(ctx, store.Query{Index: "by_name"}); err != nil || len(docs) != 0 {
		t.Fatalf("'other' finds %d documents (err %v)", len(docs), err)
	}
	docs, err := ca.Find(ctx, store.Query{Index: "by_name", Eq: []any{"n"}})
	if err != nil || len(docs) != 1 {
		t.Fatalf("A finds %d documents (err %v)", len(docs), err)
	}
	if ws, err := store.LookupPath(docs[0].Raw, "workspaceId"); err != nil || ws.StringValue() != "A" {
		t.Fatalf("raw workspaceId = %v, %v", ws, err)
	}

	// Put and Replace stamp too; a map document without workspaceId gets one.
	if err := ca.Put(ctx, bson.M{"_id": "x2", "workspaceId": "other", "name": "m", "group": "g", "at": time.Now(), "code": "c2"}); err != nil {
		t.Fatal(err)
	}
	if err := ca.Replace(ctx, item{ID: "x1", WorkspaceID: "other", Name: "n2", Code: "c1", Version: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := ca.Insert(ctx, bson.D{{Key: "_id", Value: "x3"}, {Key: "name", Value: "k"}, {Key: "code", Value: "c3"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x1", "x2", "x3"} {
		var m bson.M
		if err := ca.Get(ctx, id, &m); err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if m["workspaceId"] != "A" {
			t.Errorf("%s: workspaceId = %#v, want A", id, m["workspaceId"])
		}
		if err := other.C(items).Get(ctx, id, &m); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s visible to 'other': %v", id, err)
		}
	}
	if n, err := other.C(items).Count(ctx, store.Query{Index: "by_code"}); err != nil || n != 0 {
		t.Fatalf("'other' counts %d (err %v)", n, err)
	}

	// Ids are global: another workspace can neither take nor touch A's.
	oc := other.C(items)
	if err := oc.Insert(ctx, item{ID: "x1", Name: "theirs", Code: "z1"}); !errors.Is(err, store.ErrDuplicateKey) {
		t.Fatalf("insert of A's id from 'other': %v, want ErrDuplicateKey", err)
	}
	if err := oc.Put(ctx, item{ID: "x1", Name: "theirs", Code: "z1"}); !errors.Is(err, store.ErrDuplicateKey) {
		t.Fatalf("put of A's id from 'other': %v, want ErrDuplicateKey", err)
	}
	if err := oc.Replace(ctx, item{ID: "x1", Name: "theirs", Code: "z1", Version: 2}, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replace of A's id from 'other': %v, want ErrNotFound", err)
	}
	if err := oc.Delete(ctx, "x1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of A's id from 'other': %v, want ErrNotFound", err)
	}
	if err := ca.Get(ctx, "x1", &got); err != nil || got.Name != "n2" || got.WorkspaceID != "A" {
		t.Fatalf("A's x1 after 'other' tried to write it: %+v, %v", got, err)
	}
	// Unique values are per workspace.
	if err := oc.Insert(ctx, item{ID: "y1", Name: "theirs", Code: "c1"}); err != nil {
		t.Fatalf("A's unique code in another workspace: %v", err)
	}
}

func TestEncodeRefusesBadIDs(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	for _, doc := range []any{
		bson.M{"name": "no id", "code": "a"},
		bson.M{"_id": "", "name": "empty", "code": "b"},
		bson.M{"_id": 7, "name": "int id", "code": "c"},
		bson.M{"_id": bson.NewObjectID(), "name": "oid", "code": "d"},
	} {
		if err := c.Insert(ctx, doc); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("Insert(%v) err = %v, want ErrBadQuery", doc, err)
		}
		if err := c.Put(ctx, doc); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("Put(%v) err = %v, want ErrBadQuery", doc, err)
		}
	}
	if _, err := c.InsertMany(ctx, []any{item{ID: "ok", Code: "x"}, bson.M{"name": "no id"}}); !errors.Is(err, store.ErrBadQuery) {
		t.Errorf("InsertMany with a bad document: err = %v, want ErrBadQuery", err)
	}
	if n, _ := c.Count(ctx, store.Query{Index: "by_code"}); n != 0 {
		t.Errorf("%d documents stored by refused writes", n)
	}
}

func TestDuplicateKeyAndConflict(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	if err := c.Insert(ctx, item{ID: "a", Code: "same"}); err != nil {
		t.Fatal(err)
	}
	err := c.Insert(ctx, item{ID: "b", Code: "same"})
	var dk *store.DuplicateKeyError
	if !errors.Is(err, store.ErrDuplicateKey) || !errors.As(err, &dk) || dk.Index != "by_code" || dk.Collection != items {
		t.Fatalf("unique violation: %v (%+v)", err, dk)
	}
	if err := c.Insert(ctx, item{ID: "a", Code: "other"}); !errors.Is(err, store.ErrDuplicateKey) {
		t.Fatalf("same _id: %v", err)
	}
	if err := c.Replace(ctx, item{ID: "a", Code: "same", Version: 6}, 5); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale version: %v, want ErrConflict", err)
	}
	if err := c.Replace(ctx, item{ID: "zz", Code: "q", Version: 1}, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replace missing: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "zz"); !errors.Is(err, store.ErrNotFound) || !store.IsNotFound(err) {
		t.Fatalf("delete missing: %v", err)
	}
	var out item
	if err := c.FindOne(ctx, store.Query{Index: "by_code", Eq: []any{"nope"}}, &out); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindOne of nothing: %v", err)
	}
}

func TestOpenAndTenantMisuse(t *testing.T) {
	ctx := t.Context()
	b, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if _, err := store.Open(ctx, b, []store.CollectionSpec{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Fatal("Open accepted a collection declared twice")
	}
	s, err := store.Open(ctx, b, specs)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Tenant("w").Workspace(); got != "w" {
		t.Fatalf("Workspace() = %q", got)
	}
	mustPanic(t, "empty workspace", func() { s.Tenant("") })
	mustPanic(t, "undeclared collection", func() { s.Tenant("w").C("nope") })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// Scan walks the same pages as Find, with only the last cursor, and
// refuses what Find refuses.
func TestScanPagesLikeFind(t *testing.T) {
	ctx, s := open(t)
	c := s.Tenant("ws").C(items)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		if err := c.Insert(ctx, item{ID: fmt.Sprintf("i%02d", i), Name: fmt.Sprintf("n%02d", i%7), Group: "g", At: base.Add(time.Duration(i) * time.Minute), Code: fmt.Sprint("c", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Tenant("other").C(items).Insert(ctx, item{ID: "x", Name: "n00", Code: "c"}); err != nil {
		t.Fatal(err)
	}
	var scanned, found []string
	after := ""
	for pages := 0; ; pages++ {
		docs, last, err := c.Scan(ctx, store.Query{Index: "by_name", After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			scanned = append(scanned, d.Lookup("_id").StringValue())
		}
		if len(docs) == 0 {
			if last != "" || pages != 3 {
				t.Fatalf("empty page %d: last %q", pages, last)
			}
			break
		}
		after = last
	}
	all, err := c.Find(ctx, store.Query{Index: "by_name"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		found = append(found, d.Raw.Lookup("_id").StringValue())
	}
	if !slices.Equal(scanned, found) || len(found) != 25 {
		t.Fatalf("scan %v\nfind %v", scanned, found)
	}
	if _, _, err := c.Scan(ctx, store.Query{Index: "by_nothing"}); !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("unknown index: %v", err)
	}
	if _, _, err := c.Scan(ctx, store.Query{Index: "by_name", After: "!!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// InLists splits any number of values into In lists of at most MaxIn,
// in order, and nothing into none.
func TestInLists(t *testing.T) {
	values := make([]string, 2*store.MaxIn+500)
	for i := range values {
		values[i] = fmt.Sprint(i)
	}
	var sizes []int
	var all []any
	for in := range store.InLists(values) {
		sizes = append(sizes, len(in))
		all = append(all, in...)
	}
	if !slices.Equal(sizes, []int{store.MaxIn, store.MaxIn, 500}) || len(all) != len(values) || all[store.MaxIn] != values[store.MaxIn] {
		t.Fatalf("lists of %v", sizes)
	}
	for range store.InLists([]string(nil)) {
		t.Fatal("a list of nothing")
	}
}

// IDAt bounds the ids NewID draws: below it before its instant, at or
// above it from then on.
func TestIDAtBoundsNewIDs(t *testing.T) {
	before := store.NewID()
	time.Sleep(2 * time.Millisecond)
	at := time.Now()
	from := store.IDAt(at)
	after := store.NewID()
	if !(before < from && from <= after) {
		t.Errorf("IDAt(%s) = %s; want between %s (drawn before) and %s (drawn after)", at.Format(time.RFC3339Nano), from, before, after)
	}
	if got := store.IDAt(at.Add(time.Millisecond)); got <= from {
		t.Errorf("IDAt one millisecond later = %s, not above %s", got, from)
	}
}
