// Package mongostore is the MongoDB engine behind store.Backend.
//
// Each store collection is one MongoDB collection. Documents are stored as
// Store encoded them: _id is the (globally unique) string id and
// workspaceId the tenant, and every filter includes workspaceId so a
// workspace can never see or touch another's documents, and so the
// collections can be sharded on {workspaceId, _id}. Because MongoDB's _id
// index spans the collection, an id already used in one workspace is a
// duplicate key (index "_id") in every other; Store's ids are globally
// unique, so only a forged or replayed id can hit that.
//
// The engine is also run against FerretDB v1 (embedded, over SQLite) in
// tests. Query shapes are kept to what both understand; the places where
// FerretDB needs help are marked "FerretDB:".
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/halo-cdp/halo/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// DefaultDatabase is used when the URI names no database.
const DefaultDatabase = "halo"

// shardKeyIndex backs lookups by {workspaceId, _id} and is the index a
// sharded deployment needs for the shard key {workspaceId: 1, _id: 1}. It
// has MongoDB's default name so that sharding a collection before Halo
// first starts (which creates the index under that name) is no conflict.
const shardKeyIndex = "workspaceId_1__id_1"

// Backend implements store.Backend on MongoDB.
type Backend struct {
	client *mongo.Client
	db     *mongo.Database

	mu    sync.RWMutex
	specs map[string]store.CollectionSpec // by collection name, for duplicate-key diagnosis
}

var _ store.Backend = (*Backend)(nil)

// Open connects to the MongoDB deployment at uri and checks it answers.
// database overrides the one in the URI path; if both are empty,
// DefaultDatabase is used.
func Open(ctx context.Context, uri, database string) (*Backend, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		// The parser's message may quote the URI, which may hold a password.
		return nil, errors.New("mongostore: invalid MongoDB URI")
	}
	if database == "" {
		database = cs.Database
	}
	if database == "" {
		database = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect: %w", err)
	}
	b := &Backend{
		client: client,
		db:     client.Database(database),
		specs:  map[string]store.CollectionSpec{},
	}
	if err := b.Ping(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return b, nil
}

// Database is the name of the database the backend uses.
func (b *Backend) Database() string { return b.db.Name() }

// Ping implements store.Backend.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("mongostore: ping: %w", err)
	}
	return nil
}

// Close implements store.Backend.
func (b *Backend) Close(ctx context.Context) error {
	if err := b.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongostore: disconnect: %w", err)
	}
	return nil
}

// EnsureCollections implements store.Backend. It creates only the indexes
// that are missing and refuses an existing index whose definition differs
// from the declaration: redefining an index means dropping it first, which
// is an operator's decision.
//
// FerretDB: createIndexes with more than one already existing index in the
// request panics in v1.24 (validateIndexesForCreation deletes from the slice
// it indexes), so already existing indexes are never sent again.
func (b *Backend) EnsureCollections(ctx context.Context, specs []store.CollectionSpec) error {
	for _, spec := range specs {
		c := b.db.Collection(spec.Name)
		existing, err := listIndexes(ctx, c)
		if err != nil {
			return fmt.Errorf("mongostore: list indexes of %s: %w", spec.Name, err)
		}
		var missing []mongo.IndexModel
		for _, want := range indexDefs(spec) {
			have, ok := existing[want.Name]
			if !ok {
				opts := options.Index().SetName(want.Name)
				if want.Unique {
					opts.SetUnique(true)
				}
				missing = append(missing, mongo.IndexModel{Keys: want.Key, Options: opts})
				continue
			}
			if !sameKeys(have.Key, want.Key) || have.Unique != want.Unique {
				return fmt.Errorf("mongostore: index %s of %s exists with another definition (%v, unique %v); drop it to redefine it: %w",
					want.Name, spec.Name, have.Key, have.Unique, store.ErrBadQuery)
			}
		}
		if len(missing) > 0 {
			if _, err := c.Indexes().CreateMany(ctx, missing); err != nil {
				return fmt.Errorf("mongostore: create indexes of %s: %w", spec.Name, err)
			}
		}
		for _, name := range spec.Retired {
			if slices.ContainsFunc(spec.Indexes, func(ix store.Index) bool { return ix.Name == name }) {
				return fmt.Errorf("mongostore: index %s of %s is both declared and retired: %w", name, spec.Name, store.ErrBadQuery)
			}
			if _, ok := existing[name]; !ok {
				continue
			}
			// Another instance starting at the same time may drop it first.
			var ce mongo.CommandError
			if err := c.Indexes().DropOne(ctx, name); err != nil && !(errors.As(err, &ce) && (ce.Code == 27 || ce.Name == "IndexNotFound")) {
				return fmt.Errorf("mongostore: drop retired index %s of %s: %w", name, spec.Name, err)
			}
		}
		b.mu.Lock()
		b.specs[spec.Name] = spec
		b.mu.Unlock()
	}
	return nil
}

