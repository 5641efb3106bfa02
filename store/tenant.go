package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
)

// Store holds a Backend and the declared collections.
type Store struct {
	backend Backend
	specs   map[string]CollectionSpec
}

// Open declares specs on backend (creating collections and indexes
// idempotently) and returns the Store.
func Open(ctx context.Context, backend Backend, specs []CollectionSpec) (*Store, error) {
	byName := make(map[string]CollectionSpec, len(specs))
	for _, s := range specs {
		if _, dup := byName[s.Name]; dup {
			return nil, fmt.Errorf("collection %s declared twice", s.Name)
		}
		byName[s.Name] = s
	}
	if err := backend.EnsureCollections(ctx, specs); err != nil {
		return nil, fmt.Errorf("ensure collections: %w", err)
	}
	return &Store{backend: backend, specs: byName}, nil
}

// Ping reports whether the engine is reachable.
func (s *Store) Ping(ctx context.Context) error { return s.backend.Ping(ctx) }

// Close releases the engine.
func (s *Store) Close(ctx context.Context) error { return s.backend.Close(ctx) }

// Tenant returns the view of one workspace. It panics on an empty workspace:
// callers get the workspace from a verified token, so empty is a bug.
func (s *Store) Tenant(workspace string) Tenant {
	if workspace == "" {
		panic("store: empty workspace")
	}
	return Tenant{s: s, ws: workspace}
}

// Tenant is one workspace's view of the store.
type Tenant struct {
	s  *Store
	ws string
}

// Workspace is the tenant's id.
func (t Tenant) Workspace() string { return t.ws }

// System is the system workspace of the tenant's store, where bookkeeping
// that spans workspaces lives (the merge queue, the workspaces with
// segments or computed traits to resume).
func (t Tenant) System() Tenant { return t.s.Tenant(SystemWorkspace) }

// C returns a handle on a declared collection. It panics on an undeclared
// name: collection names are constants in code.
func (t Tenant) C(name string) Collection {
	spec, ok := t.s.specs[name]
	if !ok {
		panic("store: undeclared collection " + name)
	}
	return Collection{t: t, spec: spec}
}

// NewID returns a new globally unique, time-ordered document id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// IDAt is the smallest id NewID draws at t (to the millisecond): ids drawn
// from t on sort at or after it, those drawn before it below. A ByID range
// from IDAt(a) to IDAt(b) reads the documents created in [a, b).
func IDAt(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	return fmt.Sprintf("%08x-%04x-0000-0000-000000000000", ms>>16, ms&0xffff)
}

