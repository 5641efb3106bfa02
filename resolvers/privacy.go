package resolvers

import (
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/privacy"
)

func toErasureReceipt(rc *privacy.Receipt) *model.ErasureReceipt {
	return &model.ErasureReceipt{
		ID: rc.ID, ProfileID: rc.ProfileID, ErasedProfileIds: rc.ErasedProfileIDs, Reason: optional(rc.Reason),
		ErasedAt: rc.ErasedAt, TimelineItems: rc.TimelineItems, Identifiers: rc.Identifiers,
		Memberships: rc.Memberships, ConsentRecords: rc.ConsentRecords, SuppressedIdentifiers: rc.SuppressedIdentifiers,
	}
}
