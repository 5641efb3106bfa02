package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Recover recounts what write calls interrupted by a crash, here or on
// another instance, or failed after storing their events, may have left
// uncounted (the windows of the journal, internal/ingest/journal): every
// profile with an item stored in a window is recounted from its stored
// items (Recount). It returns how many profiles it recounted. The server
// runs it at start and then with each journal beat.
func (p *Pipeline) Recover(ctx context.Context, st *store.Store) (int, error) {
	if p.journal == nil {
		return 0, nil
	}
	sys := st.Tenant(store.SystemWorkspace)
	windows, err := p.journal.Interrupted(ctx, sys)
	if err != nil {
		return 0, err
	}
	// A window that fails stays for the next round; the others go on.
	total := 0
	var errs []error
	for _, w := range windows {
		tn := st.Tenant(w.Workspace)
		ids, err := timeline.ProfilesStored(ctx, tn, w.From, w.To)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := p.Recount(ctx, tn, ids, "recovery")
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", w.Workspace, err))
			continue
		}
		slog.InfoContext(ctx, "ingest: recounted the profiles of interrupted calls",
			"workspace", w.Workspace, "from", w.From, "to", w.To, "profiles", n)
		if err := p.journal.Release(ctx, sys, w); err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// Recount sets what ingest maintains on each of the profiles (those
// merged away: the survivor) from its stored items, in one
// compare-and-swap per profile: the item count and activity span
// (timeline), the segment features (segment), the computed traits and
// score tally (traits), then its memberships, handed off after. The
// write moves the profile's recountEpoch and computedEpoch, so that a
// call whose items were stored before it and are counted after recounts
// too instead of adding them twice. Profiles erased since are skipped.
// It returns how many profiles it wrote.
func (p *Pipeline) Recount(ctx context.Context, tn store.Tenant, ids []string, cause string) (int, error) {
	live := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		pr, err := profile.Resolve(ctx, tn, id, p.identity.Redirect)
		if apperr.CodeOf(err) == apperr.NotFound {
			continue // erased since
		}
		if err != nil {
			return 0, fmt.Errorf("recount %s: %w", id, err)
		}
		if !seen[pr.ID] {
			seen[pr.ID] = true
			live = append(live, pr.ID)
		}
	}
	if len(live) == 0 {
		return 0, nil
	}
	features, err := p.segments.Features(ctx, tn)
	if err != nil {
		return 0, err
	}
	computed, err := p.traits.Counter(ctx, tn)
	if err != nil {
		return 0, err
	}
	decider, err := p.segments.Decider(ctx, tn, cause)
	if err != nil {
		return 0, err
	}
	now := p.now()
	apply := func(pr *profile.Profile, settled bool) error {
		if err := countItems(ctx, tn, pr, settled); err != nil {
			return err
		}
		if len(features) > 0 {
			if err := segment.Recount(ctx, tn, pr, features); err != nil {
				return err
			}
		}
		if err := computed.Recount(ctx, tn, pr, now); err != nil {
			return err
		}
		_, err := decider.Decide(ctx, tn, pr, rule.Touched{All: true})
		return err
	}
	written := make([]*profile.Profile, len(live))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for i, id := range live {
		g.Go(func() error {
			pr, err := p.recountOne(gctx, tn, id, apply)
			written[i] = pr
			return err
		})
	}
	err = g.Wait()
	written = slices.DeleteFunc(written, func(pr *profile.Profile) bool { return pr == nil })
	if herr := p.segments.HandOff(context.WithoutCancel(ctx), tn, written); herr != nil {
		slog.ErrorContext(ctx, "segments: hand off memberships", "profiles", len(written), "cause", cause, "err", herr)
	}
	return len(written), err
}

// recountOne writes apply on profile id, following it if it is merged
// away meanwhile (nil, nil: erased since).
func (p *Pipeline) recountOne(ctx context.Context, tn store.Tenant, id string, apply func(*profile.Profile, bool) error) (*profile.Profile, error) {
	pr, err := p.writeFollowing(ctx, tn, id, nil, apply, func(string) (*profile.Profile, error) { return nil, nil })
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // erased
	}
	if err != nil {
		return nil, fmt.Errorf("recount %s: %w", id, err)
	}
	return pr, nil
}

// Verify recomputes from p's stored items everything the write path
// maintains on p, and reports each difference (segment.Verify: item
// count, features, memberships, members index; traits.Verify: computed
// traits, score tally). It is the exactness check of the write-path
// tests and the scale harness; it reads, never writes.
func (p *Pipeline) Verify(ctx context.Context, tn store.Tenant, pr *profile.Profile, now time.Time) ([]profile.Mismatch, error) {
	out, err := p.segments.Verify(ctx, tn, pr, now)
	if err != nil {
		return nil, err
	}
	more, err := p.traits.Verify(ctx, tn, pr, now)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}
