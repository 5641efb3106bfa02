package identity

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// MergesOf calls fn with each merge, unmerge and conflict record that
// names a profile as target or source, as stored (a data-subject export).
// A record naming it as both comes twice.
func MergesOf(ctx context.Context, tn store.Tenant, profileID string, fn func(bson.Raw) error) error {
	for _, index := range []string{MergesByTarget, MergesBySource} {
		if err := tn.C(Merges).Each(ctx, store.Query{Index: index, Eq: []any{profileID}}, fn); err != nil {
			return fmt.Errorf("merge records of %s: %w", profileID, err)
		}
	}
	return nil
}
