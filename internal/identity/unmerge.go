package identity

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Unmerged is an unmerge as callers show it: its record, and the
// restored and surviving profiles as they are live now (following any
// later merge).
type Unmerged struct {
	Record   Record
	Restored *profile.Profile
	Survivor *profile.Profile
}

// UnmergeProfiles is Unmerge, then loads the live restored and surviving
// profiles (mutation unmergeProfile).
func (r *Resolver) UnmergeProfiles(ctx context.Context, tn store.Tenant, mergeID, actor string) (Unmerged, error) {
	rec, err := r.Unmerge(ctx, tn, mergeID, actor)
	if err != nil {
		return Unmerged{}, err
	}
	restored, err := profile.Resolve(ctx, tn, rec.SourceID, r.Redirect)
	if err != nil {
		return Unmerged{}, err
	}
	survivor, err := profile.Resolve(ctx, tn, rec.TargetID, r.Redirect)
	if err != nil {
		return Unmerged{}, err
	}
	return Unmerged{Record: rec, Restored: restored, Survivor: survivor}, nil
}

// Unmerge reverses a recorded merge: the merged-away profile comes back
// with the identifiers, items and traits it brought; what reached the
// survivor after the merge stays there unless it carries one of the
// restored identifiers. The unmerge is recorded too. Repeating it returns
// the same unmerge record.
func (r *Resolver) Unmerge(ctx context.Context, tn store.Tenant, mergeID, actor string) (Record, error) {
	var m Record
	if err := tn.C(Merges).Get(ctx, mergeID, &m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Record{}, apperr.New(apperr.NotFound, "merge %s not found", mergeID)
		}
		return Record{}, fmt.Errorf("load merge %s: %w", mergeID, err)
	}
	if m.Kind != KindMerge {
		return Record{}, apperr.Invalid("mergeId", "%s is a %s record, not a merge", mergeID, m.Kind)
	}
	if m.Status != statusDone && m.Status != statusUndone {
		return Record{}, apperr.New(apperr.Conflict, "merge %s is %s, not finished: nothing to undo", mergeID, m.Status)
	}
	u := Record{
		ID: "unmerge-" + mergeID, Kind: KindUnmerge, Status: statusRunning, MergeOf: mergeID,
		SourceID: m.SourceID, TargetID: m.TargetID, At: r.clock().UTC().Truncate(time.Millisecond),
		Reason: "unmerge", Actor: actor, Moved: []Identifier{}, Traits: []TraitOutcome{}, Conflicts: []Conflict{}, Origins: []string{},
	}
	if err := r.enqueue(ctx, tn, u.ID, u.At); err != nil {
		return Record{}, err
	}
	if err := tn.C(Merges).Insert(ctx, u); errors.Is(err, store.ErrDuplicateKey) {
		if err := tn.C(Merges).Get(ctx, u.ID, &u); err != nil {
			return Record{}, fmt.Errorf("load unmerge %s: %w", u.ID, err)
		}
	} else if err != nil {
		return Record{}, fmt.Errorf("record unmerge of %s: %w", mergeID, err)
	}
	if u.Status == statusRunning {
		if err := r.finishUnmerge(ctx, tn, u); err != nil {
			return Record{}, err
		}
		if err := tn.C(Merges).Get(ctx, u.ID, &u); err != nil {
			return Record{}, fmt.Errorf("load unmerge %s: %w", u.ID, err)
		}
	} else {
		r.dequeue(ctx, tn, u.ID)
	}
	return u, nil
}

