package consent

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// RecordsOf calls fn with each consent record of a profile as stored (a
// data-subject export).
func RecordsOf(ctx context.Context, tn store.Tenant, profileID string, fn func(bson.Raw) error) error {
	if err := tn.C(ConsentLog).Each(ctx, store.Query{Index: ConsentByProfile, Eq: []any{profileID}}, fn); err != nil {
		return fmt.Errorf("consent records of %s: %w", profileID, err)
	}
	return nil
}
