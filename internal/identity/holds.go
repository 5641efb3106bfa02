package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/halo-cdp/halo/store"
)

// HoldsAny reports whether the profile that profileID stands for now (itself,
// or the survivor it was merged into) holds at least one of ids. It only
// reads: nothing is created, attached or healed, so a caller may ask before
// deciding whether to write at all (track's duplicate check: is a replayed
// messageId the same person's?).
//
// The cheap case comes first: an identifier whose identity names
// profileID itself. Merges are followed only when that fails: the owner of
// an identifier and profileID both redirected to their live profile.
func (r *Resolver) HoldsAny(ctx context.Context, tn store.Tenant, profileID string, ids []Identifier) (bool, error) {
	owners := make([]string, 0, len(ids))
	for _, id := range ids {
		owner, err := Lookup(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("look up identifier %s: %w", id.Type, err)
		}
		if owner == profileID {
			return true, nil
		}
		owners = append(owners, owner)
	}
	if len(owners) == 0 {
		return false, nil
	}
	holder, err := r.LiveID(ctx, tn, profileID)
	if err != nil {
		return false, err
	}
	for _, owner := range owners {
		if owner == holder {
			return true, nil
		}
		live, err := r.LiveID(ctx, tn, owner)
		if err != nil {
			return false, err
		}
		if live == holder {
			return true, nil
		}
	}
	return false, nil
}

// LiveID is the live profile id standing for id: where it was merged
// (the chain followed), or id itself (live, or unknown). It only reads.
func (r *Resolver) LiveID(ctx context.Context, tn store.Tenant, id string) (string, error) {
	next, err := r.Redirect(ctx, tn, id)
	if errors.Is(err, store.ErrNotFound) {
		return id, nil
	}
	if err != nil {
		return "", fmt.Errorf("follow merges of %s: %w", id, err)
	}
	return next, nil
}
