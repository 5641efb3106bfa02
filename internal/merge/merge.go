// Package merge is the coordinator of merges and unmerges: the one place
// that lists, in order, what every domain does when two profiles become
// one or one is split off again.
//
// A merge, the whole story (identity drives it, in
// identity.Resolver.finishMerge; every step is idempotent):
//
//  1. the merge is recorded and queued, then the source is claimed
//     (identity): from here on it is always finished, by this call, a
//     concurrent one or Recover at the next start; a merge that never
//     claimed its source is abandoned;
//  2. the source is folded into the target: traits, counters, uniques
//     (identity, profile);
//  3. the source's identities move to the target (identity);
//  4. its events and interactions move (timeline.MoveEvents), then its
//     consent records, the target's consent state rebuilt from them
//     (consent: Mover.MoveConsent), both inside a mark that keeps
//     active-profile figures true meanwhile (analytics: Moving, Moved) —
//     Coordinator.MoveProfileData;
//  5. the source is retired (identity), and 3-4 run once more for what
//     reached it meanwhile;
//  6. the record is done and dequeued, profile.updated published
//     (identity);
//  7. computed traits are recomputed from the moved events
//     (traits.AfterMerge), then segments re-evaluate both profiles
//     (segment) — Coordinator.AfterWrite.
//
// An unmerge restores the source and its identities (identity), gives
// back its events and consent (RestoreProfileData), reverts and recounts
// the survivor (identity, CountItems), then recomputes computed traits
// (traits.Recompute) and re-evaluates segments (AfterWrite).
//
// Why identity drives and calls this package, rather than this package
// calling identity's steps: merges start inside identity.Resolve (an
// identify or track whose identifiers belong to two profiles), in the
// middle of its read-decide-retry loop, and a claimed merge is finished
// by whoever meets it next (a concurrent resolve, an erasure, Recover at
// start). Lifting the claim and fold out of identity would mean lifting
// that whole loop. So identity keeps the crash-safe process and owns one
// small interface, identity.Followers, for the other domains' steps; the
// Coordinator is its only implementation, handed to identity.New. The
// API's mergeProfiles and unmergeProfiles, ingest's automatic merges and
// Recover all reach the other domains through it, in the order above.
package merge

