// Package sqlitestore is the embedded storage engine: store.Backend on a
// single SQLite file through the pure-Go driver modernc.org/sqlite.
//
// Each collection is one table keyed by id holding the workspace, the exact
// BSON bytes of the document, its version and one extracted column per
// indexed field path; each declared index is a SQL index over
// (ws, columns..., id). Reads
// therefore never decode BSON to filter or order, only to return documents.
//
// Writes go through one goroutine holding the only writer connection:
// SQLite has a single writer anyway, and queueing in Go instead of in
// SQLite's busy handler means concurrent writers wait their turn rather
// than fail with "database is locked". Writes waiting together share one
// transaction (group commit, writer.go). Reads use a separate pool and,
// thanks to WAL, run concurrently with the writer.
package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/halo-cdp/halo/store"
)

// FileName is the database file Open creates inside its directory.
const FileName = "halo.db"

// Backend implements store.Backend on SQLite.
type Backend struct {
	w *sql.DB // exactly one connection: the writer
	r *sql.DB // readers, query_only

	// schemaMu serialises EnsureCollections; mu guards colls and stmts.
	schemaMu sync.Mutex
	mu       sync.RWMutex
	colls    map[string]*collInfo
	stmts    map[stmtKey]*sql.Stmt

	// The group-commit writer (writer.go).
	ops        chan []*writeOp // one caller's write, or those a store.Together held
	quit       chan struct{}
	writerDone chan struct{}

	// ck checkpoints the log (checkpoint.go).
	ck              *sql.DB
	checkpointDone  chan struct{}
	closeOnce       sync.Once
	groups, grouped atomic.Int64
	// logFrames is the log's length as the checkpointer last saw it
	// (checkpoint.go).
	logFrames atomic.Int64
	// restartFrames and forceFrames are walRestartPages and walForcePages
	// (tests lower them).
	restartFrames, forceFrames int64
	// longLog tells an idle writer that the log grew long; ckMu keeps the
	// writer's restarts and the checkpointer's copies apart; restartAfter
	// (the writer's own) delays a retry after a restart a reader held off.
	longLog      chan struct{}
	ckMu         sync.Mutex
	restartAfter time.Time
	waiting      atomic.Int64
}

var (
	_ store.Backend      = (*Backend)(nil)
	_ store.OverReplacer = (*Backend)(nil)
)

// stmtKey identifies a cached prepared statement. info is part of the key
// so statements prepared for an older column set are never reused after
// EnsureCollections added columns.
type stmtKey struct {
	info *collInfo
	sql  string
}

// Open creates dir if needed and opens (or creates) dir/halo.db.
func Open(ctx context.Context, dir string) (*Backend, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	// A file: URI keeps a directory name containing '?' or '#' from being
	// taken for parameters.
	dsn := func(params string) string {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
		return u.String() + "?" + params
	}
	// busy_timeout still matters: another process, or a checkpoint, can
	// hold the lock briefly. NORMAL sync in WAL mode loses at most the last
	// transactions on power loss, never consistency.
	// Page caches are per connection: the writer gets a larger one for
	// index maintenance, readers share the OS page cache beyond theirs.
	common := "_busy_timeout=" + fmt.Sprint(busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", dsn(common+"&_pragma=cache_size(-32000)&_pragma=wal_autocheckpoint("+fmt.Sprint(walBackstopPages)+")&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Connect the writer first so the file is in WAL mode before any reader
	// opens it.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(common+"&_pragma=cache_size(-8000)&_query_only=1"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	ck, err := sql.Open("sqlite", dsn(common))
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	b := &Backend{w: w, r: r, ck: ck, restartFrames: walRestartPages, forceFrames: walForcePages, longLog: make(chan struct{}, 1), colls: map[string]*collInfo{}, stmts: map[stmtKey]*sql.Stmt{},
		ops: make(chan []*writeOp), quit: make(chan struct{}), writerDone: make(chan struct{}), checkpointDone: make(chan struct{})}
	go b.writer()
	go b.checkpointer(ck)
	return b, nil
}

// Ping reports whether both pools can reach the database.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite ping: %w", err)
	}
	if err := b.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite ping: %w", err)
	}
	return nil
}

