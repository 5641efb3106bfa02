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
			k, err := eraseIn(ctx, c, raw, needles)
			n += k
			if err != nil {
				return n, err
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

// eraseIn removes the changes of one outbox document that mention any of
// needles: the document goes when none is left, else it is rewritten by
// compare-and-swap (another erasure, or the pruner, may touch it at the
// same time; a plain write could bring back what they removed). It
// returns how many changes it removed.
func eraseIn(ctx context.Context, c store.Collection, raw bson.Raw, needles [][]byte) (int, error) {
	for range 10 {
		b, err := decodeBatch(raw)
		if err != nil {
			return 0, err
		}
		kept := b.Changes[:0:0]
		for _, ch := range b.Changes {
			one, err := bson.Marshal(ch)
			if err != nil {
				return 0, fmt.Errorf("encode change: %w", err)
			}
			if !mentions(one, needles) {
				kept = append(kept, ch)
			}
		}
		erased := len(b.Changes) - len(kept)
		switch {
		case erased == 0:
			return 0, nil // named outside its changes
		case len(kept) == 0:
			if err := c.Delete(ctx, b.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, fmt.Errorf("erase changes %s: %w", b.ID, err)
			}
			return erased, nil
		}
		prev := b.Version
		b.Changes, b.Version = kept, prev+1
		switch err := c.Replace(ctx, b, prev); {
		case err == nil:
			return erased, nil
		case errors.Is(err, store.ErrNotFound):
			return 0, nil // pruned meanwhile
		case !errors.Is(err, store.ErrConflict):
			return 0, fmt.Errorf("erase changes of %s: %w", b.ID, err)
		}
		if raw, err = c.GetRaw(ctx, b.ID); errors.Is(err, store.ErrNotFound) {
			return 0, nil
		} else if err != nil {
			return 0, fmt.Errorf("erase changes of %s: %w", b.ID, err)
		}
	}
	return 0, fmt.Errorf("erase changes: outbox document rewritten concurrently too often: %w", store.ErrConflict)
}
