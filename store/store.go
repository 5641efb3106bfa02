// Package store is Halo's only door to storage.
//
// Documents are MongoDB documents (BSON) everywhere. Two engines hold them
// behind the Backend interface: MongoDB (production) and SQLite (embedded
// default). Store wraps a Backend and does everything that must behave the
// same on both — encoding, workspace stamping, index resolution, keyset
// cursors — so an engine only translates a resolved request to its query
// language. The conformance suite in store/storetest keeps engines honest.
//
// Rules every caller can rely on:
//   - Every document carries workspaceId; Store stamps it and every read and
//     write is filtered by it. A Tenant is the only way to reach documents.
//   - Document ids (_id) are strings and globally unique (NewID), so the
//     MongoDB engine can use them as _id unchanged.
//   - Range reads go through a declared index: equality on a prefix of its
//     fields, an optional bound on the next field, ordered by the remaining
//     fields and then _id, resumable from an opaque keyset cursor.
//   - No multi-document transactions: callers design writes as idempotent
//     steps guarded by unique indexes and the version field (compare-and-swap).
package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Errors returned by Store. Test with errors.Is.
var (
	ErrNotFound     = errors.New("store: document not found")
	ErrDuplicateKey = errors.New("store: duplicate key")
	ErrConflict     = errors.New("store: version conflict")
	ErrBadCursor    = errors.New("store: malformed cursor")
	ErrBadQuery     = errors.New("store: invalid query")
)

// DuplicateKeyError reports which unique index refused a write.
// It matches ErrDuplicateKey with errors.Is.
type DuplicateKeyError struct {
	Collection string
	Index      string // "_id" for the primary key
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("store: duplicate key in %s (index %s)", e.Collection, e.Index)
}

func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// Index is a declared index. workspaceId is implicitly its first field and,
// for non-unique indexes, _id its last, so every index is tenant-scoped and
// gives a total order.
type Index struct {
	Name   string
	Fields []string // dotted paths into the document, e.g. "profileId", "computed.lastSeen"
	Unique bool     // unique over (workspaceId, Fields...)
}

// CollectionSpec declares a collection and its indexes. All indexed fields
// must be present (non-null) in every document of the collection.
type CollectionSpec struct {
	Name    string
	Indexes []Index
	// Retired names indexes the collection once declared and no longer
	// uses: opening the store drops them where they exist, so writes stop
	// maintaining them. (An index merely left out of a spec stays: another
	// Store on the database may declare it.)
	Retired []string
	// LargeDocuments says the collection's documents commonly exceed
	// about 1 KB (profiles). Engines may store them differently: the
	// embedded one keeps them in a rowid table, so that a rewrite does not
	// spill onto an overflow page, and moves an existing collection there
	// when the store is opened. MongoDB ignores it.
	LargeDocuments bool
}

// Bound is a range condition on one index field. Nil members are unbounded.
// Prefix, for string fields, matches values that start with it.
type Bound struct {
	Gt, Gte, Lt, Lte any
	Prefix           *string
}

// ByID is the index every collection has without declaring it: the
// primary key, _id alone. Ids are time-ordered (NewID), so a Range over it
// reads the documents created in a span of time, with no index of their
// own (crash recovery's "what was stored since then").
const ByID = "_id"

// Query is a range read over a declared index (or ByID).
type Query struct {
	Index string // name of a declared index of the collection
	// Eq holds values for the first len(Eq) index fields.
	Eq []any
	// Range bounds the index field right after the Eq prefix.
	Range *Bound
	// In, when set, matches any of its values (at most MaxIn) in the index
	// field right after the Eq prefix: many look-ups in one read. An empty
	// non-nil list matches nothing. Not with Range or After, unless
	// Merged.
	In []any
	// Merged, with In, orders the documents of all In values together by
	// the index fields after the In field (then _id), instead of value by
	// value: the newest items of many people at once. Range then bounds
	// the field after the In field, and After resumes in that order.
	Merged bool
	// Desc orders by the remaining fields (and _id) descending.
	Desc bool
	// After resumes after the document whose Key this is (keyset pagination).
	After string
	// Limit caps the result; 0 means no limit.
	Limit int
}

// Doc is one document read from the store, with its keyset position.
type Doc struct {
	Raw bson.Raw
	// Key is an opaque, URL-safe cursor for this document in the query's
	// index order; pass it as Query.After to continue after it.
	Key string
}

// Decode unmarshals the document into out (a pointer to a struct or map).
func (d Doc) Decode(out any) error { return bson.Unmarshal(d.Raw, out) }

// MaxIn caps Query.In.
const MaxIn = 1000

