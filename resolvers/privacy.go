package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/apperr"
	"github.com/halo-cdp/halo/auth"
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/privacy"
	"github.com/halo-cdp/halo/store"
)

// privacyAdmin returns the caller's tenant if it holds privacy:admin, which
// every data-subject operation needs.
func (r *Resolver) privacyAdmin(ctx context.Context, op string) (store.Tenant, auth.Principal, error) {
	tn, p, err := r.tenant(ctx)
	if err != nil {
		return tn, p, err
	}
	if !p.Has(auth.ScopePrivacyAdmin) {
		return tn, p, apperr.New(apperr.Forbidden, "%s needs scope %s", op, auth.ScopePrivacyAdmin)
	}
	return tn, p, nil
}

func toErasureReceipt(rc *privacy.Receipt) *model.ErasureReceipt {
	return &model.ErasureReceipt{
		ID: rc.ID, ProfileID: rc.ProfileID, ErasedProfileIds: rc.ErasedProfileIDs, Reason: optional(rc.Reason),
		ErasedAt: rc.ErasedAt, TimelineItems: rc.TimelineItems, Identifiers: rc.Identifiers,
		Memberships: rc.Memberships, ConsentRecords: rc.ConsentRecords, SuppressedIdentifiers: rc.SuppressedIdentifiers,
	}
}