// indexDefs are the MongoDB indexes for spec.
func indexDefs(spec store.CollectionSpec) []indexInfo {
	defs := []indexInfo{{
		Name: shardKeyIndex,
		Key:  bson.D{{Key: "workspaceId", Value: int32(1)}, {Key: "_id", Value: int32(1)}},
	}}
	for _, idx := range spec.Indexes {
		key := bson.D{{Key: "workspaceId", Value: int32(1)}}
		for _, f := range idx.Fields {
			key = append(key, bson.E{Key: f, Value: int32(1)})
		}
		if !idx.Unique {
			// _id last makes the index order total, which keyset
			// pagination relies on.
			key = append(key, bson.E{Key: "_id", Value: int32(1)})
		}
		defs = append(defs, indexInfo{Name: idx.Name, Key: key, Unique: idx.Unique})
	}
	return defs
}

type indexInfo struct {
	Name   string `bson:"name"`
	Key    bson.D `bson:"key"`
	Unique bool   `bson:"unique"`
}

// listIndexes returns a collection's indexes by name; none if the
// collection does not exist yet.
func listIndexes(ctx context.Context, c *mongo.Collection) (map[string]indexInfo, error) {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		var se mongo.ServerError
		if errors.As(err, &se) && se.HasErrorCode(26) { // NamespaceNotFound
			return map[string]indexInfo{}, nil
		}
		return nil, err
	}
	var infos []indexInfo
	if err := cur.All(ctx, &infos); err != nil {
		return nil, err
	}
	out := make(map[string]indexInfo, len(infos))
	for _, ii := range infos {
		out[ii.Name] = ii
	}
	return out, nil
}

// sameKeys compares key patterns by field order and direction; servers
// report directions as int32, int64 or double.
func sameKeys(have, want bson.D) bool {
	if len(have) != len(want) {
		return false
	}
	dir := func(v any) float64 {
		switch x := v.(type) {
		case int32:
			return float64(x)
		case int64:
			return float64(x)
		case float64:
			return x
		}
		return 0 // text, hashed, ...: never what we declare
	}
	for i := range have {
		if have[i].Key != want[i].Key || dir(have[i].Value) != dir(want[i].Value) {
			return false
		}
	}
	return true
}

func idFilter(ws, id string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "workspaceId", Value: ws}}
}

// Get implements store.Backend.
func (b *Backend) Get(ctx context.Context, coll, ws, id string) (bson.Raw, error) {
	raw, err := b.db.Collection(coll).FindOne(ctx, idFilter(ws, id)).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongostore: get %s/%s: %w", coll, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongostore: get %s/%s: %w", coll, id, err)
	}
	return raw, nil
}

// checkDoc guards tenant isolation below Store: a document must carry the
// workspace it is written to, or it would be stored where no read finds it
// (or where another workspace's reads do).
func checkDoc(ws string, doc bson.Raw) (id string, err error) {
	id, ok := doc.Lookup("_id").StringValueOK()
	if !ok || id == "" {
		return "", fmt.Errorf("mongostore: document _id must be a non-empty string: %w", store.ErrBadQuery)
	}
	if got, ok := doc.Lookup("workspaceId").StringValueOK(); !ok || got != ws {
		return "", fmt.Errorf("mongostore: document %s: workspaceId must be %q: %w", id, ws, store.ErrBadQuery)
	}
	return id, nil
}