func (r *Resolver) finishUnmerge(ctx context.Context, tn store.Tenant, u Record) error {
	var m Record
	if err := tn.C(Merges).Get(ctx, u.MergeOf, &m); err != nil {
		return fmt.Errorf("load merge %s: %w", u.MergeOf, err)
	}
	if m.Source == nil {
		return fmt.Errorf("merge %s kept no source snapshot", m.ID)
	}
	// The survivor may have been merged on since: undo from wherever the
	// data lives now.
	holder := m.TargetID
	for hops := 0; hops < 16; hops++ {
		next, err := r.Redirect(ctx, tn, holder)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		holder = next
	}
	now := r.clock().UTC().Truncate(time.Millisecond)

	// 1. The restored profile, as it was when merged.
	restored := *m.Source
	restored.MergingInto, restored.MergeID, restored.Version = "", "", 0
	// Its memberships ended with the merge (recorded as exits): it enters
	// again through the evaluation after the unmerge, recorded as entries,
	// so that every segment's history adds up to its members.
	restored.Segments, restored.Moves, restored.MovesNext, restored.Built = []string{}, nil, time.Time{}, nil
	restored.UpdatedAt = now
	// Both sides are re-decided after the unmerge; due, so that a crash
	// before then leaves it to the sweeper.
	restored.MarkDue(now)
	if err := profile.Create(ctx, tn, &restored); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
		return fmt.Errorf("restore profile %s: %w", restored.ID, err)
	}
	// 2. Its identifiers, then what the other domains keep.
	if _, err := moveIdentities(ctx, tn, holder, m.SourceID, m.Moved); err != nil {
		return err
	}
	if r.followers != nil {
		if err := r.followers.RestoreProfileData(ctx, tn, holder, m.SourceID, m.Origins, m.At, m.Moved); err != nil {
			return fmt.Errorf("unmerge %s: %w", m.ID, err)
		}
	}
	// 3. The survivor gives back what the merge changed, unless it was
	// changed again since.
	if _, err := profile.UpdateAny(ctx, tn, holder, now, func(p *profile.Profile) error {
		// MergedFrom still naming the source means this step has not run
		// yet (a resumed unmerge must not count twice).
		if slices.Contains(p.MergedFrom, m.SourceID) && p.MergeCount > 0 {
			p.MergeCount--
		}
		p.MergedFrom = slices.DeleteFunc(p.MergedFrom, func(id string) bool { return slices.Contains(m.Origins, id) })
		// The lifecycle stage the source brought goes with it, unless it
		// changed since.
		// Only on the merge's own target: a later merge may have folded
		// stages since, and going back there would move it backwards.
		if m.StageWon != "" && p.Lifecycle == m.StageWon && p.ID == m.TargetID {
			p.Lifecycle = m.StageWas
		}
		for _, o := range m.Traits {
			if o.Winner != "source" || !reflect.DeepEqual(p.Traits[o.Key], o.Won) {
				continue
			}
			if o.LostPresent {
				p.Traits[o.Key], p.TraitsAt[o.Key] = o.Lost, o.LostAt
			} else {
				delete(p.Traits, o.Key)
				delete(p.TraitsAt, o.Key)
			}
		}
		for typ, v := range m.Source.Uniques {
			if p.Uniques[typ] == v {
				delete(p.Uniques, typ)
			}
		}
		p.MarkDue(now)
		return nil
	}); err != nil {
		return fmt.Errorf("revert survivor %s: %w", holder, err)
	}
	// 4. Counters follow the items: recount both sides.
	for _, id := range []string{holder, m.SourceID} {
		if err := r.Recount(ctx, tn, id); err != nil {
			return err
		}
		if p, err := profile.Get(ctx, tn, id); err == nil {
			if err := r.syncTerms(ctx, tn, p); err != nil {
				return err
			}
		}
	}
	m.Status, m.UndoneAt = statusUndone, &now
	if err := r.saveRecord(ctx, tn, &m); err != nil {
		return err
	}
	u.Status, u.Moved, u.TargetID = statusDone, m.Moved, holder
	if err := r.saveRecord(ctx, tn, &u); err != nil {
		return err
	}
	r.dequeue(ctx, tn, u.ID)
	for _, id := range []string{holder, m.SourceID} {
		r.updated(ctx, tn, id, map[string]any{realtime.PayloadCause: "unmerge"})
	}
	r.afterWrite(ctx, tn, "unmerge", rule.Touched{All: true}, holder, m.SourceID)
	return nil
}

// Recount recomputes a profile's item counters from its items.
func (r *Resolver) Recount(ctx context.Context, tn store.Tenant, profileID string) error {
	if r.followers == nil {
		return nil
	}
	_, err := profile.UpdateAny(ctx, tn, profileID, r.clock(), func(p *profile.Profile) error {
		// Counted inside the compare-and-swap: an ingest write landing
		// between a count and this write would be overwritten.
		n, first, last, err := r.followers.CountItems(ctx, tn, profileID)
		if err != nil {
			return err
		}
		p.EventCount = n
		if n > 0 {
			p.FirstSeenAt, p.LastSeenAt = first.UTC(), last.UTC()
		}
		// An ingest write whose events this count included, counting
		// them after it, recounts instead of adding (package ingest).
		p.RecountEpoch++
		return nil
	})
	if err != nil {
		return fmt.Errorf("recount %s: %w", profileID, err)
	}
	return nil
}
