package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // the engine the embedded store uses, read-only here

	"github.com/halo-cdp/halo/store/sqlitestore"
)

// diskUse is how a stopped server's embedded store uses its file: the
// bytes in pages that hold data (free pages, left by deletes such as the
// outbox's pruning, are reused by later writes and not counted) and the
// largest collections, each with its indexes.
type diskUse struct {
	used  int64
	colls []collUse
}

type collUse struct {
	name          string
	rows, indexes int64 // bytes: the collection's table, its indexes
}

func measureDisk(ctx context.Context, dir string) (diskUse, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitestore.FileName)+"?mode=ro")
	if err != nil {
		return diskUse{}, err
	}
	defer db.Close()
	var u diskUse
	var pages, free, size int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRowContext(ctx, q).Scan(v); err != nil {
			return diskUse{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	u.used = (pages - free) * size
	// dbstat names each b-tree; an index's table is in sqlite_master.
	rows, err := db.QueryContext(ctx, `SELECT s.name, coalesce(m.tbl_name, s.name), m.type, sum(s.pgsize)
		FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY s.name`)
	if err != nil {
		return u, fmt.Errorf("dbstat: %w", err)
	}
	defer rows.Close()
	by := map[string]*collUse{}
	for rows.Next() {
		var name, table string
		var kind sql.NullString
		var bytes int64
		if err := rows.Scan(&name, &table, &kind, &bytes); err != nil {
			return u, err
		}
		c := by[table]
		if c == nil {
			c = &collUse{name: table}
			by[table] = c
		}
		if kind.String == "index" || strings.HasPrefix(name, "sqlite_autoindex") {
			c.indexes += bytes
		} else {
			c.rows += bytes
		}
	}
	if err := rows.Err(); err != nil {
		return u, err
	}
	for _, c := range by {
		u.colls = append(u.colls, *c)
	}
	slices.SortFunc(u.colls, func(a, b collUse) int { return int((b.rows + b.indexes) - (a.rows + a.indexes)) })
	return u, nil
}

// top lists the n largest collections, rows + indexes: "events 586 + 172
// MiB".
func (u diskUse) top(n int) string {
	var parts []string
	for _, c := range u.colls[:min(n, len(u.colls))] {
		parts = append(parts, fmt.Sprintf("%s %d + %d MiB", c.name, c.rows>>20, c.indexes>>20))
	}
	return strings.Join(parts, ", ")
}
