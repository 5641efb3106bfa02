package identity

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// StreamProfile streams profile id from hub after each of its changes,
// as the profile is when the value is read. id may be merged away
// already, and may be merged away later: the stream follows it to the
// survivor either way, since merges are resolved here. Changes that queue
// up while the reader is busy are coalesced to the newest: a snapshot
// makes the ones before it moot. A bad id is BAD_USER_INPUT on field
// "id"; the stream ends with ctx.
func (r *Resolver) StreamProfile(ctx context.Context, hub *realtime.Hub, tn store.Tenant, id string) (<-chan *profile.Profile, error) {
	if id == "" || len(id) > 128 {
		return nil, apperr.Invalid("id", "must be a profile id")
	}
	p, err := profile.Resolve(ctx, tn, id, r.Redirect)
	if err != nil {
		return nil, fmt.Errorf("profile to stream: %w", err)
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), realtime.Follow(p.ID, realtime.ProfileUpdated), "")
	return realtime.Pump(ctx, changes, cancel, nil, true, func(c realtime.Change) []*profile.Profile {
		id := c.ProfileID
		if to := c.String(realtime.PayloadMergedInto); to != "" {
			id = to
		}
		p, err := profile.Resolve(ctx, tn, id, r.Redirect)
		if err != nil {
			// An erased profile is simply gone; anything else is worth a
			// look, but must not end the stream.
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "profileUpdated: read profile", "profile", id, "err", err)
			}
			return nil
		}
		return []*profile.Profile{p}
	}), nil
}