// IDTime is when NewID drew id (to the millisecond); false for an id it
// did not draw.
func IDTime(id string) (time.Time, bool) {
	if len(id) < 13 || id[8] != '-' {
		return time.Time{}, false
	}
	ms, err := strconv.ParseUint(id[:8]+id[9:13], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

// Collection is a workspace-scoped collection handle.
type Collection struct {
	t    Tenant
	spec CollectionSpec
}

// Get decodes the document with id into out.
func (c Collection) Get(ctx context.Context, id string, out any) error {
	raw, err := c.t.s.backend.Get(ctx, c.spec.Name, c.t.ws, id)
	if err != nil {
		return err
	}
	if err := bson.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s/%s: %w", c.spec.Name, id, err)
	}
	return nil
}

// Insert stores a new document. doc must marshal to a BSON document with a
// non-empty string _id; workspaceId is stamped.
func (c Collection) Insert(ctx context.Context, doc any) error {
	_, err := c.InsertStored(ctx, doc)
	return err
}

// InsertStored is Insert that returns the document as stored, for a
// later ReplaceOver.
func (c Collection) InsertStored(ctx context.Context, doc any) (bson.Raw, error) {
	raw, _, _, err := c.encode(doc)
	if err != nil {
		return nil, err
	}
	return raw, c.t.s.backend.Insert(ctx, c.spec.Name, c.t.ws, raw)
}

// GetRaw returns the stored bytes of the document with id.
func (c Collection) GetRaw(ctx context.Context, id string) (bson.Raw, error) {
	return c.t.s.backend.Get(ctx, c.spec.Name, c.t.ws, id)
}

// InsertMany inserts documents independently; errs[i] is nil or the
// reason docs[i] was not stored (e.g. a *DuplicateKeyError).
func (c Collection) InsertMany(ctx context.Context, docs []any) (errs []error, err error) {
	raws := make([]bson.Raw, len(docs))
	for i, d := range docs {
		raw, _, _, err := c.encode(d)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		raws[i] = raw
	}
	if len(raws) == 0 {
		return nil, nil
	}
	return c.t.s.backend.InsertMany(ctx, c.spec.Name, c.t.ws, raws)
}

// Replace writes doc over the stored document with the same _id if the
// stored version equals expectedVersion. The caller sets doc's own version
// (normally expectedVersion+1). Returns ErrConflict or ErrNotFound.
func (c Collection) Replace(ctx context.Context, doc any, expectedVersion int64) error {
	_, err := c.ReplaceOver(ctx, doc, expectedVersion, nil)
	return err
}

// ReplaceOver is Replace told the document it replaces, as read at
// expectedVersion (stored: bytes from GetRaw, InsertStored or a previous
// ReplaceOver; nil if unknown), which spares the embedded engine a read
// (OverReplacer). It returns doc as stored, for the next ReplaceOver.
func (c Collection) ReplaceOver(ctx context.Context, doc any, expectedVersion int64, stored bson.Raw) (bson.Raw, error) {
	raw, id, _, err := c.encode(doc)
	if err != nil {
		return nil, err
	}
	if o, ok := c.t.s.backend.(OverReplacer); ok && stored != nil {
		return raw, o.ReplaceOver(ctx, c.spec.Name, c.t.ws, id, expectedVersion, raw, stored)
	}
	return raw, c.t.s.backend.Replace(ctx, c.spec.Name, c.t.ws, id, expectedVersion, raw)
}

// Put inserts or replaces doc unconditionally.
func (c Collection) Put(ctx context.Context, doc any) error {
	raw, id, _, err := c.encode(doc)
	if err != nil {
		return err
	}
	return c.t.s.backend.Put(ctx, c.spec.Name, c.t.ws, id, raw)
}

// Delete removes the document with id (ErrNotFound if absent).
func (c Collection) Delete(ctx context.Context, id string) error {
	return c.t.s.backend.Delete(ctx, c.spec.Name, c.t.ws, id)
}

// DeleteMany removes the documents Find(q) would return (q.Limit caps
// them: prefer bounded batches, each is one engine write) and returns how
// many it removed.
func (c Collection) DeleteMany(ctx context.Context, q Query) (int64, error) {
	rq, err := c.resolve(q)
	if err != nil {
		return 0, err
	}
	if rq.none {
		return 0, nil
	}
	return c.t.s.backend.DeleteMany(ctx, c.spec.Name, c.t.ws, rq)
}

// Find runs a range read and returns documents in index order.
func (c Collection) Find(ctx context.Context, q Query) ([]Doc, error) {
	rq, err := c.resolve(q)
	if err != nil {
		return nil, err
	}
	if rq.none {
		return nil, nil
	}
	raws, err := c.t.s.backend.Find(ctx, c.spec.Name, c.t.ws, rq)
	if err != nil {
		return nil, err
	}
	out := make([]Doc, len(raws))
	for i, raw := range raws {
		key, err := encodeKey(rq, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.spec.Name, err)
		}
		out[i] = Doc{Raw: raw, Key: key}
	}
	return out, nil
}

// Scan is Find for readers that walk a whole range page by page and never
// resume mid-page: it returns the raw documents and only the cursor after
// the last one ("" when none), saving a cursor per document.
func (c Collection) Scan(ctx context.Context, q Query) (docs []bson.Raw, last string, err error) {
	rq, err := c.resolve(q)
	if err != nil {
		return nil, "", err
	}
	if rq.none {
		return nil, "", nil
	}
	raws, err := c.t.s.backend.Find(ctx, c.spec.Name, c.t.ws, rq)
	if err != nil || len(raws) == 0 {
		return nil, "", err
	}
	if last, err = encodeKey(rq, raws[len(raws)-1]); err != nil {
		return nil, "", fmt.Errorf("%s: %w", c.spec.Name, err)
	}
	return raws, last, nil
}

// Each calls fn with every raw document of q, reading pages of q.Limit
// (1,000 when unset). For whole-range walks such as a data-subject export.
func (c Collection) Each(ctx context.Context, q Query, fn func(bson.Raw) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	for {
		docs, last, err := c.Scan(ctx, q)
		if err != nil {
			return err
		}
		for _, raw := range docs {
			if err := fn(raw); err != nil {
				return err
			}
		}
		if len(docs) < q.Limit {
			return nil
		}
		q.After = last
	}
}

