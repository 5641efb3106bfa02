package segment

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Verify recomputes from p's stored items what ingest maintains
// incrementally on p's document, and reports each difference: the item
// count, the counter of every feature the active segments read, the
// dynamic memberships those decide (Profile.segments) and the members
// index. It is the exactness check of the scale harness and of the
// write-path tests; it reads, never writes.
//
// Segments whose gated build is under way are left out (their build
// decides members and counts features profile by profile; an ungated
// build's segment is checked, so run this after builds end), and so are memberships when p's
// re-evaluation is due (nextEvalAt at or before now: a time window
// flipped and the sweeper has not run) or when moves wait on the document
// for their hand-off (the sweeper finishes one a crash interrupted). Run it
// on a store at rest: a hand-off under way shows as a members index
// difference.
func (e *Engine) Verify(ctx context.Context, tn store.Tenant, p *profile.Profile, now time.Time) ([]profile.Mismatch, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	// The features of a segment still building are counted by its build,
	// profile by profile: compare only those of the others.
	feats := a.features
	if len(a.building) > 0 {
		feats = nil
		for _, s := range a.segs {
			if _, building := a.building[s.ID]; building {
				continue
			}
			for _, f := range s.Features {
				if !slices.ContainsFunc(feats, func(g rule.Feature) bool { return g.Key == f.Key }) {
					feats = append(feats, f)
				}
			}
		}
	}
	var out []profile.Mismatch
	differ := func(what string, stored, computed any) {
		out = append(out, profile.Mismatch{ProfileID: p.ID, What: what, Stored: fmt.Sprint(stored), Computed: fmt.Sprint(computed)})
	}
	var items int64
	counters := map[string]rule.Counter{}
	if err := timeline.EventsOf(ctx, tn, p.ID, func(ev *timeline.Event) error {
		items++
		countInto(counters, feats, ev)
		return nil
	}); err != nil {
		return nil, err
	}
	if items != p.EventCount {
		differ("eventCount", p.EventCount, items)
	}
	for _, f := range feats {
		if s, c := p.Features[f.Key], counters[f.Key]; !sameCounter(s, c) {
			differ("feature "+f.Key, s, c)
		}
	}
	if !p.NextEvalAt.After(now) || len(p.Moves) > 0 {
		// Due for the sweeper, or a hand-off to finish (a crash between
		// a write and its hand-off): what is stored is not final yet.
		return out, nil
	}
	env, err := e.newEvalEnv(ctx, tn, true, true)
	if err != nil {
		return nil, err
	}
	stored := map[string]bool{}
	for _, id := range p.Segments {
		stored[id] = true
	}
	recounted := *p
	recounted.Features = counters
	recounted.EventCount = items
	f, err := factsOf(ctx, tn, a, a.segs, p)
	if err != nil {
		return nil, err
	}
	match, _ := evaluate(&recounted, a.segs, a.byID, stored, f, env, now)
	members, err := e.ProfileSegments(ctx, tn, p.ID)
	if err != nil {
		return nil, err
	}
	indexed := map[string]bool{}
	for _, m := range members {
		indexed[m.SegmentID] = true
	}
	for _, s := range a.segs {
		if s.Kind != Dynamic {
			continue
		}
		if _, building := a.building[s.ID]; building {
			continue
		}
		if stored[s.ID] != match[s.ID] {
			differ("member of "+s.ID, stored[s.ID], match[s.ID])
		}
		if indexed[s.ID] != stored[s.ID] {
			differ("members index of "+s.ID, indexed[s.ID], stored[s.ID])
		}
	}
	return out, nil
}

// sameCounter: counters are a function of the occurrences they counted
// (retention follows the latest one, not the clock), so a recount equals
// the maintained counter exactly.
func sameCounter(a, b rule.Counter) bool {
	return a.Total == b.Total && a.First.Equal(b.First) && a.Last.Equal(b.Last) &&
		slices.Equal(a.Days, b.Days) && slices.Equal(a.Minutes, b.Minutes)
}
