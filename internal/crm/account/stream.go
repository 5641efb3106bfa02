package account

import (
	"context"
	"log/slog"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// Stream delivers account id as it is after each change to it or to its
// people's links, from any instance, until ctx ends (NOT_FOUND for an
// account the workspace does not have).
func (s *Service) Stream(ctx context.Context, hub *realtime.Hub, tn store.Tenant, id string) (<-chan *Account, error) {
	if _, err := get(ctx, tn, id); err != nil {
		return nil, err
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), realtime.KindWith(realtime.AccountUpdated, realtime.PayloadAccountID, id), "")
	// Snapshots: a reader that falls behind gets the newest.
	return realtime.Pump(ctx, changes, cancel, nil, true, func(c realtime.Change) []*Account {
		a, err := get(ctx, tn, id)
		if err != nil {
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "accountUpdated: read account", "account", id, "err", err)
			}
			return nil
		}
		return []*Account{a}
	}), nil
}
