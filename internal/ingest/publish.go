package ingest

import (
	"context"
	"log/slog"
	"slices"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// publish is steps 7 and 8: the membership moves the profiles' writes
// decided (written) are handed off (segment: history records, the members
// index, their notifications), and in the same outbox write go the
// changes identity resolution left to the call (resolved: profile.updated
// of the profiles whose traits or identifiers it wrote), timeline.appended
// for the new (not duplicate) items, one change per profile in input
// order, and profile.updated (payload computed: the keys) once per profile
// whose computed values or scores the call changed. Engagement alone does
// not count: it moves with every event, which timeline.appended already
// announces (and, like churn risk, with time).
func (p *Pipeline) publish(ctx context.Context, tn store.Tenant, cause string, written []*profile.Profile, resolved []realtime.Change, results []timeline.TrackResult, c computedChanges) {
	var cs []realtime.Change
	if p.changes != nil {
		cs = slices.Concat(resolved, timeline.Appended(results))
		for _, pid := range c.order {
			if keys := c.by[pid]; !slices.Equal(keys, []string{scores.KeyEngagement}) {
				cs = append(cs, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: pid, Payload: map[string]any{"computed": keys}})
			}
		}
	}
	// The events are stored and counted whatever happens here: a failed
	// hand-off stays pending on the profiles, for the sweeper to finish.
	if err := p.segments.HandOff(context.WithoutCancel(ctx), tn, written, cs...); err != nil {
		slog.ErrorContext(ctx, "segments: hand off memberships", "profiles", len(written), "cause", cause, "err", err)
	}
}
