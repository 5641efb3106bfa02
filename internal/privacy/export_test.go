package privacy

import (
	"context"

	"github.com/halo-cdp/halo/store"
)

// Plan writes an erasure's record without running it (a crash right after).
func (s *Service) Plan(ctx context.Context, tn store.Tenant, profileID, reason, actor string) (string, error) {
	rec, err := s.plan(ctx, tn, profileID, reason, actor)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}