// Insert implements store.Backend.
func (b *Backend) Insert(ctx context.Context, coll, ws string, doc bson.Raw) error {
	if _, err := checkDoc(ws, doc); err != nil {
		return err
	}
	if _, err := b.db.Collection(coll).InsertOne(ctx, doc); err != nil {
		return b.writeError(ctx, "insert into", coll, ws, doc, true, err)
	}
	return nil
}

// InsertMany implements store.Backend.
func (b *Backend) InsertMany(ctx context.Context, coll, ws string, docs []bson.Raw) ([]error, error) {
	errs := make([]error, len(docs))
	valid := make([]any, 0, len(docs))
	pos := make([]int, 0, len(docs)) // index in docs of valid[i]
	for i, doc := range docs {
		if _, err := checkDoc(ws, doc); err != nil {
			errs[i] = err
			continue
		}
		valid = append(valid, doc)
		pos = append(pos, i)
	}
	if len(valid) == 0 {
		return errs, nil
	}
	_, err := b.db.Collection(coll).InsertMany(ctx, valid, options.InsertMany().SetOrdered(false))
	if err == nil {
		return errs, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, fmt.Errorf("mongostore: insert into %s: %w", coll, err)
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(pos) {
			return nil, fmt.Errorf("mongostore: insert into %s: write error for unknown document %d: %w", coll, we.Index, err)
		}
		i := pos[we.Index]
		errs[i] = b.writeError(ctx, "insert into", coll, ws, docs[i], true, we.WriteError)
	}
	return errs, nil
}

// Replace implements store.Backend.
func (b *Backend) Replace(ctx context.Context, coll, ws, id string, expectedVersion int64, doc bson.Raw) error {
	if docID, err := checkDoc(ws, doc); err != nil {
		return err
	} else if docID != id {
		return fmt.Errorf("mongostore: replace %s/%s with document %s: %w", coll, id, docID, store.ErrBadQuery)
	}
	filter := idFilter(ws, id)
	if expectedVersion == 0 {
		// Documents written before versioning have no version field; they
		// count as version 0.
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "version", Value: int64(0)}},
			bson.D{{Key: "version", Value: bson.D{{Key: "$exists", Value: false}}}},
		}})
	} else {
		filter = append(filter, bson.E{Key: "version", Value: expectedVersion})
	}
	res, err := b.db.Collection(coll).ReplaceOne(ctx, filter, doc)
	if err != nil {
		return b.writeError(ctx, "replace in", coll, ws, doc, false, err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	// Nothing matched: tell a stale version from a missing document.
	n, err := b.db.Collection(coll).CountDocuments(ctx, idFilter(ws, id), options.Count().SetLimit(1))
	if err != nil {
		return fmt.Errorf("mongostore: replace %s/%s: %w", coll, id, err)
	}
	if n > 0 {
		return fmt.Errorf("mongostore: replace %s/%s at version %d: %w", coll, id, expectedVersion, store.ErrConflict)
	}
	return fmt.Errorf("mongostore: replace %s/%s: %w", coll, id, store.ErrNotFound)
}

// Put implements store.Backend. The filter includes workspaceId, so when
// another workspace holds the _id the upsert tries an insert and fails on
// the _id index instead of overwriting that document.
func (b *Backend) Put(ctx context.Context, coll, ws, id string, doc bson.Raw) error {
	if docID, err := checkDoc(ws, doc); err != nil {
		return err
	} else if docID != id {
		return fmt.Errorf("mongostore: put %s/%s with document %s: %w", coll, id, docID, store.ErrBadQuery)
	}
	// Two upserts of one new _id can both miss the filter and both try to
	// insert; the loser gets E11000 on _id (FerretDB always, MongoDB in
	// some cases). Retrying turns the loser into a plain replace. A
	// duplicate that persists is real: the _id is taken in another
	// workspace, or a unique index refuses the document.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		_, err = b.db.Collection(coll).ReplaceOne(ctx, idFilter(ws, id), doc, options.Replace().SetUpsert(true))
		if err == nil || !isDuplicateKey(err) {
			break
		}
	}
	if err != nil {
		return b.writeError(ctx, "put into", coll, ws, doc, false, err)
	}
	return nil
}