import (
	"context"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Consent moves consent records with profiles (consent.Mover).
type Consent interface {
	MoveConsent(ctx context.Context, tn store.Tenant, sourceID, targetID string) error
	UnmoveConsent(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []identity.Identifier) error
}

// Traits recomputes computed traits from a profile's events once they
// moved (traits.Engine).
type Traits interface {
	AfterMerge(ctx context.Context, tn store.Tenant, profileIDs []string) error
	Recompute(ctx context.Context, tn store.Tenant, profileIDs []string) error
}

// Segments re-evaluates memberships after a write (segment.Engine).
type Segments interface {
	AfterWrite(ctx context.Context, tn store.Tenant, profileIDs []string, cause string, touched rule.Touched)
}

// Activity keeps active-profile figures true while events move
// (analytics.Service): it marks the two profiles before, and settles the
// mark after.
type Activity interface {
	Moving(ctx context.Context, tn store.Tenant, profileIDs ...string) (string, error)
	Moved(ctx context.Context, tn store.Tenant, mark string) error
}

// Deps are the domains the coordinator calls; any may be left out
// (timeline's steps are package functions, always called).
type Deps struct {
	Consent  Consent
	Traits   Traits
	Segments Segments
	Activity Activity
}

// Coordinator calls each domain's step of a merge or unmerge in order
// (the package doc). It implements identity.Followers.
type Coordinator struct {
	consent  Consent
	traits   Traits
	segments Segments
	activity Activity
}

var _ identity.Followers = (*Coordinator)(nil)

// New builds the coordinator.
func New(d Deps) *Coordinator {
	return &Coordinator{consent: d.Consent, traits: d.Traits, segments: d.Segments, activity: d.Activity}
}

// MoveProfileData is step 4 of a merge: events and interactions, account
// links, tasks, tickets, then consent, from source to target. Idempotent.
// (Tasks and tickets keep the profile they were made for, so an unmerge
// gives them back.)
func (c *Coordinator) MoveProfileData(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	accounts, err := account.LinkedAccountIDs(ctx, tn, sourceID)
	if err != nil {
		return err
	}
	err = c.moving(ctx, tn, []string{sourceID, targetID}, func() error {
		if err := timeline.MoveEvents(ctx, tn, sourceID, targetID); err != nil {
			return err
		}
		if err := account.MoveLinks(ctx, tn, sourceID, targetID); err != nil {
			return err
		}
		if err := task.MoveProfile(ctx, tn, sourceID, targetID); err != nil {
			return err
		}
		if err := ticket.MoveProfile(ctx, tn, sourceID, targetID); err != nil {
			return err
		}
		if c.consent != nil {
			return c.consent.MoveConsent(ctx, tn, sourceID, targetID)
		}
		return nil
	})
	if err == nil {
		c.redecideAccounts(ctx, tn, "merge", accounts)
	}
	return err
}

// redecideAccounts re-decides the contacts of accounts whose contact
// counts a move changed (account rule nodes), when the segment engine
// can (account.Segments). A crash before it leaves them to the
// accounts' next change.
func (c *Coordinator) redecideAccounts(ctx context.Context, tn store.Tenant, cause string, accounts []string) {
	if s, ok := c.segments.(account.Segments); ok && len(accounts) > 0 {
		account.Redecide(ctx, tn, s, cause, nil, accounts...)
	}
}

// moving runs move between the activity's mark on the profiles and its
// settling. A move that fails leaves the mark unsettled: the profiles'
// figures keep coming from their events until the merge is resumed.
func (c *Coordinator) moving(ctx context.Context, tn store.Tenant, profileIDs []string, move func() error) error {
	if c.activity == nil {
		return move()
	}
	mark, err := c.activity.Moving(ctx, tn, profileIDs...)
	if err != nil {
		return err
	}
	if err := move(); err != nil {
		return err
	}
	return c.activity.Moved(ctx, tn, mark)
}

// RestoreProfileData is the unmerge's counterpart: the items, account
// links and consent records the merge brought from the restored profile
// go back to it.
func (c *Coordinator) RestoreProfileData(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []identity.Identifier) error {
	accounts, err := account.LinkedAccountIDs(ctx, tn, fromID)
	if err != nil {
		return err
	}
	err = c.moving(ctx, tn, []string{fromID, toID}, func() error {
		if err := timeline.UnmoveEvents(ctx, tn, fromID, toID, origins, since, restored); err != nil {
			return err
		}
		if err := account.RestoreLinks(ctx, tn, fromID, toID, origins); err != nil {
			return err
		}
		if err := task.RestoreProfile(ctx, tn, fromID, toID, origins); err != nil {
			return err
		}
		if err := ticket.RestoreProfile(ctx, tn, fromID, toID, origins); err != nil {
			return err
		}
		if c.consent != nil {
			return c.consent.UnmoveConsent(ctx, tn, fromID, toID, origins, since, restored)
		}
		return nil
	})
	if err == nil {
		c.redecideAccounts(ctx, tn, "unmerge", accounts)
	}
	return err
}

// CountItems counts a profile's timeline items, for its counters after an
// unmerge.
func (c *Coordinator) CountItems(ctx context.Context, tn store.Tenant, profileID string) (int64, time.Time, time.Time, error) {
	return timeline.CountEvents(ctx, tn, profileID)
}

// AfterWrite is step 7: after a merge or an unmerge moved events,
// computed traits are recomputed from them, then segments re-evaluate
// the profiles; after an identify, segments only. It does not fail the
// write.
func (c *Coordinator) AfterWrite(ctx context.Context, tn store.Tenant, profileIDs []string, cause string, touched rule.Touched) {
	if c.traits != nil {
		var err error
		switch cause {
		case "merge":
			err = c.traits.AfterMerge(ctx, tn, profileIDs)
		case "unmerge":
			err = c.traits.Recompute(ctx, tn, profileIDs)
		}
		if err != nil {
			slog.ErrorContext(ctx, "computed traits: recompute", "profiles", profileIDs, "cause", cause, "err", err)
		}
	}
	if c.segments != nil {
		c.segments.AfterWrite(ctx, tn, profileIDs, cause, touched)
	}
}