// InLists splits values into Query.In lists of at most MaxIn: a look-up
// of any number of values, one read per list.
func InLists[T any](values []T) iter.Seq[[]any] {
	return func(yield func([]any) bool) {
		for chunk := range slices.Chunk(values, MaxIn) {
			in := make([]any, len(chunk))
			for i, v := range chunk {
				in[i] = v
			}
			if !yield(in) {
				return
			}
		}
	}
}

// ResolvedQuery is a Query after Store has checked it against the index
// declaration and decoded its cursor. Values are canonical: string, int64,
// float64, bool or bson.DateTime.
type ResolvedQuery struct {
	Index     Index
	Eq        []any
	RangeFrom *RangeEdge // lower bound on Index.Fields[len(Eq)]
	RangeTo   *RangeEdge // upper bound on Index.Fields[len(Eq)]
	In        []any      // any of these values in Index.Fields[len(Eq)]
	// Merged: ordered by the fields after the In field, which is left
	// out of the order; the range is on the field after the In field.
	Merged bool
	Desc   bool
	// After, when set, holds the values of Index.Fields[len(Eq):] followed by
	// the _id of the last document already seen.
	After []any
	Limit int
	none  bool // an empty In: Store answers without asking the engine
}

// RangeEdge is one side of a range.
type RangeEdge struct {
	Value     any
	Inclusive bool
}

// RangeField is the position in Index.Fields of the field a range bounds:
// the one after the equality prefix, or after the In field when Merged.
func (q ResolvedQuery) RangeField() int {
	if q.Merged {
		return len(q.Eq) + 1
	}
	return len(q.Eq)
}

// OrderFields are the fields results are ordered by: the index fields after
// the equality prefix (and after the In field, when Merged), then _id.
func (q ResolvedQuery) OrderFields() []string {
	out := append([]string{}, q.Index.Fields[q.RangeField():]...)
	if len(out) > 0 && out[len(out)-1] == "_id" {
		return out // ByID
	}
	return append(out, "_id")
}

// Backend is what a storage engine implements. Store calls it with
// validated, canonical arguments; ws is never empty.
type Backend interface {
	// EnsureCollections creates collections and indexes idempotently.
	EnsureCollections(ctx context.Context, specs []CollectionSpec) error
	Get(ctx context.Context, coll, ws, id string) (bson.Raw, error)
	// Insert adds doc (which holds _id and workspaceId). A unique index
	// violation returns *DuplicateKeyError.
	Insert(ctx context.Context, coll, ws string, doc bson.Raw) error
	// InsertMany inserts docs independently (not atomically); errs[i] is
	// the outcome of docs[i]. The returned error is for failures of the
	// call as a whole.
	InsertMany(ctx context.Context, coll, ws string, docs []bson.Raw) (errs []error, err error)
	// Replace swaps the document with id for doc only if the stored
	// document's version equals expectedVersion: ErrConflict if it differs,
	// ErrNotFound if there is no such document.
	Replace(ctx context.Context, coll, ws, id string, expectedVersion int64, doc bson.Raw) error
	// Put inserts or replaces unconditionally.
	Put(ctx context.Context, coll, ws, id string, doc bson.Raw) error
	// Delete removes one document; ErrNotFound if absent.
	Delete(ctx context.Context, coll, ws, id string) error
	// DeleteMany removes the documents Find(q) would return (in its
	// order, after q.After, at most q.Limit) and returns how many it
	// removed. It is not atomic: a failure can leave part of them.
	DeleteMany(ctx context.Context, coll, ws string, q ResolvedQuery) (int64, error)
	Find(ctx context.Context, coll, ws string, q ResolvedQuery) ([]bson.Raw, error)
	Count(ctx context.Context, coll, ws string, q ResolvedQuery) (int64, error)
	Ping(ctx context.Context) error
	Close(ctx context.Context) error
}

// OverReplacer is a Backend whose compare-and-swap can use the document
// it replaces, as the caller read it (stored, at expectedVersion), to
// rewrite only the index entries whose values change, without reading the
// row first (the embedded engine: SQLite rewrites the entry of every
// column an UPDATE names). A stored that does not carry expectedVersion
// is ignored.
type OverReplacer interface {
	ReplaceOver(ctx context.Context, coll, ws, id string, expectedVersion int64, doc, stored bson.Raw) error
}

// IDFinder is a Backend that reads the ids of a range read alone, from
// its index, without the documents (the embedded engine: the index holds
// the id). Collection.IDs reads whole documents from other engines.
type IDFinder interface {
	FindIDs(ctx context.Context, coll, ws string, q ResolvedQuery) ([]string, error)
}

// DateTime converts t to the BSON datetime (millisecond precision) that
// documents and query values use for times.
func DateTime(t time.Time) bson.DateTime { return bson.NewDateTimeFromTime(t) }