// Delete implements store.Backend.
func (b *Backend) Delete(ctx context.Context, coll, ws, id string) error {
	res, err := b.db.Collection(coll).DeleteOne(ctx, idFilter(ws, id))
	if err != nil {
		return fmt.Errorf("mongostore: delete %s/%s: %w", coll, id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: delete %s/%s: %w", coll, id, store.ErrNotFound)
	}
	return nil
}

// Find implements store.Backend.
func (b *Backend) Find(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]bson.Raw, error) {
	filter, err := queryFilter(ws, q, true)
	if err != nil {
		return nil, err
	}
	// The hint pins the declared index: the planner could otherwise pick
	// another one that matches the equality prefix and sort in memory.
	opts := options.Find().SetSort(querySort(q)).SetHint(hint(q))
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := b.db.Collection(coll).Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongostore: find in %s by %s: %w", coll, q.Index.Name, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []bson.Raw
	for cur.Next(ctx) {
		// Current is reused by the next batch.
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find in %s by %s: %w", coll, q.Index.Name, err)
	}
	return out, nil
}

// DeleteMany implements store.Backend: without a Limit one deleteMany of
// the filter (cursor included); otherwise the ids Find would return (one
// read), then one deleteMany of those ids that still match.
func (b *Backend) DeleteMany(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	c := b.db.Collection(coll)
	if q.Limit == 0 {
		filter, err := queryFilter(ws, q, true)
		if err != nil {
			return 0, err
		}
		res, err := c.DeleteMany(ctx, filter)
		if err != nil {
			return 0, fmt.Errorf("mongostore: delete many in %s by %s: %w", coll, q.Index.Name, err)
		}
		return res.DeletedCount, nil
	}
	filter, err := queryFilter(ws, q, true)
	if err != nil {
		return 0, err
	}
	opts := options.Find().SetSort(querySort(q)).SetHint(hint(q)).SetProjection(bson.D{{Key: "_id", Value: 1}})
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return 0, fmt.Errorf("mongostore: delete many in %s by %s: %w", coll, q.Index.Name, err)
	}
	var ids bson.A
	for cur.Next(ctx) {
		ids = append(ids, cur.Current.Lookup("_id").StringValue())
	}
	err = cur.Err()
	cur.Close(context.WithoutCancel(ctx))
	if err != nil {
		return 0, fmt.Errorf("mongostore: delete many in %s by %s: %w", coll, q.Index.Name, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	// The query's filter again: a document that stopped matching since
	// the read stays, as on SQLite (one statement).
	res, err := c.DeleteMany(ctx, append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}))
	if err != nil {
		return 0, fmt.Errorf("mongostore: delete many in %s: %w", coll, err)
	}
	return res.DeletedCount, nil
}

// Count implements store.Backend. Like Collection.Count it ignores After
// and Limit.
func (b *Backend) Count(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	filter, err := queryFilter(ws, q, false)
	if err != nil {
		return 0, err
	}
	// CountDocuments (an aggregation) rather than the count command: the
	// latter can count orphaned documents on a sharded cluster.
	n, err := b.db.Collection(coll).CountDocuments(ctx, filter, options.Count().SetHint(hint(q)))
	if err != nil {
		return 0, fmt.Errorf("mongostore: count in %s by %s: %w", coll, q.Index.Name, err)
	}
	return n, nil
}

// FindIDs implements store.IDFinder: Find with only _id returned.
func (b *Backend) FindIDs(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]string, error) {
	filter, err := queryFilter(ws, q, true)
	if err != nil {
		return nil, err
	}
	opts := options.Find().SetSort(querySort(q)).SetHint(hint(q)).SetProjection(bson.D{{Key: "_id", Value: 1}})
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := b.db.Collection(coll).Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongostore: find ids in %s by %s: %w", coll, q.Index.Name, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []string
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").StringValueOK()
		if !ok {
			return nil, fmt.Errorf("mongostore: find ids in %s: a document without a string _id", coll)
		}
		out = append(out, id)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find ids in %s by %s: %w", coll, q.Index.Name, err)
	}
	return out, nil
}