// Close closes prepared statements and both pools. The writer closes last
// so that, as the last connection, it checkpoints the WAL into the file.
func (b *Backend) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { close(b.quit) })
	<-b.writerDone
	<-b.checkpointDone
	b.mu.Lock()
	var errs []error
	for k, s := range b.stmts {
		errs = append(errs, s.Close())
		delete(b.stmts, k)
	}
	b.mu.Unlock()
	errs = append(errs, b.r.Close(), b.ck.Close(), b.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite close: %w", err)
	}
	return nil
}

func (b *Backend) coll(name string) (*collInfo, error) {
	b.mu.RLock()
	info := b.colls[name]
	b.mu.RUnlock()
	if info == nil {
		return nil, fmt.Errorf("collection %s not declared: %w", name, store.ErrBadQuery)
	}
	return info, nil
}

// stmt returns a cached statement prepared on db (b.w or b.r).
func (b *Backend) stmt(ctx context.Context, db *sql.DB, info *collInfo, query string) (*sql.Stmt, error) {
	k := stmtKey{info: info, sql: query}
	b.mu.RLock()
	s := b.stmts[k]
	b.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev := b.stmts[k]; prev != nil {
		s.Close()
		return prev, nil
	}
	b.stmts[k] = s
	return s, nil
}

// row is a document ready to write: the identity and the extracted values.
type row struct {
	id      string
	version int64
	doc     []byte
	vals    []any // one per info.cols
}

// prepareRow validates doc and extracts what the table stores beside it.
// wantID, when set, must equal the document's _id.
func prepareRow(info *collInfo, doc bson.Raw, wantID string) (row, error) {
	if err := doc.Validate(); err != nil {
		return row{}, fmt.Errorf("invalid BSON document: %v: %w", err, store.ErrBadQuery)
	}
	idv, err := doc.LookupErr("_id")
	if err != nil {
		return row{}, fmt.Errorf("document has no _id: %w", store.ErrBadQuery)
	}
	id, ok := idv.StringValueOK()
	if !ok || id == "" {
		return row{}, fmt.Errorf("_id must be a non-empty string: %w", store.ErrBadQuery)
	}
	if wantID != "" && id != wantID {
		return row{}, fmt.Errorf("document _id %q does not match %q: %w", id, wantID, store.ErrBadQuery)
	}
	return columnsOf(info, doc, id)
}

// columnsOf is the row of doc, a valid document with _id id: its version
// and indexed columns.
func columnsOf(info *collInfo, doc bson.Raw, id string) (row, error) {
	r := row{id: id, doc: doc, vals: make([]any, len(info.cols))}
	if v, err := doc.LookupErr("version"); err == nil {
		switch v.Type {
		case bson.TypeInt64:
			r.version = v.Int64()
		case bson.TypeInt32:
			r.version = int64(v.Int32())
		}
	}
	for i, c := range info.cols {
		var err error
		if r.vals[i], err = extract(doc, c); err != nil {
			return row{}, err
		}
	}
	return r, nil
}

// extract returns the SQL value of an indexed field: the store's
// canonical form (store.CanonicalRaw, as cursors use it) in SQL terms
// (sqlValue). A missing or null field is NULL.
func extract(doc bson.Raw, c column) (any, error) {
	v, err := doc.LookupErr(c.parts...)
	if err != nil || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined {
		return nil, nil
	}
	cv, err := store.CanonicalRaw(v)
	if err != nil {
		return nil, fmt.Errorf("indexed field %s: %w", c.path, err)
	}
	return sqlValue(cv)
}

// sqlValue converts a canonical query value to the SQL value extract
// produces for the same BSON value.
func sqlValue(v any) (any, error) {
	switch x := v.(type) {
	case string, int64, float64:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case bson.DateTime:
		return int64(x), nil
	default:
		return nil, fmt.Errorf("unsupported query value %T: %w", v, store.ErrBadQuery)
	}
}

