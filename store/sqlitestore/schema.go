package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Meta tables remember which field paths have an extracted column and which
// SQL index backs each declared index, so a later declaration can add what is
// missing (and backfill it) instead of guessing from the SQL schema.
const metaDDL = `
CREATE TABLE IF NOT EXISTS halo_meta_columns (
	coll TEXT NOT NULL,
	path TEXT NOT NULL,
	col  TEXT NOT NULL,
	PRIMARY KEY (coll, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS halo_meta_indexes (
	coll   TEXT NOT NULL,
	name   TEXT NOT NULL,
	fields TEXT NOT NULL,
	uniq   INTEGER NOT NULL,
	PRIMARY KEY (coll, name)
) WITHOUT ROWID;
`

// column is one extracted index field.
type column struct {
	path  string
	parts []string // path split on dots, for bson.Raw.LookupErr
	name  string   // SQL column name (unquoted)
}

// collInfo is the engine's view of one collection. It is immutable once
// published; EnsureCollections swaps in a new one when the schema grows.
type collInfo struct {
	name      string
	table     string // quoted identifier
	cols      []column
	colByPath map[string]int
	indexes   map[string]store.Index
	// uniqueByCols maps the column list SQLite reports in a UNIQUE
	// constraint message ("ws,f_type,f_value") to the declared index name.
	uniqueByCols map[string]string
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// columnName derives a stable SQL column name for a field path. Paths that
// are not plain identifiers get a hash suffix so "a.b" and "a_b" never meet.
func columnName(path string) string {
	var b strings.Builder
	b.WriteString("f_")
	plain := true
	for _, r := range path {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			plain = false
		}
	}
	if !plain {
		h := fnv.New32a()
		h.Write([]byte(path))
		fmt.Fprintf(&b, "_%08x", h.Sum32())
	}
	return b.String()
}

func sqlIndexName(coll, index string) string { return coll + "__" + index }

func validName(s string) bool {
	return s != "" && !strings.HasPrefix(strings.ToLower(s), "sqlite_") && !strings.HasPrefix(s, "halo_meta_")
}

// EnsureCollections creates tables, extracted columns and indexes. It runs
// in one write transaction so a failed declaration (for example a new unique
// index that existing data violates) leaves the schema as it was.
func (b *Backend) EnsureCollections(ctx context.Context, specs []store.CollectionSpec) error {
	for _, s := range specs {
		if !validName(s.Name) {
			return fmt.Errorf("sqlite ensure: invalid collection name %q: %w", s.Name, store.ErrBadQuery)
		}
		for _, ix := range s.Indexes {
			if ix.Name == "" || len(ix.Fields) == 0 {
				return fmt.Errorf("sqlite ensure %s: index %q needs a name and fields: %w", s.Name, ix.Name, store.ErrBadQuery)
			}
			for _, f := range ix.Fields {
				// "," is the separator in halo_meta_indexes.fields.
				if f == "" || f == "_id" || f == "workspaceId" || strings.Contains(f, ",") {
					return fmt.Errorf("sqlite ensure %s: index %s: unsupported field %q: %w", s.Name, ix.Name, f, store.ErrBadQuery)
				}
			}
		}
	}

	b.schemaMu.Lock()
	defer b.schemaMu.Unlock()

	// Once begun, the declaration runs to its end whatever becomes of ctx
	// (a start-up deadline): a backfill or a relayout cut short would roll
	// back and start over at every start, and never finish.
	ctx = context.WithoutCancel(ctx)
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite ensure: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, metaDDL); err != nil {
		return fmt.Errorf("sqlite ensure: meta tables: %w", err)
	}
	infos := make([]*collInfo, 0, len(specs))
	var moved []relayoutDone
	for _, s := range specs {
		info, done, err := ensureCollection(ctx, tx, s)
		if done != nil {
			moved = append(moved, *done)
		}
		if err != nil {
			return fmt.Errorf("sqlite ensure %s: %w", s.Name, err)
		}
		infos = append(infos, info)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite ensure: commit: %w", err)
	}
	for _, m := range moved {
		slog.InfoContext(ctx, "sqlite: collection moved to a rowid table (large documents)", "collection", m.coll, "documents", m.docs, "ms", m.took.Milliseconds())
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, info := range infos {
		b.colls[info.name] = info
	}
	return nil
}

