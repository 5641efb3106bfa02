package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// selectWhat is what a built query selects.
type selectWhat int

const (
	selectDocs  selectWhat = iota // doc, in index order
	selectCount                   // COUNT(*) (After and Limit ignored)
	selectIDs                     // id, in index order
)

// buildQuery translates a resolved query to SQL. The text depends on the
// shape of the query (which bounds are present, direction) and, for a
// page after a cursor, on whether the cursor is past a bound: a few
// texts per shape, so statements can be cached and reused.
func buildQuery(info *collInfo, q store.ResolvedQuery, what selectWhat) (string, []any, error) {
	if what == selectDocs && q.Merged {
		// The merged order is not the index's: SQLite sorts what the In
		// values' ranges hold. Sorting ids, read from the index alone,
		// and then reading only the documents kept, spares it reading
		// the document of every row it sorts (a page of an account's
		// timeline sorts the items of a thousand people).
		ids, args, err := buildQuery(info, q, selectIDs)
		if err != nil {
			return "", nil, err
		}
		_, order, _ := strings.Cut(ids, " ORDER BY ")
		order, _, _ = strings.Cut(order, " LIMIT ")
		return "SELECT doc FROM " + info.table + " WHERE id IN (" + ids + ") ORDER BY " + order, args, nil
	}
	count := what == selectCount
	fields := q.Index.Fields
	if len(q.Eq) > len(fields) {
		return "", nil, fmt.Errorf("index %s: %d equalities for %d fields: %w", q.Index.Name, len(q.Eq), len(fields), store.ErrBadQuery)
	}
	colOf := func(path string) (string, error) {
		if path == "_id" {
			return "id", nil // store.ByID: the primary key
		}
		i, ok := info.colByPath[path]
		if !ok {
			return "", fmt.Errorf("field %s is not indexed: %w", path, store.ErrBadQuery)
		}
		return quoteIdent(info.cols[i].name), nil
	}

	var sb strings.Builder
	switch what {
	case selectCount:
		sb.WriteString("SELECT COUNT(*) FROM ")
	case selectIDs:
		sb.WriteString("SELECT id FROM ")
	default:
		sb.WriteString("SELECT doc FROM ")
	}
	sb.WriteString(info.table)
	// Pinning the declared index keeps the planner from choosing the primary
	// key and sorting: the declared index already yields the requested order.
	if ix, ok := info.indexes[q.Index.Name]; ok && equalFields(ix.Fields, fields) {
		sb.WriteString(" INDEXED BY " + quoteIdent(sqlIndexName(info.name, q.Index.Name)))
	}
	if q.Index.Name == store.ByID {
		// The primary key is id alone, and the planner, without
		// statistics, prefers any declared index (all start with ws) for
		// `ws = ?` to id look-ups: for a few ids in a table of a million
		// rows it scanned the workspace's whole index. The unary + keeps
		// ws from choosing an index; the ws test stays.
		sb.WriteString(" WHERE +ws = ?")
	} else {
		sb.WriteString(" WHERE ws = ?")
	}
	var args []any

	for i, v := range q.Eq {
		col, err := colOf(fields[i])
		if err != nil {
			return "", nil, err
		}
		sv, err := sqlValue(v)
		if err != nil {
			return "", nil, err
		}
		sb.WriteString(" AND " + col + " = ?")
		args = append(args, sv)
	}

	rest := fields[len(q.Eq):]
	if len(q.In) > 0 {
		if len(rest) == 0 {
			return "", nil, fmt.Errorf("index %s: In with no field after the equalities: %w", q.Index.Name, store.ErrBadQuery)
		}
		col, err := colOf(rest[0])
		if err != nil {
			return "", nil, err
		}
		// The list is padded (with its last value) to a power of two:
		// the statement text, cached, depends only on the padded length.
		n := 1
		for n < len(q.In) {
			n *= 2
		}
		sb.WriteString(" AND " + col + " IN (" + strings.Repeat("?, ", n-1) + "?)")
		for i := range n {
			sv, err := sqlValue(q.In[min(i, len(q.In)-1)])
			if err != nil {
				return "", nil, err
			}
			args = append(args, sv)
		}
	}
	if q.Merged {
		// The In field is out of the order: the values' rows come
		// merged, by the fields after it.
		rest = rest[1:]
	}
	if q.RangeFrom != nil || q.RangeTo != nil {
		if len(rest) == 0 {
			return "", nil, fmt.Errorf("index %s: range with no field after the equalities: %w", q.Index.Name, store.ErrBadQuery)
		}
		col, err := colOf(rest[0])
		if err != nil {
			return "", nil, err
		}
		// A keyset position already past a bound implies it: the bound
		// is left out, so that SQLite seeks to the position. With both,
		// it seeks to the bound and filters its way to the position, on
		// every page: a walk of a large range read its start again per
		// page.
		from, to := q.RangeFrom, q.RangeTo
		if !count && len(q.After) > 0 {
			if !q.Desc && past(q.After[0], from, 1) {
				from = nil
			}
			if q.Desc && past(q.After[0], to, -1) {
				to = nil
			}
		}
		for _, e := range []struct {
			edge       *store.RangeEdge
			excl, incl string
		}{{from, " > ?", " >= ?"}, {to, " < ?", " <= ?"}} {
			if e.edge == nil {
				continue
			}
			sv, err := sqlValue(e.edge.Value)
			if err != nil {
				return "", nil, err
			}
			op := e.excl
			if e.edge.Inclusive {
				op = e.incl
			}
			sb.WriteString(" AND " + col + op)
			args = append(args, sv)
		}
		// MongoDB only compares values of one type bracket; SQLite orders
		// numbers before text. Closing the open side at the text boundary
		// keeps a one-sided bound from running into the other bracket.
		// (Bools and datetimes are integers here, so they still share the
		// number bracket: indexed fields are expected to hold one type.)
		// A keyset position of the bracket's own type implies the closing
		// edge too (and must be what SQLite seeks to, as above).
		var after any
		if !count && len(q.After) > 0 {
			after, _ = sqlValue(q.After[0])
		}
		switch {
		case q.RangeFrom == nil && isString(q.RangeTo.Value):
			if q.Desc || !isString(after) {
				sb.WriteString(" AND " + col + " >= ''")
			}
		case q.RangeTo == nil && !isString(q.RangeFrom.Value):
			if !q.Desc || !isNumber(after) {
				sb.WriteString(" AND " + col + " < ''")
			}
		}
	}

	if count {
		return sb.String(), args, nil
	}

	order := make([]string, 0, len(rest)+1)
	for _, f := range rest {
		col, err := colOf(f)
		if err != nil {
			return "", nil, err
		}
		order = append(order, col)
	}
	if len(order) == 0 || order[len(order)-1] != "id" {
		order = append(order, "id")
	}

	if q.After != nil {
		if len(q.After) != len(order) {
			return "", nil, fmt.Errorf("cursor has %d values, order has %d: %w", len(q.After), len(order), store.ErrBadCursor)
		}
		cmp := " > "
		if q.Desc {
			cmp = " < "
		}
		ph := make([]string, len(order))
		for i, v := range q.After {
			sv, err := sqlValue(v)
			if err != nil {
				return "", nil, fmt.Errorf("%v: %w", err, store.ErrBadCursor)
			}
			ph[i] = "?"
			args = append(args, sv)
		}
		sb.WriteString(" AND (" + strings.Join(order, ", ") + ")" + cmp + "(" + strings.Join(ph, ", ") + ")")
	}

	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	sb.WriteString(" ORDER BY ")
	for i, c := range order {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c + dir)
	}
	// LIMIT -1 is SQLite for "no limit"; binding it keeps one statement per
	// shape whatever the page size.
	sb.WriteString(" LIMIT ?")
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	args = append(args, limit)
	return sb.String(), args, nil
}

