package consent

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// StreamStates streams from hub profileID's state of each consent that
// changes (consent.changed), following the profile through merges: the
// state is read when the change comes, so it is the survivor's after a
// merge. A bad profileID is BAD_USER_INPUT on field "profileId"; the
// stream ends with ctx.
func (s *Service) StreamStates(ctx context.Context, hub *realtime.Hub, tn store.Tenant, profileID string) (<-chan State, error) {
	if profileID == "" || len(profileID) > 128 {
		return nil, apperr.Invalid("profileId", "must be a profile id")
	}
	p, err := profile.Resolve(ctx, tn, profileID, s.identity.Redirect)
	if err != nil {
		return nil, fmt.Errorf("profile to stream: %w", err)
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), realtime.Follow(p.ID, realtime.ConsentChanged), "")
	return realtime.Pump(ctx, changes, cancel, nil, false, func(c realtime.Change) []State {
		cur, err := profile.Resolve(ctx, tn, c.ProfileID, s.identity.Redirect)
		if err != nil {
			// An erased profile is simply gone; anything else is worth a
			// look, but must not end the stream.
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "consentChanged: read profile", "profile", c.ProfileID, "err", err)
			}
			return nil
		}
		st, ok, err := s.State(ctx, tn, cur, c.String(realtime.PayloadPurpose), c.String(realtime.PayloadChannel))
		if err != nil {
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "consentChanged: read state", "profile", cur.ID, "err", err)
			}
			return nil
		}
		if !ok {
			return nil // no live record (expired already): no state to show
		}
		return []State{st}
	}), nil
}
