package ingest

import (
	"context"
	"slices"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// publish is step 8: in one call (one outbox write), timeline.appended
// for the new (not duplicate) items, one change per profile in input
// order, and profile.updated (payload computed: the keys) once per profile
// whose computed values or scores the call changed. Engagement alone does
// not count: it moves with every event, which timeline.appended already
// announces (and, like churn risk, with time).
func (p *Pipeline) publish(ctx context.Context, tn store.Tenant, results []timeline.TrackResult, c computedChanges) {
	if p.changes == nil {
		return
	}
	cs := timeline.Appended(results)
	for _, pid := range c.order {
		if keys := c.by[pid]; !slices.Equal(keys, []string{scores.KeyEngagement}) {
			cs = append(cs, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: pid, Payload: map[string]any{"computed": keys}})
		}
	}
	realtime.Notify(ctx, p.changes, tn, cs...)
}