// past tells whether a keyset position's first value a lies beyond edge
// in direction dir (1: ascending, after a lower bound; -1: descending,
// before an upper bound), so that every row after the position is
// within the bound. Values of different types are never past.
func past(a any, edge *store.RangeEdge, dir int) bool {
	if edge == nil {
		return false
	}
	av, err1 := sqlValue(a)
	ev, err2 := sqlValue(edge.Value)
	if err1 != nil || err2 != nil {
		return false
	}
	var c int
	switch x := av.(type) {
	case string:
		y, ok := ev.(string)
		if !ok {
			return false
		}
		c = strings.Compare(x, y)
	case int64:
		y, ok := ev.(int64)
		if !ok {
			return false
		}
		c = cmp.Compare(x, y)
	case float64:
		y, ok := ev.(float64)
		if !ok {
			return false
		}
		c = cmp.Compare(x, y)
	default:
		return false
	}
	c *= dir
	return c > 0 || c == 0 && edge.Inclusive
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64:
		return true
	}
	return false
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

func equalFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Find returns the documents of a range read in index order.
func (b *Backend) Find(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]bson.Raw, error) {
	info, err := b.coll(coll)
	if err != nil {
		return nil, fmt.Errorf("sqlite find: %w", err)
	}
	query, args, err := buildQuery(info, q, selectDocs)
	if err != nil {
		return nil, fmt.Errorf("sqlite find %s: %w", coll, err)
	}
	s, err := b.stmt(ctx, b.r, info, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite find %s: %w", coll, err)
	}
	rows, err := s.QueryContext(ctx, append([]any{ws}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite find %s: %w", coll, err)
	}
	defer rows.Close()
	var out []bson.Raw
	if q.Limit > 0 {
		out = make([]bson.Raw, 0, min(q.Limit, 1000))
	}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("sqlite find %s: %w", coll, err)
		}
		out = append(out, bson.Raw(doc))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite find %s: %w", coll, err)
	}
	return out, nil
}

