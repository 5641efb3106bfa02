package realtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/halo-cdp/halo/store"
)

// EraseProfiles deletes the outbox changes that name any of profileIDs
// (GDPR erasure): those about the profiles, and those of other profiles
// whose payload mentions them (a survivor's mergedFrom). Changes are
// transient (pruned after Retention), so deleting loses nothing durable;
// subscribers of an erased profile simply hear nothing more. It reads the
// whole outbox of the workspace once (at most Retention of changes).
// Returns how many it deleted.
func EraseProfiles(ctx context.Context, tn store.Tenant, profileIDs []string) (int, error) {
	if len(profileIDs) == 0 {
		return 0, nil
	}
	c := tn.C(Changes)
	needles := make([][]byte, len(profileIDs))
	for i, id := range profileIDs {
		needles[i] = []byte(id)
	}
	n, after := 0, ""
	for {
		docs, last, err := c.Scan(ctx, store.Query{Index: ChangesBySeq, After: after, Limit: 1000})
		if err != nil {
			return n, fmt.Errorf("scan changes: %w", err)
		}
		for _, raw := range docs {
			hit := false
			for _, nd := range needles {
				if bytes.Contains(raw, nd) {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
			id, _ := raw.Lookup("_id").StringValueOK()
			if err := c.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, fmt.Errorf("erase change %s: %w", id, err)
			}
			n++
		}
		if len(docs) < 1000 {
			return n, nil
		}
		after = last
	}
}