// dupError turns a SQLite unique-constraint failure into the store's error,
// naming the declared index from the columns SQLite lists. Other errors are
// returned unchanged.
func dupError(info *collInfo, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &store.DuplicateKeyError{Collection: info.name, Index: "_id"}
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
	default:
		return err
	}
	const marker = "UNIQUE constraint failed: "
	msg := se.Error()
	i := strings.Index(msg, marker)
	if i < 0 {
		return &store.DuplicateKeyError{Collection: info.name, Index: "unknown"}
	}
	rest := msg[i+len(marker):]
	// The driver appends the result code, " (2067)". Generated column names
	// never contain " (", so cutting there is safe.
	if k := strings.LastIndex(rest, " ("); k >= 0 {
		rest = rest[:k]
	}
	var cols []string
	for _, part := range strings.Split(rest, ", ") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, info.name+".")
		cols = append(cols, part)
	}
	key := strings.Join(cols, ",")
	if key == "id" {
		return &store.DuplicateKeyError{Collection: info.name, Index: "_id"}
	}
	if name, ok := info.uniqueByCols[key]; ok {
		return &store.DuplicateKeyError{Collection: info.name, Index: name}
	}
	return &store.DuplicateKeyError{Collection: info.name, Index: "unknown"}
}

func (b *Backend) insertSQL(info *collInfo) string {
	var cols, ph strings.Builder
	cols.WriteString("ws, id, version, doc")
	ph.WriteString("?, ?, ?, ?")
	for _, c := range info.cols {
		cols.WriteString(", " + quoteIdent(c.name))
		ph.WriteString(", ?")
	}
	return `INSERT INTO ` + info.table + ` (` + cols.String() + `) VALUES (` + ph.String() + `)`
}

func insertArgs(ws string, r row) []any {
	args := make([]any, 0, 4+len(r.vals))
	args = append(args, ws, r.id, r.version, []byte(r.doc))
	return append(args, r.vals...)
}

// Get returns the stored bytes of one document.
func (b *Backend) Get(ctx context.Context, coll, ws, id string) (bson.Raw, error) {
	info, err := b.coll(coll)
	if err != nil {
		return nil, fmt.Errorf("sqlite get: %w", err)
	}
	s, err := b.stmt(ctx, b.r, info, `SELECT doc FROM `+info.table+` WHERE ws = ? AND id = ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite get %s: %w", coll, err)
	}
	var doc []byte
	if err := s.QueryRowContext(ctx, ws, id).Scan(&doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite get %s/%s: %w", coll, id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("sqlite get %s/%s: %w", coll, id, err)
	}
	return bson.Raw(doc), nil
}

// Insert adds one document.
func (b *Backend) Insert(ctx context.Context, coll, ws string, doc bson.Raw) error {
	info, err := b.coll(coll)
	if err != nil {
		return fmt.Errorf("sqlite insert: %w", err)
	}
	r, err := prepareRow(info, doc, "")
	if err != nil {
		return fmt.Errorf("sqlite insert %s: %w", coll, err)
	}
	s, err := b.stmt(ctx, b.w, info, b.insertSQL(info))
	if err != nil {
		return fmt.Errorf("sqlite insert %s: %w", coll, err)
	}
	return b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		if _, err := tx.StmtContext(wctx, s).ExecContext(wctx, insertArgs(ws, r)...); err != nil {
			err = dupError(info, err)
			if isSecondaryDup(err) {
				err = b.preferIDDup(wctx, tx, info, r.id, err)
			}
			return wrapWrite("insert", coll, r.id, err)
		}
		return nil
	})
}

func isSecondaryDup(err error) bool {
	var dk *store.DuplicateKeyError
	return errors.As(err, &dk) && dk.Index != "_id"
}

// querier is what preferIDDup needs from a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// preferIDDup reports a duplicate _id when an insert broke both the primary
// key and a unique index. SQLite checks a WITHOUT ROWID table's primary key
// last, MongoDB checks _id first; callers treat "already inserted" (_id)
// differently from "someone else holds this value", so the engines must agree.
func (b *Backend) preferIDDup(ctx context.Context, q querier, info *collInfo, id string, dupErr error) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM `+info.table+` WHERE id = ?`, id).Scan(&one)
	if err == nil {
		return &store.DuplicateKeyError{Collection: info.name, Index: "_id"}
	}
	return dupErr
}

// wrapWrite adds context to a write error but hands *DuplicateKeyError back
// bare: it already names the collection and index, and callers may compare
// it directly.
func wrapWrite(op, coll, id string, err error) error {
	var dk *store.DuplicateKeyError
	if errors.As(err, &dk) {
		return dk
	}
	return fmt.Errorf("sqlite %s %s/%s: %w", op, coll, id, err)
}