// FindIDs returns the ids of a range read in index order, from the index
// alone (store.IDFinder).
func (b *Backend) FindIDs(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]string, error) {
	info, err := b.coll(coll)
	if err != nil {
		return nil, fmt.Errorf("sqlite find ids: %w", err)
	}
	query, args, err := buildQuery(info, q, selectIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite find ids %s: %w", coll, err)
	}
	s, err := b.stmt(ctx, b.r, info, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite find ids %s: %w", coll, err)
	}
	rows, err := s.QueryContext(ctx, append([]any{ws}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite find ids %s: %w", coll, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite find ids %s: %w", coll, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite find ids %s: %w", coll, err)
	}
	return out, nil
}

// Count counts the documents matching the query's equalities and range.
func (b *Backend) Count(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	info, err := b.coll(coll)
	if err != nil {
		return 0, fmt.Errorf("sqlite count: %w", err)
	}
	query, args, err := buildQuery(info, q, selectCount)
	if err != nil {
		return 0, fmt.Errorf("sqlite count %s: %w", coll, err)
	}
	s, err := b.stmt(ctx, b.r, info, query)
	if err != nil {
		return 0, fmt.Errorf("sqlite count %s: %w", coll, err)
	}
	var n int64
	if err := s.QueryRowContext(ctx, append([]any{ws}, args...)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite count %s: %w", coll, err)
	}
	return n, nil
}

// DeleteMany deletes what Find(q) would return, in one statement (one
// write of the group commit).
func (b *Backend) DeleteMany(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	info, err := b.coll(coll)
	if err != nil {
		return 0, fmt.Errorf("sqlite delete many: %w", err)
	}
	sel, args, err := buildQuery(info, q, selectIDs)
	if err != nil {
		return 0, fmt.Errorf("sqlite delete many %s: %w", coll, err)
	}
	s, err := b.stmt(ctx, b.w, info, `DELETE FROM `+info.table+` WHERE id IN (`+sel+`)`)
	if err != nil {
		return 0, fmt.Errorf("sqlite delete many %s: %w", coll, err)
	}
	var n int64
	err = b.write(ctx, func(tx *sql.Tx) error {
		wctx := context.Background()
		res, err := tx.StmtContext(wctx, s).ExecContext(wctx, append([]any{ws}, args...)...)
		if err != nil {
			return fmt.Errorf("sqlite delete many %s: %w", coll, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite delete many %s: %w", coll, err)
		}
		return nil
	})
	if err != nil {
		return 0, err // the group rolled back: nothing was deleted
	}
	return n, nil
}
