package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// updateProfiles is step 6: it adds newly stored events to their
// profiles, one compare-and-swap per profile that updates, together, the
// item counters (timeline), the segment features (segment) and the
// computed traits and score tally (traits). If a profile was merged away
// between resolution and now, its events follow it to the survivor.
// seeds are the profiles as read before the events were stored.
func (p *Pipeline) updateProfiles(ctx context.Context, tn store.Tenant, events []*timeline.Event, seeds map[string]*profile.Profile) (map[string]*profile.Profile, computedChanges, error) {
	var changes computedChanges
	byProfile := map[string][]*timeline.Event{}
	var order []string
	for _, ev := range events {
		if _, ok := byProfile[ev.ProfileID]; !ok {
			order = append(order, ev.ProfileID)
		}
		byProfile[ev.ProfileID] = append(byProfile[ev.ProfileID], ev)
	}
	out := map[string]*profile.Profile{}
	if len(events) == 0 {
		return out, changes, nil
	}
	// One configuration for every profile of the call.
	features, err := p.segments.Features(ctx, tn)
	if err != nil {
		return nil, changes, err
	}
	computed, err := p.traits.Counter(ctx, tn)
	if err != nil {
		return nil, changes, err
	}
	now := p.now()
	for _, pid := range order {
		evs := byProfile[pid]
		target := pid
		seenEpoch := int64(-1)
		if seed := seeds[pid]; seed != nil {
			seenEpoch = seed.ComputedEpoch
		}
		var changed []string
		apply := func(pr *profile.Profile) error {
			timeline.Counted(pr, evs)
			if len(features) > 0 {
				for _, ev := range evs {
					pr.CountEvent(features, ev.Name, ev.Properties, ev.OccurredAt)
				}
			}
			var err error
			changed, err = computed.Count(ctx, tn, pr, evs, seenEpoch, now)
			return err
		}
		for hops := 0; ; hops++ {
			var (
				pr  *profile.Profile
				err error
			)
			if seed := seeds[target]; seed != nil {
				delete(seeds, target) // a seed serves once
				pr, err = profile.UpdateFrom(ctx, tn, seed, p.now(), apply)
			} else {
				pr, err = profile.Update(ctx, tn, target, p.now(), apply)
			}
			if err == nil {
				out[pid] = pr
				changes.add(pr.ID, changed)
				break
			}
			// Merged away (or being merged) between resolution and now:
			// the events follow the profile to the survivor.
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, profile.ErrMerging) || hops > 8 {
				return nil, changes, err
			}
			seenEpoch = -1 // another profile: nothing read of it beforehand
			if errors.Is(err, profile.ErrMerging) {
				// Being merged away: see the merge through (it may yet be
				// refused), then count where the events end up.
				if err := p.identity.Settle(ctx, tn, target); err != nil {
					return nil, changes, err
				}
				continue
			}
			next, rerr := p.identity.Redirect(ctx, tn, target)
			if rerr != nil {
				return nil, changes, fmt.Errorf("profile %s vanished: %w", target, err)
			}
			target = next
			if err := timeline.Reassign(ctx, tn, evs, target); err != nil {
				return nil, changes, err
			}
		}
	}
	return out, changes, nil
}

// computedChanges are the computed trait keys whose value a call changed,
// by profile (in order).
type computedChanges struct {
	order []string
	by    map[string][]string
}

func (c *computedChanges) add(profileID string, keys []string) {
	if len(keys) == 0 {
		return
	}
	if c.by == nil {
		c.by = map[string][]string{}
	}
	if _, ok := c.by[profileID]; !ok {
		c.order = append(c.order, profileID)
	}
	for _, k := range keys {
		if !slices.Contains(c.by[profileID], k) {
			c.by[profileID] = append(c.by[profileID], k)
		}
	}
}

// keys is the union of the changed keys, sorted.
func (c *computedChanges) keys() []string {
	var out []string
	for _, ks := range c.by {
		for _, k := range ks {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