// IDs returns the _id of each document of q, in its order: for a list
// of ids (an account's contacts are in their links' ids), where the
// embedded engine reads the index alone. No cursor: ask for all of it
// with Limit.
func (c Collection) IDs(ctx context.Context, q Query) ([]string, error) {
	rq, err := c.resolve(q)
	if err != nil || rq.none {
		return nil, err
	}
	if f, ok := c.t.s.backend.(IDFinder); ok {
		return f.FindIDs(ctx, c.spec.Name, c.t.ws, rq)
	}
	raws, err := c.t.s.backend.Find(ctx, c.spec.Name, c.t.ws, rq)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(raws))
	for i, raw := range raws {
		if out[i], _ = raw.Lookup("_id").StringValueOK(); out[i] == "" {
			return nil, fmt.Errorf("%s: a document without a string _id", c.spec.Name)
		}
	}
	return out, nil
}

// FindOne returns the first document of q into out, or ErrNotFound.
func (c Collection) FindOne(ctx context.Context, q Query, out any) error {
	q.Limit = 1
	docs, err := c.Find(ctx, q)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return ErrNotFound
	}
	return docs[0].Decode(out)
}

// Count returns how many documents match q's Eq and Range (After and
// Limit are ignored).
func (c Collection) Count(ctx context.Context, q Query) (int64, error) {
	q.After, q.Limit = "", 0
	rq, err := c.resolve(q)
	if err != nil {
		return 0, err
	}
	if rq.none {
		return 0, nil
	}
	return c.t.s.backend.Count(ctx, c.spec.Name, c.t.ws, rq)
}

// encode marshals doc, checks its _id and stamps workspaceId. The
// marshalled bytes are copied element by element (workspaceId replaced in
// place, or appended), not decoded and re-encoded: every write goes
// through here, profiles with their counters included.
func (c Collection) encode(doc any) (raw bson.Raw, id string, version int64, err error) {
	b, err := bson.Marshal(doc)
	if err != nil {
		return nil, "", 0, fmt.Errorf("encode %s document: %w", c.spec.Name, err)
	}
	didx, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(b)+len(c.t.ws)+24))
	stamped, badID := false, false
	err = rawbson.Each(b, func(key []byte, v bson.RawValue) error {
		switch string(key) {
		case "_id":
			s, ok := v.StringValueOK()
			if !ok || s == "" {
				badID = true
			}
			id = s
		case "workspaceId":
			out = bsoncore.AppendStringElement(out, "workspaceId", c.t.ws)
			stamped = true
			return nil
		case "version":
			version, _ = v.AsInt64OK()
		}
		out = append(out, byte(v.Type))
		out = append(out, key...)
		out = append(out, 0)
		out = append(out, v.Value...)
		return nil
	})
	switch {
	case err != nil:
		return nil, "", 0, fmt.Errorf("encode %s document: %w", c.spec.Name, err)
	case badID:
		return nil, "", 0, fmt.Errorf("%s document: _id must be a non-empty string: %w", c.spec.Name, ErrBadQuery)
	case id == "":
		return nil, "", 0, fmt.Errorf("%s document has no _id: %w", c.spec.Name, ErrBadQuery)
	}
	if !stamped {
		out = bsoncore.AppendStringElement(out, "workspaceId", c.t.ws)
	}
	out, err = bsoncore.AppendDocumentEnd(out, didx)
	if err != nil {
		return nil, "", 0, fmt.Errorf("encode %s document: %w", c.spec.Name, err)
	}
	return out, id, version, nil
}