func ensureCollection(ctx context.Context, tx *sql.Tx, spec store.CollectionSpec) (*collInfo, *relayoutDone, error) {
	table := quoteIdent(spec.Name)
	// The extracted columns carry no declared type so SQLite keeps each value
	// in its own storage class (no affinity conversions): integers compare
	// with reals numerically, text sorts by bytes (BINARY), like BSON.
	// The primary key is id alone: ids are globally unique and MongoDB's _id
	// index is not per workspace, so an id taken in one workspace must be
	// refused in another on both engines. Every statement still filters on
	// ws, which is what keeps tenants apart.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+tableDef(spec.LargeDocuments, nil)); err != nil {
		return nil, nil, fmt.Errorf("create table: %w", err)
	}

	cols, err := loadColumns(ctx, tx, spec.Name)
	if err != nil {
		return nil, nil, err
	}
	var moved *relayoutDone
	if spec.LargeDocuments {
		if moved, err = relayout(ctx, tx, spec.Name, cols); err != nil {
			return nil, nil, err
		}
	}
	var added []column
	for _, ix := range spec.Indexes {
		for _, f := range ix.Fields {
			if slices.ContainsFunc(cols, func(c column) bool { return c.path == f }) {
				continue
			}
			c := newColumn(f, columnName(f))
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+quoteIdent(c.name)); err != nil {
				return nil, nil, fmt.Errorf("add column for %s: %w", f, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO halo_meta_columns (coll, path, col) VALUES (?, ?, ?)`, spec.Name, f, c.name); err != nil {
				return nil, nil, fmt.Errorf("record column for %s: %w", f, err)
			}
			cols = append(cols, c)
			added = append(added, c)
		}
	}
	if len(added) > 0 {
		if err := backfill(ctx, tx, spec.Name, table, added); err != nil {
			return nil, nil, err
		}
	}

	info := &collInfo{
		name:         spec.Name,
		table:        table,
		cols:         cols,
		colByPath:    make(map[string]int, len(cols)),
		indexes:      make(map[string]store.Index),
		uniqueByCols: make(map[string]string),
	}
	for i, c := range cols {
		info.colByPath[c.path] = i
	}

	known, err := loadIndexes(ctx, tx, spec.Name)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range spec.Retired {
		if slices.ContainsFunc(spec.Indexes, func(ix store.Index) bool { return ix.Name == name }) {
			return nil, nil, fmt.Errorf("index %s is both declared and retired: %w", name, store.ErrBadQuery)
		}
		if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+quoteIdent(sqlIndexName(spec.Name, name))); err != nil {
			return nil, nil, fmt.Errorf("drop retired index %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM halo_meta_indexes WHERE coll = ? AND name = ?`, spec.Name, name); err != nil {
			return nil, nil, fmt.Errorf("forget retired index %s: %w", name, err)
		}
		delete(known, name)
	}
	for _, ix := range spec.Indexes {
		def := strings.Join(ix.Fields, ",")
		sqlName := quoteIdent(sqlIndexName(spec.Name, ix.Name))
		if old, ok := known[ix.Name]; ok && (old.def != def || old.unique != ix.Unique) {
			// Rebuilding silently could drop a uniqueness guarantee callers
			// rely on, or rebuild a large index at start-up; the MongoDB
			// engine refuses too. A redefinition needs a new index name.
			return nil, nil, fmt.Errorf("index %s is declared as (%s, unique=%v), refusing to redefine it as (%s, unique=%v)",
				ix.Name, old.def, old.unique, def, ix.Unique)
		}
		var colList []string
		colList = append(colList, "ws")
		for _, f := range ix.Fields {
			colList = append(colList, quoteIdent(cols[info.colByPath[f]].name))
		}
		create := `CREATE INDEX IF NOT EXISTS `
		if ix.Unique {
			create = `CREATE UNIQUE INDEX IF NOT EXISTS `
		} else {
			// id last makes the index order total, matching the query order.
			colList = append(colList, "id")
		}
		if _, err := tx.ExecContext(ctx, create+sqlName+` ON `+table+` (`+strings.Join(colList, ", ")+`)`); err != nil {
			return nil, nil, fmt.Errorf("create index %s: %w", ix.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO halo_meta_indexes (coll, name, fields, uniq) VALUES (?, ?, ?, ?)
			ON CONFLICT (coll, name) DO UPDATE SET fields = excluded.fields, uniq = excluded.uniq`,
			spec.Name, ix.Name, def, ix.Unique); err != nil {
			return nil, nil, fmt.Errorf("record index %s: %w", ix.Name, err)
		}
		known[ix.Name] = indexDef{def: def, unique: ix.Unique}
	}

	// Indexes declared earlier (possibly by another Store on this database)
	// still exist and still enforce uniqueness, so they stay in the view.
	for name, d := range known {
		ix := store.Index{Name: name, Fields: strings.Split(d.def, ","), Unique: d.unique}
		info.indexes[name] = ix
		if ix.Unique {
			key := []string{"ws"}
			for _, f := range ix.Fields {
				if i, ok := info.colByPath[f]; ok {
					key = append(key, cols[i].name)
				}
			}
			info.uniqueByCols[strings.Join(key, ",")] = name
		}
	}
	return info, moved, nil
}

// tableDef is the column list of a collection's table (after CREATE TABLE
// name), with cols extracted.
//
// Documents are stored whole in doc. A table keyed by id alone (WITHOUT
// ROWID) keeps its rows in the primary key's B-tree, which holds at most
// about 1,000 bytes of a row on a 4 KiB page: a larger document spills
// onto an overflow page, and every rewrite of it writes both pages and
// returns the old overflow page to the free list. That doubled the cost of
// a profile's write (2 KB). A rowid table keeps rows up to about 4 KB on
// their page, at the price of a second B-tree (the unique index on id) that
// every read by id goes through: worth it only for large documents.
func tableDef(large bool, cols []column) string {
	var extra string
	for _, c := range cols {
		extra += ",\n\t\t" + quoteIdent(c.name)
	}
	if large {
		return ` (
		ws      TEXT NOT NULL,
		id      TEXT NOT NULL UNIQUE,
		version INTEGER NOT NULL,
		doc     BLOB NOT NULL` + extra + `
	)`
	}
	return ` (
		ws      TEXT NOT NULL,
		id      TEXT NOT NULL,
		version INTEGER NOT NULL,
		doc     BLOB NOT NULL` + extra + `,
		PRIMARY KEY (id)
	) WITHOUT ROWID`
}

// relayout moves a collection declared with large documents, whose table
// was created keyed by id alone, to a rowid table (see tableDef): it copies
// the rows and recreates the table's indexes, in the declaration's
// transaction. It runs once, when a database made before the declaration
// is first opened: 3.8 s for 100,000 profiles (2 KB each) on 2 vCPU, and
// the log and the file grow by about the table's size meanwhile.
func relayout(ctx context.Context, tx *sql.Tx, coll string, cols []column) (*relayoutDone, error) {
	var ddl string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, coll).Scan(&ddl); err != nil {
		return nil, fmt.Errorf("relayout %s: read schema: %w", coll, err)
	}
	if !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		return nil, nil
	}
	start := time.Now()
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, coll)
	if err != nil {
		return nil, fmt.Errorf("relayout %s: read indexes: %w", coll, err)
	}
	var indexes []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("relayout %s: read indexes: %w", coll, err)
		}
		indexes = append(indexes, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("relayout %s: read indexes: %w", coll, err)
	}
	names := []string{"ws", "id", "version", "doc"} // tableDef's
	for _, c := range cols {
		names = append(names, quoteIdent(c.name))
	}
	list := strings.Join(names, ", ")
	// halo_meta_ names no collection, nor any collection's index.
	table, tmp := quoteIdent(coll), quoteIdent("halo_meta_relayout")
	steps := []string{
		`DROP TABLE IF EXISTS ` + tmp,
		`CREATE TABLE ` + tmp + tableDef(true, cols),
		`INSERT INTO ` + tmp + ` (` + list + `) SELECT ` + list + ` FROM ` + table + ` ORDER BY id`,
		`DROP TABLE ` + table,
		`ALTER TABLE ` + tmp + ` RENAME TO ` + table,
	}
	for _, s := range append(steps, indexes...) {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("relayout %s: %w", coll, err)
		}
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return nil, fmt.Errorf("relayout %s: count: %w", coll, err)
	}
	return &relayoutDone{coll: coll, docs: n, took: time.Since(start)}, nil
}

// relayoutDone is a relayout made, logged once committed.
type relayoutDone struct {
	coll string
	docs int64
	took time.Duration
}

func newColumn(path, name string) column {
	return column{path: path, parts: strings.Split(path, "."), name: name}
}

func loadColumns(ctx context.Context, tx *sql.Tx, coll string) ([]column, error) {
	rows, err := tx.QueryContext(ctx, `SELECT path, col FROM halo_meta_columns WHERE coll = ? ORDER BY path`, coll)
	if err != nil {
		return nil, fmt.Errorf("load columns: %w", err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var path, name string
		if err := rows.Scan(&path, &name); err != nil {
			return nil, fmt.Errorf("load columns: %w", err)
		}
		cols = append(cols, newColumn(path, name))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load columns: %w", err)
	}
	return cols, nil
}

type indexDef struct {
	def    string
	unique bool
}

func loadIndexes(ctx context.Context, tx *sql.Tx, coll string) (map[string]indexDef, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, fields, uniq FROM halo_meta_indexes WHERE coll = ?`, coll)
	if err != nil {
		return nil, fmt.Errorf("load indexes: %w", err)
	}
	defer rows.Close()
	out := make(map[string]indexDef)
	for rows.Next() {
		var name string
		var d indexDef
		if err := rows.Scan(&name, &d.def, &d.unique); err != nil {
			return nil, fmt.Errorf("load indexes: %w", err)
		}
		out[name] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load indexes: %w", err)
	}
	return out, nil
}

// backfill fills newly added columns from the stored documents. It reads in
// keyset batches and updates after each batch is fully read, so no cursor is
// open on the table while it is being written.
func backfill(ctx context.Context, tx *sql.Tx, coll, table string, added []column) error {
	sets := make([]string, len(added))
	for i, c := range added {
		sets[i] = quoteIdent(c.name) + " = ?"
	}
	update, err := tx.PrepareContext(ctx, `UPDATE `+table+` SET `+strings.Join(sets, ", ")+` WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer update.Close()

	type row struct {
		id  string
		doc []byte
	}
	const batch = 1000
	lastID := ""
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, doc FROM `+table+` WHERE id > ? ORDER BY id LIMIT ?`, lastID, batch)
		if err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.doc); err != nil {
				rows.Close()
				return fmt.Errorf("backfill: %w", err)
			}
			page = append(page, r)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("backfill: %w", err)
		}
		rows.Close()
		for _, r := range page {
			args := make([]any, 0, len(added)+1)
			for _, c := range added {
				v, err := extract(bson.Raw(r.doc), c)
				if err != nil {
					return fmt.Errorf("backfill %s/%s: %w", coll, r.id, err)
				}
				args = append(args, v)
			}
			args = append(args, r.id)
			if _, err := update.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("backfill %s/%s: %w", coll, r.id, err)
			}
		}
		if len(page) < batch {
			return nil
		}
		lastID = page[len(page)-1].id
	}
}