// hint is the index a query walks: store.ByID is the shard key index
// (workspaceId, _id).
func hint(q store.ResolvedQuery) string {
	if q.Index.Name == store.ByID {
		return shardKeyIndex
	}
	return q.Index.Name
}

// orderFields are the fields results are sorted by. A unique index has no
// _id key, and the remaining fields already order its documents totally, so
// sorting by _id too would stop MongoDB from walking the index in order.
// With every field fixed by Eq at most one document matches and _id is as
// good as nothing.
func orderFields(q store.ResolvedQuery) []string {
	of := q.OrderFields()
	// Merged, the In field is out of the order: the fields left no longer
	// order the documents of several In values totally.
	if q.Index.Unique && len(of) > 1 && !q.Merged {
		return of[:len(of)-1]
	}
	return of
}

func querySort(q store.ResolvedQuery) bson.D {
	dir := 1
	if q.Desc {
		dir = -1
	}
	var sort bson.D
	for _, f := range orderFields(q) {
		sort = append(sort, bson.E{Key: f, Value: dir})
	}
	return sort
}

// queryFilter translates q: equality on the index prefix, the range on the
// next field and, for a keyset cursor, "strictly after After in sort order".
func queryFilter(ws string, q store.ResolvedQuery, withAfter bool) (bson.D, error) {
	fields := q.Index.Fields
	if len(q.Eq) > len(fields) {
		return nil, fmt.Errorf("mongostore: index %s: %d equalities for %d fields: %w", q.Index.Name, len(q.Eq), len(fields), store.ErrBadQuery)
	}
	filter := bson.D{{Key: "workspaceId", Value: ws}}
	for i, v := range q.Eq {
		filter = append(filter, bson.E{Key: fields[i], Value: v})
	}
	if len(q.In) > 0 {
		if len(q.Eq) == len(fields) {
			return nil, fmt.Errorf("mongostore: index %s: In with no field after the equalities: %w", q.Index.Name, store.ErrBadQuery)
		}
		filter = append(filter, bson.E{Key: fields[len(q.Eq)], Value: bson.D{{Key: "$in", Value: bson.A(q.In)}}})
	}
	// Conditions that may repeat a field name go under $and: a BSON
	// document with duplicate keys is not portable.
	var and bson.A
	if q.RangeFrom != nil || q.RangeTo != nil {
		if q.RangeField() >= len(fields) {
			return nil, fmt.Errorf("mongostore: index %s: range needs a field after the equality prefix: %w", q.Index.Name, store.ErrBadQuery)
		}
		var r bson.D
		if e := q.RangeFrom; e != nil {
			r = append(r, bson.E{Key: op(e.Inclusive, "$gte", "$gt"), Value: e.Value})
		}
		if e := q.RangeTo; e != nil {
			r = append(r, bson.E{Key: op(e.Inclusive, "$lte", "$lt"), Value: e.Value})
		}
		and = append(and, bson.D{{Key: fields[q.RangeField()], Value: r}})
	}
	if withAfter && q.After != nil {
		after, err := afterFilter(q)
		if err != nil {
			return nil, err
		}
		and = append(and, after...)
	}
	if len(and) > 0 {
		filter = append(filter, bson.E{Key: "$and", Value: and})
	}
	return filter, nil
}

