package ingest

import (
	"context"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// LogInteraction records a CRM interaction on a profile's timeline: the
// track steps for one item on a known profile.
func (p *Pipeline) LogInteraction(ctx context.Context, tn store.Tenant, in timeline.InteractionInput) (*timeline.Event, error) {
	// Journaled as a track is (step 0).
	call, err := p.journal.Begin(ctx, tn)
	if err != nil {
		return nil, err
	}
	counted := true
	defer func() { call.End(counted) }()
	// Validated and, with a messageId, looked up (step 3): a replay by the
	// same profile is answered with the stored item.
	ev, pr, replay, err := p.timeline.NewInteraction(ctx, tn, in)
	if err != nil || replay != nil {
		return replay, err
	}
	// Step 5, unless this instance has stalled (journal.Call.Fresh).
	if err := call.Fresh(); err != nil {
		return nil, err
	}
	counted = false
	if replay, err := p.timeline.InsertInteraction(ctx, tn, ev, pr.ID); err != nil || replay != nil {
		counted = replay != nil // a replay stored nothing
		return replay, err
	}
	// Step 6: pr was read before the item was stored, so it seeds the
	// compare-and-swap as resolution's read does for track.
	_, written, computed, err := p.updateProfiles(ctx, tn, "logInteraction", []*timeline.Event{ev}, map[string]*profile.Profile{pr.ID: pr}, map[string]bool{pr.ID: true})
	if err != nil {
		return nil, err
	}
	counted = true
	// Steps 7 and 8.
	p.publish(ctx, tn, "logInteraction", written, nil, []timeline.TrackResult{{Event: ev}}, computed)
	return ev, nil
}