// InsertMany inserts docs in one transaction, each independently: a
// constraint failure aborts only that statement, not the transaction. A
// failure of the engine fails the call as a whole and inserts nothing.
func (b *Backend) InsertMany(ctx context.Context, coll, ws string, docs []bson.Raw) ([]error, error) {
	info, err := b.coll(coll)
	if err != nil {
		return nil, fmt.Errorf("sqlite insert many: %w", err)
	}
	s, err := b.stmt(ctx, b.w, info, b.insertSQL(info))
	if err != nil {
		return nil, fmt.Errorf("sqlite insert many %s: %w", coll, err)
	}
	rows := make([]row, len(docs))
	invalid := make([]error, len(docs))
	for i, doc := range docs {
		if rows[i], err = prepareRow(info, doc, ""); err != nil {
			invalid[i] = fmt.Errorf("sqlite insert %s: %w", coll, err)
		}
	}
	var errs []error
	err = b.write(ctx, func(tx *sql.Tx) error {
		// A group rolled back runs this again: each attempt starts over.
		errs = slices.Clone(invalid)
		wctx := context.Background()
		ts := tx.StmtContext(wctx, s)
		args := make([]any, 0, 4+len(info.cols))
		for i, r := range rows {
			if errs[i] != nil {
				continue
			}
			args = append(args[:0], ws, r.id, r.version, []byte(r.doc))
			args = append(args, r.vals...)
			if _, err := ts.ExecContext(wctx, args...); err != nil {
				err = dupError(info, err)
				if isSecondaryDup(err) {
					err = b.preferIDDup(wctx, tx, info, r.id, err)
				}
				var dk *store.DuplicateKeyError
				if errors.As(err, &dk) {
					errs[i] = dk
					continue
				}
				// Anything else (I/O) is not about this document.
				return fmt.Errorf("sqlite insert many %s: document %d: %w", coll, i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// updateSQL is the compare-and-swap's UPDATE that sets the version, the
// document and the indexed columns in set (by position in info.cols);
// with cas, only if the stored version is the expected one.
func updateSQL(info *collInfo, set []bool, cas bool) string {
	var sb strings.Builder
	sb.WriteString(`UPDATE ` + info.table + ` SET version = ?, doc = ?`)
	for i, c := range info.cols {
		if set[i] {
			sb.WriteString(", " + quoteIdent(c.name) + " = ?")
		}
	}
	sb.WriteString(` WHERE ws = ? AND id = ?`)
	if cas {
		sb.WriteString(` AND version = ?`)
	}
	return sb.String()
}

// updateArgs are updateSQL's arguments for r.
func updateArgs(r row, set []bool, ws, id string, expectedVersion int64, cas bool) []any {
	args := make([]any, 0, 5+len(r.vals))
	args = append(args, r.version, []byte(r.doc))
	for i, v := range r.vals {
		if set[i] {
			args = append(args, v)
		}
	}
	args = append(args, ws, id)
	if cas {
		args = append(args, expectedVersion)
	}
	return args
}

// Compare-and-swap. SQLite rewrites the index entry of every column an
// UPDATE sets, equal or not, and each rewritten entry dirties a page (a
// random one, for a key such as createdAt) that the commit writes to the
// log: a profile write names four such columns and changes one or two.
// So a replace sets only the indexed columns whose values change. It
// learns the old values from the document the caller read (ReplaceOver:
// no read), or else by reading the row in the write's transaction
// (Replace: a read that walks the document's overflow pages, which come
// before the indexed columns in the row).

// Replace is a compare-and-swap on the version column.
func (b *Backend) Replace(ctx context.Context, coll, ws, id string, expectedVersion int64, doc bson.Raw) error {
	return b.ReplaceOver(ctx, coll, ws, id, expectedVersion, doc, nil)
}

// ReplaceOver is Replace told the document stored at expectedVersion
// (store.OverReplacer); a stored of another version or id is ignored.
func (b *Backend) ReplaceOver(ctx context.Context, coll, ws, id string, expectedVersion int64, doc, stored bson.Raw) error {
	info, err := b.coll(coll)
	if err != nil {
		return fmt.Errorf("sqlite replace: %w", err)
	}
	r, err := prepareRow(info, doc, id)
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	if old, ok := storedValues(info, stored, id, expectedVersion); ok {
		return b.replaceKnown(ctx, info, coll, ws, id, expectedVersion, r, old)
	}
	return b.replaceRead(ctx, info, coll, ws, id, expectedVersion, r)
}

// storedValues extracts the indexed columns of stored, if it is the
// document id at version. stored is not validated again (it was when it
// was written, and a profile's is 2 KB per write): values read wrong
// from it only fail replaceKnown's check of the unchanged columns, which
// then sets them all.
func storedValues(info *collInfo, stored bson.Raw, id string, version int64) ([]any, bool) {
	if stored == nil {
		return nil, false
	}
	if v, err := stored.LookupErr("_id"); err != nil {
		return nil, false
	} else if got, ok := v.StringValueOK(); !ok || got != id {
		return nil, false
	}
	old, err := columnsOf(info, stored, id)
	if err != nil || old.version != version {
		return nil, false
	}
	return old.vals, true
}

// everyColumn marks every indexed column: the full SET.
func everyColumn(info *collInfo) []bool {
	all := make([]bool, len(info.cols))
	for i := range all {
		all[i] = true
	}
	return all
}

// changedColumns marks the indexed columns whose value differs.
func changedColumns(old, new []any) []bool {
	set := make([]bool, len(new))
	for i := range set {
		set[i] = !sameValue(old[i], new[i])
	}
	return set
}

// replaceKnown is the compare-and-swap with the old values known. The
// columns it leaves out of the SET are checked in the WHERE (the stored
// document may be wrong though its id and version match: a profile
// deleted and created again); a row that fails only that check is
// written with every column set.
func (b *Backend) replaceKnown(ctx context.Context, info *collInfo, coll, ws, id string, expectedVersion int64, r row, old []any) error {
	set := changedColumns(old, r.vals)
	q := updateSQL(info, set, true)
	args := updateArgs(r, set, ws, id, expectedVersion, true)
	for i, c := range info.cols {
		if !set[i] {
			q += " AND " + quoteIdent(c.name) + " IS ?"
			args = append(args, old[i])
		}
	}
	s, err := b.stmt(ctx, b.w, info, q)
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	all := everyColumn(info)
	full, err := b.stmt(ctx, b.w, info, updateSQL(info, all, true))
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	version, err := b.stmt(ctx, b.w, info, `SELECT version FROM `+info.table+` WHERE ws = ? AND id = ?`)
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	return b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		exec := func(s *sql.Stmt, args []any) (int64, error) {
			res, err := tx.StmtContext(wctx, s).ExecContext(wctx, args...)
			if err != nil {
				return 0, wrapWrite("replace", coll, id, dupError(info, err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return 0, fmt.Errorf("sqlite replace %s/%s: %w", coll, id, err)
			}
			return n, nil
		}
		if n, err := exec(s, args); err != nil || n == 1 {
			return err
		}
		// Not updated: a missing document, a stale version, or indexed
		// columns other than the caller said.
		var v int64
		switch err := tx.StmtContext(wctx, version).QueryRowContext(wctx, ws, id).Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite replace %s/%s: %w", coll, id, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlite replace %s/%s: %w", coll, id, err)
		case v != expectedVersion:
			return fmt.Errorf("sqlite replace %s/%s: expected version %d: %w", coll, id, expectedVersion, store.ErrConflict)
		}
		if n, err := exec(full, updateArgs(r, all, ws, id, expectedVersion, true)); err != nil || n == 1 {
			return err
		}
		return fmt.Errorf("sqlite replace %s/%s: row changed under the writer", coll, id)
	})
}

// replaceRead is the compare-and-swap that reads the row's version and
// indexed columns first, in the write's transaction.
func (b *Backend) replaceRead(ctx context.Context, info *collInfo, coll, ws, id string, expectedVersion int64, r row) error {
	var cols strings.Builder
	for _, c := range info.cols {
		cols.WriteString(", " + quoteIdent(c.name))
	}
	read, err := b.stmt(ctx, b.w, info, `SELECT version`+cols.String()+` FROM `+info.table+` WHERE ws = ? AND id = ?`)
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	all := everyColumn(info)
	full, err := b.stmt(ctx, b.w, info, updateSQL(info, all, false))
	if err != nil {
		return fmt.Errorf("sqlite replace %s: %w", coll, err)
	}
	// A statement for a new set of changed columns is prepared after the
	// write (the writer's one connection is busy inside it); this time the
	// full SET serves.
	unprepared := ""
	err = b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		old := make([]any, 1+len(info.cols))
		ptrs := make([]any, len(old))
		for i := range old {
			ptrs[i] = &old[i]
		}
		switch err := tx.StmtContext(wctx, read).QueryRowContext(wctx, ws, id).Scan(ptrs...); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite replace %s/%s: %w", coll, id, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlite replace %s/%s: %w", coll, id, err)
		}
		if v, ok := old[0].(int64); !ok || v != expectedVersion {
			return fmt.Errorf("sqlite replace %s/%s: expected version %d: %w", coll, id, expectedVersion, store.ErrConflict)
		}
		set := changedColumns(old[1:], r.vals)
		s := full
		if q := updateSQL(info, set, false); !slices.Equal(set, all) {
			if cached := b.cachedStmt(info, q); cached != nil {
				s = cached
			} else {
				unprepared, set = q, all
			}
		}
		if _, err := tx.StmtContext(wctx, s).ExecContext(wctx, updateArgs(r, set, ws, id, 0, false)...); err != nil {
			return wrapWrite("replace", coll, id, dupError(info, err))
		}
		return nil
	})
	if err == nil && unprepared != "" {
		_, _ = b.stmt(ctx, b.w, info, unprepared) // for the next write that changes these columns
	}
	return err
}

