package segment

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Reads for a data-subject export: a person's memberships and membership
// history as stored, and the names of the segments they refer to.

// MembershipsOf calls fn with each membership of a profile.
func MembershipsOf(ctx context.Context, tn store.Tenant, profileID string, fn func(bson.Raw) error) error {
	segs, err := allSegmentIDs(ctx, tn)
	if err != nil {
		return fmt.Errorf("memberships of %s: %w", profileID, err)
	}
	return eachMembership(ctx, tn, profileID, segs, fn)
}

// HistoryOf calls fn with each membership change of a profile.
func HistoryOf(ctx context.Context, tn store.Tenant, profileID string, fn func(bson.Raw) error) error {
	if err := tn.C(MembershipChanges).Each(ctx, store.Query{Index: ChangesOfProfile, Eq: []any{profileID}}, fn); err != nil {
		return fmt.Errorf("membership history of %s: %w", profileID, err)
	}
	return nil
}

// NameOf is a segment's name (store.ErrNotFound when there is none).
func NameOf(ctx context.Context, tn store.Tenant, id string) (string, error) {
	var seg struct {
		Name string `bson:"name"`
	}
	if err := tn.C(Segments).Get(ctx, id, &seg); err != nil {
		return "", err
	}
	return seg.Name, nil
}
