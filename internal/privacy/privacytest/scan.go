// Package privacytest helps tests prove an erasure: it reads every
// document of every declared collection and reports those that still
// carry a person's ids or identifier values.
package privacytest

import (
	"bytes"
	"context"
	"fmt"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/store"
)

// Leftovers reads every document of every collection in app.Collections,
// in workspace ws and in the system workspace, and returns one line
// ("collection/_id contains needle") per document whose raw BSON bytes
// contain one of needles. It also returns how many documents it read.
func Leftovers(ctx context.Context, st *store.Store, ws string, needles []string) ([]string, int, error) {
	var hits []string
	read := 0
	for _, w := range []string{ws, store.SystemWorkspace} {
		tn := st.Tenant(w)
		for _, spec := range app.Collections {
			// Through an index, so a document missing an indexed field is
			// seen too; the primary key for a collection with none.
			index := store.ByID
			if len(spec.Indexes) > 0 {
				index = spec.Indexes[0].Name
			}
			c := tn.C(spec.Name)
			q := store.Query{Index: index, Limit: 1000}
			for {
				docs, last, err := c.Scan(ctx, q)
				if err != nil {
					return nil, read, fmt.Errorf("scan %s: %w", spec.Name, err)
				}
				for _, raw := range docs {
					read++
					for _, n := range needles {
						if n != "" && bytes.Contains(raw, []byte(n)) {
							id, _ := raw.Lookup("_id").StringValueOK()
							hits = append(hits, fmt.Sprintf("%s/%s (workspace %s) contains %q", spec.Name, id, w, n))
						}
					}
				}
				if len(docs) < q.Limit {
					break
				}
				q.After = last
			}
		}
	}
	return hits, read, nil
}