func op(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// afterFilter is the lexicographic "greater than After" (less than, for
// Desc) over the order fields, as an $or of one branch per field:
//
//	{f1: {$gt: v1}}, {f1: v1, f2: {$gt: v2}}, ..., {f1: v1, ..., _id: {$gt: id}}
//
// plus {f1: {$gte: v1}} outside the $or so MongoDB can start the index scan
// at the cursor instead of filtering from the range's start.
func afterFilter(q store.ResolvedQuery) (bson.A, error) {
	of := q.OrderFields()
	if len(q.After) != len(of) {
		return nil, fmt.Errorf("mongostore: cursor has %d values for %d order fields: %w", len(q.After), len(of), store.ErrBadCursor)
	}
	strict, loose := "$gt", "$gte"
	if q.Desc {
		strict, loose = "$lt", "$lte"
	}
	var or bson.A
	for i := range of {
		var branch bson.D
		for j := 0; j < i; j++ {
			branch = append(branch, bson.E{Key: of[j], Value: q.After[j]})
		}
		branch = append(branch, bson.E{Key: of[i], Value: bson.D{{Key: strict, Value: q.After[i]}}})
		or = append(or, branch)
	}
	return bson.A{
		bson.D{{Key: of[0], Value: bson.D{{Key: loose, Value: q.After[0]}}}},
		bson.D{{Key: "$or", Value: or}},
	}, nil
}

// writeError turns a failed write of doc into a *store.DuplicateKeyError
// when a unique index refused it, and otherwise wraps err. inserting says
// whether the write could only have created the document (so an existing
// _id anywhere is the conflict) or may have replaced it.
func (b *Backend) writeError(ctx context.Context, verb, coll, ws string, doc bson.Raw, inserting bool, err error) error {
	id, _ := doc.Lookup("_id").StringValueOK()
	if !isDuplicateKey(err) {
		return fmt.Errorf("mongostore: %s %s (document %s): %w", verb, coll, id, err)
	}
	index, ok := indexFromMessage(err)
	if !ok {
		index = b.probeDuplicate(ctx, coll, ws, doc, inserting)
	}
	return &store.DuplicateKeyError{Collection: coll, Index: index}
}

func isDuplicateKey(err error) bool {
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var we mongo.WriteError
	if errors.As(err, &we) && (we.Code == 11000 || we.Code == 11001) {
		return true
	}
	// FerretDB: a unique violation during an update or upsert reaches the
	// client as a generic internal error carrying SQLite's message, not
	// as E11000.
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorMessage("UNIQUE constraint failed")
}

// MongoDB names the index in E11000 messages:
// "E11000 duplicate key error collection: db.c index: by_type_value dup key: { ... }".
var dupIndexRE = regexp.MustCompile(`index: (\S+) dup key`)

func indexFromMessage(err error) (string, bool) {
	msgs := []string{err.Error()}
	var we mongo.WriteError
	if errors.As(err, &we) {
		msgs = append(msgs, we.Message)
	}
	for _, m := range msgs {
		if sm := dupIndexRE.FindStringSubmatch(m); sm != nil {
			name := strings.TrimSuffix(sm[1], ",")
			if name == "_id_" {
				return "_id", true
			}
			return name, true
		}
	}
	return "", false
}

// probeDuplicate finds which unique index doc collides on by looking for
// the colliding document.
//
// FerretDB: its duplicate key errors do not name the index, so this is
// the only way to tell there. A concurrent delete of the colliding
// document can leave the answer unknown; then Index is "" (the error still
// matches store.ErrDuplicateKey).
func (b *Backend) probeDuplicate(ctx context.Context, coll, ws string, doc bson.Raw, inserting bool) string {
	c := b.db.Collection(coll)
	exists := func(filter bson.D) bool {
		n, err := c.CountDocuments(ctx, filter, options.Count().SetLimit(1))
		return err == nil && n > 0
	}
	id, _ := doc.Lookup("_id").StringValueOK()
	idFilter := bson.D{{Key: "_id", Value: id}}
	if !inserting {
		// Replacing our own document is not a collision; another
		// workspace's document with the same _id is.
		idFilter = append(idFilter, bson.E{Key: "workspaceId", Value: bson.D{{Key: "$ne", Value: ws}}})
	}
	if exists(idFilter) {
		return "_id"
	}
	b.mu.RLock()
	spec := b.specs[coll]
	b.mu.RUnlock()
	for _, idx := range spec.Indexes {
		if !idx.Unique {
			continue
		}
		filter := bson.D{{Key: "workspaceId", Value: ws}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}}
		for _, f := range idx.Fields {
			v, err := store.LookupPath(doc, f)
			if err != nil {
				// A document without the field cannot collide on it.
				filter = nil
				break
			}
			filter = append(filter, bson.E{Key: f, Value: v})
		}
		if filter != nil && exists(filter) {
			return idx.Name
		}
	}
	return ""
}
