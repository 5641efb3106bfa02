package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// updateProfiles is step 6: it adds newly stored events to their
// profiles, one compare-and-swap per profile that updates, together, the
// item counters (timeline), the segment features, the computed traits and
// score tally (traits) and, from all of that, the profile's segment
// memberships (segment). It returns the profiles written, by the id they
// were asked for and in order (their membership moves for step 7 to hand
// off), and the computed values changed. If a profile was merged away
// between resolution and now, its events follow it to the survivor.
// seeds are the profiles as read before the events were stored; broad,
// those whose every segment may have changed besides the events (created,
// traits written). cause names the call in membership history.
func (p *Pipeline) updateProfiles(ctx context.Context, tn store.Tenant, cause string, events []*timeline.Event, seeds map[string]*profile.Profile, broad map[string]bool) (map[string]*profile.Profile, []*profile.Profile, computedChanges, error) {
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
		return out, nil, changes, nil
	}
	// One configuration for every profile of the call.
	features, err := p.segments.Features(ctx, tn)
	if err != nil {
		return nil, nil, changes, err
	}
	computed, err := p.traits.Counter(ctx, tn)
	if err != nil {
		return nil, nil, changes, err
	}
	decider, err := p.segments.Decider(ctx, tn, cause)
	if err != nil {
		return nil, nil, changes, err
	}
	now := p.now()
	// Profiles are independent: their compare-and-swaps run side by side,
	// so that the store commits them together (and, on MongoDB, their
	// round trips overlap). Not through store.Together: each holds its
	// profile's write lock (profile.Update) until its write lands.
	var seedMu sync.Mutex
	takeSeed := func(id string) *profile.Profile {
		seedMu.Lock()
		defer seedMu.Unlock()
		seed := seeds[id]
		delete(seeds, id) // a seed serves once
		return seed
	}
	written := make([]*profile.Profile, len(order))
	changed := make([][]string, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for i, pid := range order {
		g.Go(func() (err error) {
			written[i], changed[i], err = p.updateProfile(gctx, tn, pid, byProfile[pid], takeSeed, features, computed, decider, broad, now)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, changes, err
	}
	for i, pid := range order {
		out[pid] = written[i]
		changes.add(written[i].ID, changed[i])
	}
	return out, written, changes, nil
}

// parallelWrites bounds the profiles a call writes at once.
const parallelWrites = 32

// updateProfile is step 6 for the events evs of one profile (see
// updateProfiles); takeSeed hands out the profiles read beforehand.
func (p *Pipeline) updateProfile(ctx context.Context, tn store.Tenant, pid string, evs []*timeline.Event, takeSeed func(string) *profile.Profile, features []rule.Feature, computed traits.Counter, decider *segment.Decider, broad map[string]bool, now time.Time) (*profile.Profile, []string, error) {
	target := pid
	seenEpoch, seenRecount := int64(-1), int64(-1)
	seed := takeSeed(pid)
	if seed != nil {
		seenEpoch, seenRecount = seed.ComputedEpoch, seed.RecountEpoch
	}
	var (
		changed []string
		names   []string
		// staged: an order moved the person's lifecycle stage, from
		// stagedFrom, in the attempt that was written.
		staged     bool
		stagedFrom string
	)
	for _, ev := range evs {
		if !slices.Contains(names, ev.Name) {
			names = append(names, ev.Name)
		}
	}
	apply := func(pr *profile.Profile, settled bool) error {
		// A recount of the items since the profile was read (after a
		// crash, an unmerge) may have counted these already: then the
		// count is recounted, not added to. Only then: other writes
		// (merges' folds) keep items and their count apart for a while.
		if pr.RecountEpoch == 0 || seenRecount >= 0 && pr.RecountEpoch == seenRecount {
			timeline.Counted(pr, evs)
		} else if err := countItems(ctx, tn, pr, settled); err != nil {
			return err
		}
		// Likewise a write that counted features or computed state from
		// the stored events (a segment build, a backfill, a recount).
		fresh := pr.ComputedEpoch == 0 || seenEpoch >= 0 && pr.ComputedEpoch == seenEpoch
		switch {
		case len(features) == 0:
		case fresh:
			for _, ev := range evs {
				pr.CountEvent(features, ev.Name, ev.Properties, ev.OccurredAt)
			}
		default:
			if err := segment.Recount(ctx, tn, pr, features); err != nil {
				return err
			}
		}
		var err error
		if changed, err = computed.Count(ctx, tn, pr, evs, seenEpoch, now); err != nil {
			return err
		}
		// An order makes the person a customer (forward only).
		staged = slices.Contains(names, computed.OrderEvent()) && profile.Forward(pr.Lifecycle, profile.Customer)
		if staged {
			stagedFrom, pr.Lifecycle = pr.Lifecycle, profile.Customer
		}
		t := rule.Touched{All: broad[pid] || broad[pr.ID], EventNames: names, Seen: true, Computed: changed, Lifecycle: staged}
		_, err = decider.Decide(ctx, tn, pr, t)
		return err
	}
	// Merged away (or being merged) between resolution and now: the
	// events follow the profile to the survivor, where nothing was read
	// of it beforehand.
	pr, err := p.writeFollowing(ctx, tn, target, seed, apply, func(next string) (*profile.Profile, error) {
		seenEpoch, seenRecount = -1, -1
		if next == target {
			return nil, nil // its merge was seen through (and may have been refused)
		}
		target = next
		return takeSeed(target), timeline.Reassign(ctx, tn, evs, target)
	})
	if err != nil {
		return nil, nil, err
	}
	if staged {
		if err := lifecycle.Recorded(ctx, tn, pr.ID, stagedFrom, profile.Customer, lifecycle.CauseOrder, "", now); err != nil {
			slog.ErrorContext(ctx, "ingest: record a lifecycle change", "profile", pr.ID, "err", err)
		}
	}
	return pr, changed, nil
}

// writeFollowing writes apply on profile id (starting from seed, when
// given), following it wherever merges take it: a merge still moving
// items into it is seen through first (settleMoving; apply's settled says
// the rounds of that are spent), a merge claiming it is finished
// (identity's Settle), and a retired profile is followed to its survivor.
// moved is told after each of the last two, with the profile to write
// next (id again after a Settle), and returns the seed to write from
// there. A profile erased (no survivor) ends in an error wrapping
// store.ErrNotFound.
func (p *Pipeline) writeFollowing(ctx context.Context, tn store.Tenant, id string, seed *profile.Profile, apply func(pr *profile.Profile, settled bool) error, moved func(next string) (*profile.Profile, error)) (*profile.Profile, error) {
	settles := 0
	fn := func(pr *profile.Profile) error { return apply(pr, settles >= maxSettles) }
	for hops := 0; ; hops++ {
		var (
			pr  *profile.Profile
			err error
		)
		if seed != nil {
			pr, err = profile.UpdateFrom(ctx, tn, seed, p.now(), fn)
		} else {
			pr, err = profile.Update(ctx, tn, id, p.now(), fn)
		}
		seed = nil
		if err == nil {
			return pr, nil
		}
		if moving, serr := p.settleMoving(ctx, tn, err); moving {
			if serr != nil {
				return nil, serr
			}
			settles++
			continue
		}
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, profile.ErrMerging) || hops > 8 {
			return nil, err
		}
		next := id
		if errors.Is(err, profile.ErrMerging) {
			// Being merged away: see the merge through (it may yet be
			// refused), then write where the profile ends up.
			if err := p.identity.Settle(ctx, tn, id); err != nil {
				return nil, err
			}
		} else {
			var rerr error
			next, rerr = p.identity.Redirect(ctx, tn, id)
			if errors.Is(rerr, store.ErrNotFound) {
				return nil, fmt.Errorf("profile %s vanished: %w", id, err)
			}
			if rerr != nil {
				return nil, fmt.Errorf("follow the merge of profile %s: %w", id, rerr)
			}
		}
		id = next
		var merr error
		if seed, merr = moved(next); merr != nil {
			return nil, merr
		}
	}
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

// maxSettles bounds how many times a recount waits for merges still
// moving items into the profile before it counts them as they lie.
const maxSettles = 3

// countItems recounts pr's items (timeline.Recounted) and moves its
// recountEpoch, so that a call whose items it counted and that counts
// them after it recounts in turn. While a merge into pr still moves its
// source's items it fails with a *movingError, for the caller to see the
// merges through (settleMoving) and try again; settled counts anyway.
func countItems(ctx context.Context, tn store.Tenant, pr *profile.Profile, settled bool) error {
	moving, err := timeline.Recounted(ctx, tn, pr, settled)
	if err != nil {
		return err
	}
	if len(moving) > 0 {
		return &movingError{sources: moving}
	}
	pr.RecountEpoch++
	return nil
}

// movingError names the merge sources whose items are still moving.
type movingError struct{ sources []string }

func (e *movingError) Error() string {
	return fmt.Sprintf("ingest: %d merges into the profile still move its items", len(e.sources))
}

// settleMoving sees through the merges a *movingError names; moving
// says whether err was one.
func (p *Pipeline) settleMoving(ctx context.Context, tn store.Tenant, err error) (moving bool, _ error) {
	var me *movingError
	if !errors.As(err, &me) {
		return false, nil
	}
	for _, id := range me.sources {
		if err := p.identity.Settle(ctx, tn, id); err != nil {
			return true, err
		}
	}
	return true, nil
}
