package realtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

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
			if !mentions(raw, needles) {
				continue
			}
			b, err := decodeBatch(raw)
			if err != nil {
				return n, err
			}
			kept := b.Changes[:0:0]
			for _, ch := range b.Changes {
				one, err := bson.Marshal(ch)
				if err != nil {
					return n, fmt.Errorf("encode change: %w", err)
				}
				if mentions(one, needles) {
					n++
				} else {
					kept = append(kept, ch)
				}
			}
			switch {
			case len(kept) == len(b.Changes):
				// Named outside its changes: nothing to erase.
			case len(kept) == 0:
				if err := c.Delete(ctx, b.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return n, fmt.Errorf("erase changes %s: %w", b.ID, err)
				}
			default:
				b.Changes = kept
				if err := c.Put(ctx, b); err != nil {
					return n, fmt.Errorf("erase changes of %s: %w", b.ID, err)
				}
			}
		}
		if len(docs) < 1000 {
			return n, nil
		}
		after = last
	}
}

// mentions reports whether raw holds any of needles.
func mentions(raw []byte, needles [][]byte) bool {
	for _, nd := range needles {
		if bytes.Contains(raw, nd) {
			return true
		}
	}
	return false
}