func (c Collection) resolve(q Query) (ResolvedQuery, error) {
	var idx *Index
	for i := range c.spec.Indexes {
		if c.spec.Indexes[i].Name == q.Index {
			idx = &c.spec.Indexes[i]
		}
	}
	if q.Index == ByID {
		idx = &Index{Name: ByID, Fields: []string{"_id"}, Unique: true}
	}
	if idx == nil {
		return ResolvedQuery{}, fmt.Errorf("%s has no index %q: %w", c.spec.Name, q.Index, ErrBadQuery)
	}
	if len(q.Eq) > len(idx.Fields) {
		return ResolvedQuery{}, fmt.Errorf("index %s has %d fields, query gives %d equalities: %w", idx.Name, len(idx.Fields), len(q.Eq), ErrBadQuery)
	}
	if q.Limit < 0 {
		return ResolvedQuery{}, fmt.Errorf("negative limit: %w", ErrBadQuery)
	}
	rq := ResolvedQuery{Index: *idx, Desc: q.Desc, Limit: q.Limit, Merged: q.Merged}
	if q.Merged && (q.In == nil || len(q.Eq)+1 >= len(idx.Fields)) {
		return ResolvedQuery{}, fmt.Errorf("index %s: Merged needs In and a field after the In field: %w", idx.Name, ErrBadQuery)
	}
	for _, v := range q.Eq {
		cv, err := Canonical(v)
		if err != nil {
			return ResolvedQuery{}, err
		}
		rq.Eq = append(rq.Eq, cv)
	}
	if q.Range != nil {
		if rq.RangeField() >= len(idx.Fields) {
			return ResolvedQuery{}, fmt.Errorf("index %s: range needs a field after the equality prefix: %w", idx.Name, ErrBadQuery)
		}
		if err := rq.setRange(*q.Range); err != nil {
			return ResolvedQuery{}, err
		}
	}
	if q.In != nil && len(q.In) == 0 {
		// An empty list (as opposed to none) matches nothing: a caller
		// whose list came out empty must not read, or delete, it all.
		rq.none = true
	}
	if len(q.In) > 0 {
		switch {
		case len(q.Eq) == len(idx.Fields):
			return ResolvedQuery{}, fmt.Errorf("index %s: In needs a field after the equality prefix: %w", idx.Name, ErrBadQuery)
		case !q.Merged && (q.Range != nil || q.After != ""):
			return ResolvedQuery{}, fmt.Errorf("index %s: In with a range or a cursor: %w", idx.Name, ErrBadQuery)
		case len(q.In) > MaxIn:
			return ResolvedQuery{}, fmt.Errorf("index %s: %d In values, at most %d: %w", idx.Name, len(q.In), MaxIn, ErrBadQuery)
		}
		rq.In = make([]any, len(q.In))
		for i, v := range q.In {
			cv, err := Canonical(v)
			if err != nil {
				return ResolvedQuery{}, err
			}
			rq.In[i] = cv
		}
	}
	if q.After != "" {
		after, err := decodeKey(q.After, len(rq.OrderFields()))
		if err != nil {
			return ResolvedQuery{}, err
		}
		rq.After = after
	}
	return rq, nil
}

func (rq *ResolvedQuery) setRange(b Bound) error {
	edge := func(v any, incl bool) (*RangeEdge, error) {
		cv, err := Canonical(v)
		if err != nil {
			return nil, err
		}
		return &RangeEdge{Value: cv, Inclusive: incl}, nil
	}
	var err error
	switch {
	case b.Gt != nil && b.Gte != nil:
		return fmt.Errorf("both Gt and Gte set: %w", ErrBadQuery)
	case b.Gt != nil:
		rq.RangeFrom, err = edge(b.Gt, false)
	case b.Gte != nil:
		rq.RangeFrom, err = edge(b.Gte, true)
	}
	if err != nil {
		return err
	}
	switch {
	case b.Lt != nil && b.Lte != nil:
		return fmt.Errorf("both Lt and Lte set: %w", ErrBadQuery)
	case b.Lt != nil:
		rq.RangeTo, err = edge(b.Lt, false)
	case b.Lte != nil:
		rq.RangeTo, err = edge(b.Lte, true)
	}
	if err != nil {
		return err
	}
	if b.Prefix != nil {
		if rq.RangeFrom != nil || rq.RangeTo != nil {
			return fmt.Errorf("prefix combined with bounds: %w", ErrBadQuery)
		}
		// Every string with the prefix sorts in [prefix, prefix+U+10FFFF)
		// both in BSON (binary UTF-8) and in SQLite's BINARY collation.
		rq.RangeFrom = &RangeEdge{Value: *b.Prefix, Inclusive: true}
		rq.RangeTo = &RangeEdge{Value: *b.Prefix + "\U0010FFFF", Inclusive: false}
	}
	return nil
}

