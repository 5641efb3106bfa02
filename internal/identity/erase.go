package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/halo-cdp/halo/store"
)

// Erasure support (package privacy, GDPR Art. 17). Every function here is
// idempotent: a resumed erasure calls it again.

// EraseIdentities deletes the identities a profile holds and returns them.
func EraseIdentities(ctx context.Context, tn store.Tenant, profileID string) ([]Identifier, error) {
	held, err := Identifiers(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	c := tn.C(Identities)
	out := make([]Identifier, 0, len(held))
	for _, h := range held {
		var doc identity
		err := c.FindOne(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{h.Type, h.Value}}, &doc)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up a %s identity of %s: %w", h.Type, profileID, err)
		}
		// Only while it is still this profile's (a concurrent merge may
		// have moved it on; the erasure's final pass then finds it there).
		if doc.ProfileID != profileID {
			continue
		}
		if err := c.Delete(ctx, doc.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("erase a %s identity of %s: %w", h.Type, profileID, err)
		}
		out = append(out, h.Identifier)
	}
	return out, nil
}

// EraseHistory deletes the merge, unmerge and conflict records naming any
// of profileIDs as source or target: they hold snapshots of the profile,
// its identifier values and trait values. The other profile of such a
// record loses that entry of its history; that is what erasure asks for.
// Queue entries of those records go too. Returns how many were deleted.
func EraseHistory(ctx context.Context, tn store.Tenant, profileIDs []string) (int, error) {
	c := tn.C(Merges)
	sys := tn.System().C(MergeQueue)
	n := 0
	for _, pid := range profileIDs {
		for _, index := range []string{MergesByTarget, MergesBySource} {
			for {
				docs, err := c.Find(ctx, store.Query{Index: index, Eq: []any{pid}, Limit: 500})
				if err != nil {
					return n, fmt.Errorf("merge history of %s: %w", pid, err)
				}
				for _, d := range docs {
					id, _ := d.Raw.Lookup("_id").StringValueOK()
					if err := c.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
						return n, fmt.Errorf("erase merge record %s: %w", id, err)
					}
					if err := sys.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
						return n, fmt.Errorf("dequeue merge record %s: %w", id, err)
					}
					n++
				}
				if len(docs) < 500 {
					break
				}
			}
		}
	}
	return n, nil
}

// SettleMergesInto finishes every merge still running into profileID, so
// an erasure sees everything the profile absorbed.
func (r *Resolver) SettleMergesInto(ctx context.Context, tn store.Tenant, profileID string) error {
	docs, err := tn.C(Merges).Find(ctx, store.Query{Index: MergesByTarget, Eq: []any{profileID}})
	if err != nil {
		return fmt.Errorf("merges into %s: %w", profileID, err)
	}
	for _, d := range docs {
		var rec Record
		if err := d.Decode(&rec); err != nil {
			return fmt.Errorf("decode merge record: %w", err)
		}
		if rec.Status == statusRunning {
			if err := r.finishByID(ctx, tn, rec.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// ProfileHash is a salted hash of a profile id (the workspace's
// suppression salt): an erasure is filed under it, so repeating an erasure
// finds it without the record holding the id. With create unset and no
// salt yet, it returns "" (nothing was ever erased).
func (r *Resolver) ProfileHash(ctx context.Context, tn store.Tenant, profileID string, create bool) (string, error) {
	salt, err := r.loadSalt(ctx, tn, create)
	if err != nil || salt == nil {
		return "", err
	}
	// "$profile" is no identifier type (types start with a letter).
	return suppressionHash(salt, Identifier{Type: "$profile", Value: profileID}), nil
}
