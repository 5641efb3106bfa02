// Package lifecycle holds people's lifecycle stages (SUBSCRIBER to
// EVANGELIST, CHURNED, OTHER): set by hand, moved forward automatically
// by deals and orders (never backwards), each change kept in a history.
// The stage itself lives on the profile document (profile.Lifecycle), so
// segment rules read it with the rest of the profile; this package writes
// it and owns the history.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// The collection package lifecycle owns.
const (
	LifecycleChanges   = "lifecycle_changes"
	ChangesByProfileAt = "by_profile_at" // (profileId, at)
)

// Collections declares it and its index.
var Collections = []store.CollectionSpec{
	{Name: LifecycleChanges, Indexes: []store.Index{
		{Name: ChangesByProfileAt, Fields: []string{"profileId", "at"}},
	}},
}

// Causes of a change.
const (
	CauseManual     = "manual"
	CauseDealOpened = "deal.opened"
	CauseDealWon    = "deal.won"
	CauseOrder      = "order"
)

// Change is one move of a person's stage.
type Change struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	ProfileID   string    `bson:"profileId"`
	From        string    `bson:"from,omitempty"`
	To          string    `bson:"to"`
	Cause       string    `bson:"cause"`
	Actor       string    `bson:"actor,omitempty"`
	At          time.Time `bson:"at"`
}

// Segments is what the service needs of the segment engine: the
// segments reading the stage are re-decided after a change.
type Segments interface {
	AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched)
}

// Deps are what the service needs from outside the package.
type Deps struct {
	Now      func() time.Time
	Segments Segments
	// Changes is told of every change (profile.updated, cause
	// "lifecycle").
	Changes realtime.Publisher
}

// Service moves lifecycle stages (New).
type Service struct {
	now      func() time.Time
	segments Segments
	changes  realtime.Publisher
}

// New builds the service.
func New(d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{now: now, segments: d.Segments, changes: d.Changes}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Set puts the person of profileID at stage, forward or back (a hand
// edit; errors name setLifecycleStage's arguments).
func (s *Service) Set(ctx context.Context, tn store.Tenant, profileID, stage, actor string) (*profile.Profile, error) {
	if !profile.IsLifecycleStage(stage) {
		return nil, apperr.Invalid("stage", "unknown lifecycle stage %q: one of %s", stage, strings.Join(profile.LifecycleStages, ", "))
	}
	p, _, err := s.move(ctx, tn, profileID, stage, CauseManual, actor, func(cur string) bool { return cur != stage })
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, apperr.New(apperr.NotFound, "profileId: %s", err.Error())
	}
	return p, err
}

// Advance moves each of profileIDs forward to stage, leaving those at it
// or further (or gone meanwhile) where they are. It returns the profiles
// it moved.
func (s *Service) Advance(ctx context.Context, tn store.Tenant, profileIDs []string, stage, cause, actor string) ([]string, error) {
	var (
		moved []string
		errs  []error
	)
	// One person's failure leaves the others moved.
	for _, id := range profileIDs {
		p, changed, err := s.move(ctx, tn, id, stage, cause, actor, func(cur string) bool { return profile.Forward(cur, stage) })
		if apperr.CodeOf(err) == apperr.NotFound || errors.Is(err, store.ErrNotFound) {
			continue // erased meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			moved = append(moved, p.ID)
		}
	}
	return moved, errors.Join(errs...)
}

// move writes stage on the person of id when want(current) holds,
// following merges, then records the change, re-decides the segments
// that read the stage and tells subscribers.
func (s *Service) move(ctx context.Context, tn store.Tenant, id, stage, cause, actor string, want func(cur string) bool) (*profile.Profile, bool, error) {
	var (
		p    *profile.Profile
		from string
		hit  bool
	)
	for hops := 0; ; hops++ {
		live, err := profile.Resolve(ctx, tn, id, identity.Redirect)
		if err != nil {
			return nil, false, err
		}
		p, err = profile.Update(ctx, tn, live.ID, s.clock(), func(pr *profile.Profile) error {
			from, hit = pr.Lifecycle, want(pr.Lifecycle)
			if !hit {
				return errUnchanged
			}
			pr.Lifecycle = stage
			return nil
		})
		if errors.Is(err, errUnchanged) {
			cur, gerr := profile.Get(ctx, tn, live.ID)
			return cur, false, gerr
		}
		if err == nil {
			break
		}
		if !errors.Is(err, profile.ErrMerging) || hops > 16 {
			return nil, false, fmt.Errorf("set the lifecycle stage of %s: %w", id, err)
		}
		id = live.ID // being merged away: follow it to the survivor
	}
	if err := Recorded(ctx, tn, p.ID, from, stage, cause, actor, s.clock()); err != nil {
		return nil, false, err
	}
	if s.segments != nil {
		s.segments.AfterProfiles(context.WithoutCancel(ctx), tn, []*profile.Profile{p}, "lifecycle", rule.Touched{Lifecycle: true})
	}
	realtime.Notify(ctx, s.changes, tn, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: p.ID,
		Payload: map[string]any{realtime.PayloadCause: "lifecycle", "lifecycleStage": stage}})
	return p, true, nil
}

var errUnchanged = errors.New("lifecycle stage unchanged")

// Recorded adds a change to the history, once the stage is on the
// profile (the write path records an order's that way). A person erased
// meanwhile keeps no history: the entry is taken back.
func Recorded(ctx context.Context, tn store.Tenant, profileID, from, to, cause, actor string, at time.Time) error {
	c := &Change{ID: store.NewID(), ProfileID: profileID, From: from, To: to, Cause: cause, Actor: actor, At: at}
	if err := tn.C(LifecycleChanges).Insert(ctx, c); err != nil {
		return fmt.Errorf("record the lifecycle change of %s: %w", profileID, err)
	}
	// An erasure's passes may all have run before the insert landed (a
	// merged-away id still leads to its survivor, and keeps its history).
	if _, err := profile.Resolve(ctx, tn, profileID, identity.Redirect); apperr.CodeOf(err) == apperr.NotFound || errors.Is(err, store.ErrNotFound) {
		if err := tn.C(LifecycleChanges).Delete(ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("take back the lifecycle change of an erased person: %w", err)
		}
	} else if err != nil {
		return err
	}
	return nil
}

// MaxHistory caps History.
const MaxHistory = 200

// History lists the changes of the person of profileIDs (a person and the
// profiles merged into them), oldest first, at most MaxHistory.
func History(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]Change, error) {
	var out []Change
	for _, id := range profileIDs {
		docs, err := tn.C(LifecycleChanges).Find(ctx, store.Query{Index: ChangesByProfileAt, Eq: []any{id}, Limit: MaxHistory})
		if err != nil {
			return nil, fmt.Errorf("lifecycle history of %s: %w", id, err)
		}
		for _, d := range docs {
			var c Change
			if err := d.Decode(&c); err != nil {
				return nil, fmt.Errorf("decode lifecycle change: %w", err)
			}
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b Change) int { return a.At.Compare(b.At) })
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	return out, nil
}

// EraseProfile deletes the history of profileID (an erasure; the stage
// goes with the profile document).
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	if _, err := tn.C(LifecycleChanges).DeleteMany(ctx, store.Query{Index: ChangesByProfileAt, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase the lifecycle history of %s: %w", profileID, err)
	}
	return nil
}