// Canonical converts a Go value used in a query to the canonical form both
// engines compare: string, int64, float64, bool or bson.DateTime.
func Canonical(v any) (any, error) {
	switch x := v.(type) {
	case string, int64, float64, bool, bson.DateTime:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		return bson.NewDateTimeFromTime(x), nil
	default:
		return nil, fmt.Errorf("unsupported query value %T: %w", v, ErrBadQuery)
	}
}

// CanonicalRaw converts a BSON value from a stored document to the
// canonical form queries and cursors use (string, int64, float64, bool or
// bson.DateTime); other types, and NaN, are ErrBadQuery. Engines that
// extract indexed values (sqlitestore) start from it.
func CanonicalRaw(v bson.RawValue) (any, error) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) {
			return nil, fmt.Errorf("NaN in indexed field: %w", ErrBadQuery)
		}
		return f, nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	case bson.TypeDateTime:
		return bson.DateTime(v.DateTime()), nil
	default:
		return nil, fmt.Errorf("unsupported indexed value type %s: %w", v.Type, ErrBadQuery)
	}
}

// LookupPath returns the value at a dotted path of a document.
func LookupPath(raw bson.Raw, path string) (bson.RawValue, error) {
	return raw.LookupErr(splitPath(path)...)
}

func splitPath(path string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			parts = append(parts, path[start:i])
			start = i + 1
		}
	}
	return append(parts, path[start:])
}

// A keyset cursor is the BSON array of the order values of the last document
// seen, base64url-encoded. BSON keeps the value types (a datetime stays a
// datetime) so the next page compares like with like on both engines.
func encodeKey(rq ResolvedQuery, raw bson.Raw) (string, error) {
	// Appended by hand: every document read gets a key, and reflection
	// (bson.Marshal) made this a third of a large scan's time.
	aidx, arr := bsoncore.AppendArrayStart(make([]byte, 0, 64))
	for i, f := range rq.OrderFields() {
		rv, err := LookupPath(raw, f)
		if err != nil {
			return "", fmt.Errorf("document lacks indexed field %s: %w", f, ErrBadQuery)
		}
		if arr, err = appendCanonical(arr, strconv.Itoa(i), rv); err != nil {
			return "", err
		}
	}
	arr, _ = bsoncore.AppendArrayEnd(arr, aidx)
	didx, doc := bsoncore.AppendDocumentStart(make([]byte, 0, len(arr)+12))
	doc = bsoncore.AppendArrayElement(doc, "k", arr)
	doc, _ = bsoncore.AppendDocumentEnd(doc, didx)
	return base64.RawURLEncoding.EncodeToString(doc), nil
}

// appendCanonical appends v in canonical form (see CanonicalRaw) as the
// element key of a BSON document or array.
func appendCanonical(dst []byte, key string, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bson.TypeString:
		return bsoncore.AppendStringElement(dst, key, v.StringValue()), nil
	case bson.TypeInt32:
		return bsoncore.AppendInt64Element(dst, key, int64(v.Int32())), nil
	case bson.TypeInt64:
		return bsoncore.AppendInt64Element(dst, key, v.Int64()), nil
	case bson.TypeDouble:
		if math.IsNaN(v.Double()) {
			return nil, fmt.Errorf("NaN in indexed field: %w", ErrBadQuery)
		}
		return bsoncore.AppendDoubleElement(dst, key, v.Double()), nil
	case bson.TypeBoolean:
		return bsoncore.AppendBooleanElement(dst, key, v.Boolean()), nil
	case bson.TypeDateTime:
		return bsoncore.AppendDateTimeElement(dst, key, v.DateTime()), nil
	default:
		return nil, fmt.Errorf("unsupported indexed value type %s: %w", v.Type, ErrBadQuery)
	}
}

func decodeKey(key string, n int) ([]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return nil, ErrBadCursor
	}
	raw := bson.Raw(b)
	if err := raw.Validate(); err != nil {
		return nil, ErrBadCursor
	}
	v, err := raw.LookupErr("k")
	if err != nil || v.Type != bson.TypeArray {
		return nil, ErrBadCursor
	}
	elems, err := v.Array().Values()
	if err != nil || len(elems) != n {
		return nil, ErrBadCursor
	}
	out := make([]any, n)
	for i, e := range elems {
		cv, err := CanonicalRaw(e)
		if err != nil {
			return nil, ErrBadCursor
		}
		out[i] = cv
	}
	if _, ok := out[n-1].(string); !ok {
		return nil, ErrBadCursor
	}
	return out, nil
}

// IsNotFound reports whether err is ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
