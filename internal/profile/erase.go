package profile

import (
	"context"
	"errors"
	"fmt"

	"github.com/halo-cdp/halo/store"
)

// Erase deletes a profile document and its search terms (GDPR erasure).
// Idempotent: an absent profile is no error.
func Erase(ctx context.Context, tn store.Tenant, id string) error {
	if err := tn.C(Profiles).Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("erase profile %s: %w", id, err)
	}
	return DropTerms(ctx, tn, id)
}
