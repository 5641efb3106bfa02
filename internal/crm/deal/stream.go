package deal

import (
	"context"
	"log/slog"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// Stream delivers each deal of pipeline (every pipeline when "") as it is
// after each write to it, from any instance, until ctx ends. An unknown
// pipeline is BAD_USER_INPUT on pipeline.
func (s *Service) Stream(ctx context.Context, hub *realtime.Hub, tn store.Tenant, pipeline string) (<-chan *Deal, error) {
	if pipeline != "" {
		if _, err := s.Get(ctx, tn, "pipeline", pipeline); err != nil {
			return nil, err
		}
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), realtime.KindWith(realtime.DealChanged, realtime.PayloadPipeline, pipeline), "")
	return realtime.Pump(ctx, changes, cancel, nil, false, func(c realtime.Change) []*Deal {
		d, err := get(ctx, tn, c.String(realtime.PayloadDealID))
		if err != nil {
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "dealChanged: read deal", "deal", c.String(realtime.PayloadDealID), "err", err)
			}
			return nil
		}
		d.WorkspaceID = tn.Workspace()
		return []*Deal{d}
	}), nil
}