// cachedStmt is the prepared statement for query, if there is one.
func (b *Backend) cachedStmt(info *collInfo, query string) *sql.Stmt {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.stmts[stmtKey{info: info, sql: query}]
}

// sameValue reports whether two SQL values of an indexed column are
// equal: the stored one as the driver reads it, the new one as extract
// makes it. Anything it cannot tell apart counts as changed.
func sameValue(old, new any) bool {
	switch n := new.(type) {
	case nil:
		return old == nil
	case int64:
		o, ok := old.(int64)
		return ok && o == n
	case float64:
		o, ok := old.(float64)
		return ok && o == n
	case string:
		switch o := old.(type) {
		case string:
			return o == n
		case []byte:
			return string(o) == n
		}
	case []byte:
		o, ok := old.([]byte)
		return ok && bytes.Equal(o, n)
	}
	return false
}

// Put upserts on the primary key; other unique indexes still apply. An id
// held by another workspace is left alone and reported as a duplicate _id,
// as MongoDB's upsert on {_id, workspaceId} does.
func (b *Backend) Put(ctx context.Context, coll, ws, id string, doc bson.Raw) error {
	info, err := b.coll(coll)
	if err != nil {
		return fmt.Errorf("sqlite put: %w", err)
	}
	r, err := prepareRow(info, doc, id)
	if err != nil {
		return fmt.Errorf("sqlite put %s: %w", coll, err)
	}
	var sets strings.Builder
	sets.WriteString("version = excluded.version, doc = excluded.doc")
	for _, c := range info.cols {
		q := quoteIdent(c.name)
		sets.WriteString(", " + q + " = excluded." + q)
	}
	s, err := b.stmt(ctx, b.w, info, b.insertSQL(info)+` ON CONFLICT (id) DO UPDATE SET `+sets.String()+` WHERE ws = excluded.ws`)
	if err != nil {
		return fmt.Errorf("sqlite put %s: %w", coll, err)
	}
	return b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		res, err := tx.StmtContext(wctx, s).ExecContext(wctx, insertArgs(ws, r)...)
		if err != nil {
			return wrapWrite("put", coll, id, dupError(info, err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite put %s/%s: %w", coll, id, err)
		}
		if n == 0 {
			return &store.DuplicateKeyError{Collection: info.name, Index: "_id"}
		}
		return nil
	})
}

// Delete removes one document.
func (b *Backend) Delete(ctx context.Context, coll, ws, id string) error {
	info, err := b.coll(coll)
	if err != nil {
		return fmt.Errorf("sqlite delete: %w", err)
	}
	s, err := b.stmt(ctx, b.w, info, `DELETE FROM `+info.table+` WHERE ws = ? AND id = ?`)
	if err != nil {
		return fmt.Errorf("sqlite delete %s: %w", coll, err)
	}
	return b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		res, err := tx.StmtContext(wctx, s).ExecContext(wctx, ws, id)
		if err != nil {
			return fmt.Errorf("sqlite delete %s/%s: %w", coll, id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite delete %s/%s: %w", coll, id, err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite delete %s/%s: %w", coll, id, store.ErrNotFound)
		}
		return nil
	})
}
