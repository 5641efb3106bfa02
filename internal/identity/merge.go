package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// MaxMergesInto caps how many merges one profile may absorb: a profile
// that keeps absorbing others is almost always a shared identifier
// (a family tablet, a test account) gluing strangers together.
const MaxMergesInto = 100

// Record kinds and statuses.
const (
	KindMerge    = "MERGE"
	KindUnmerge  = "UNMERGE"
	KindConflict = "CONFLICT"

	statusRunning   = "running"
	statusDone      = "done"
	statusAbandoned = "abandoned" // never claimed its source: no effect
	statusRefused   = "refused"   // found a conflict before moving anything
	statusUndone    = "undone"    // a merge reversed by an unmerge
)

// Conflict reports identifiers that would have put two values of a unique
// type on one profile, so the profiles were not merged.
type Conflict struct {
	Type       string   `bson:"type"`
	Values     []string `bson:"values"`
	ProfileIDs []string `bson:"profileIds"`
}

// TraitOutcome is how one trait key was decided by a merge.
type TraitOutcome struct {
	Key         string    `bson:"key"`
	Winner      string    `bson:"winner"` // "source" or "target"
	Won         any       `bson:"won"`
	Lost        any       `bson:"lost"`
	LostPresent bool      `bson:"lostPresent"` // the loser had the key
	LostAt      time.Time `bson:"lostAt"`
}

// Record is a merge, unmerge or conflict in a profile's history. A merge
// record is written before anything moves: it is the plan an interrupted
// merge is finished from, and it keeps what an unmerge needs.
type Record struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Kind        string    `bson:"kind"`
	Status      string    `bson:"status"`
	SourceID    string    `bson:"sourceId"`
	TargetID    string    `bson:"targetId"`
	At          time.Time `bson:"at"`
	Reason      string    `bson:"reason"`
	Actor       string    `bson:"actor"`
	// Merge: the source as it was when claimed, and the ids whose items
	// it carried (itself and everything merged into it before).
	Source  *profile.Profile `bson:"source,omitempty"`
	Origins []string         `bson:"origins"`
	Moved   []Identifier     `bson:"moved"`
	Traits  []TraitOutcome   `bson:"traits"`
	// StageWas and StageWon: the target's lifecycle stage before the
	// merge and the source's that replaced it (both empty when the
	// target's stayed), so an unmerge gives it back.
	StageWas string `bson:"stageWas,omitempty"`
	StageWon string `bson:"stageWon,omitempty"`
	// Conflicts found (CONFLICT records, refused merges).
	Conflicts []Conflict `bson:"conflicts"`
	// Unmerge: the merge it reverses. Merge: when it was reversed.
	MergeOf  string     `bson:"mergeOf,omitempty"`
	UndoneAt *time.Time `bson:"undoneAt,omitempty"`
	Version  int64      `bson:"version"`
}

// queued is a merge or unmerge under way, in the system workspace, so a
// restart finds and finishes it whatever workspace it belongs to.
type queued struct {
	ID          string    `bson:"_id"` // the record id
	WorkspaceID string    `bson:"workspaceId"`
	Workspace   string    `bson:"workspace"`
	At          time.Time `bson:"at"`
}

// errRetry tells Resolve that what it read is stale (a concurrent merge
// moved things): read the identifiers again.
var errRetry = errors.New("identity: concurrent merge; retry")

// errMergeCap refuses a merge into a profile that absorbed MaxMergesInto.
var errMergeCap = errors.New("identity: merge cap reached")

// Merge merges two profiles by hand (mergeProfiles): the older survives.
func (r *Resolver) Merge(ctx context.Context, tn store.Tenant, a, b, reason, actor string) (*profile.Profile, error) {
	if a == b {
		return nil, apperr.Invalid("targetId", "a profile cannot be merged into itself")
	}
	for _, id := range []string{a, b} {
		p, err := profile.Get(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.MergingInto != "") {
			return nil, apperr.New(apperr.NotFound, "profile %s not found (or already merged)", id)
		}
		if err != nil {
			return nil, fmt.Errorf("load profile %s: %w", id, err)
		}
	}
	for attempt := 0; attempt < maxResolveAttempts; attempt++ {
		survivor, conflicts, err := r.merge(ctx, tn, a, b, reason, actor)
		switch {
		case errors.Is(err, errRetry):
			continue
		case errors.Is(err, errMergeCap):
			return nil, apperr.New(apperr.Conflict, "profile %s has absorbed %d merges, the most allowed", survivor, MaxMergesInto)
		case err != nil:
			return nil, err
		case len(conflicts) > 0:
			c := conflicts[0]
			return nil, apperr.New(apperr.Conflict, "profiles hold different %s values %v: merging them would give one person two", c.Type, c.Values)
		}
		return profile.Get(ctx, tn, survivor)
	}
	return nil, fmt.Errorf("merge %s and %s: gave up under contention", a, b)
}

// merge folds the younger of a and b into the older. It returns the
// survivor, or conflicts (and no merge) when the two hold different values
// of a unique identifier type.
func (r *Resolver) merge(ctx context.Context, tn store.Tenant, a, b, reason, actor string) (string, []Conflict, error) {
	pa, err := r.liveForMerge(ctx, tn, a)
	if err != nil {
		return "", nil, err
	}
	pb, err := r.liveForMerge(ctx, tn, b)
	if err != nil {
		return "", nil, err
	}
	target, source := pa, pb
	if older(pb, pa) {
		target, source = pb, pa
	}
	if cs := uniqueConflicts(source, target); len(cs) > 0 {
		r.recordConflicts(ctx, tn, cs, actor)
		return target.ID, cs, nil
	}
	if target.MergeCount >= MaxMergesInto {
		return target.ID, nil, errMergeCap
	}
	now := r.clock().UTC().Truncate(time.Millisecond)
	rec := Record{
		ID: store.NewID(), Kind: KindMerge, Status: statusRunning, SourceID: source.ID, TargetID: target.ID,
		At: now, Reason: reason, Actor: actor, Moved: []Identifier{}, Traits: []TraitOutcome{}, Conflicts: []Conflict{}, Origins: []string{},
	}
	if err := r.enqueue(ctx, tn, rec.ID, now); err != nil {
		return "", nil, err
	}
	if err := tn.C(Merges).Insert(ctx, rec); err != nil {
		return "", nil, fmt.Errorf("record merge of %s into %s: %w", source.ID, target.ID, err)
	}
	// Claim the source: from here on every writer goes to the target.
	var other string
	claimed, err := profile.UpdateAny(ctx, tn, source.ID, now, func(p *profile.Profile) error {
		other = ""
		if p.MergingInto != "" && p.MergeID != rec.ID {
			other = p.MergeID
			return nil
		}
		p.MergingInto, p.MergeID = target.ID, rec.ID
		return nil
	})
	if err != nil || other != "" {
		r.abandon(ctx, tn, rec)
		if other != "" {
			if err := r.finishByID(ctx, tn, other); err != nil {
				return "", nil, err
			}
			return "", nil, errRetry
		}
		if errors.Is(err, store.ErrNotFound) {
			return "", nil, errRetry
		}
		return "", nil, err
	}
	rec.Source = claimed
	rec.Origins = append([]string{claimed.ID}, claimed.MergedFrom...)
	if err := r.saveRecord(ctx, tn, &rec); err != nil {
		return "", nil, err
	}
	survivor, conflicts, err := r.finishMerge(ctx, tn, rec)
	return survivor, conflicts, err
}

// liveForMerge loads a live profile; one being merged away has its merge
// finished first and errRetry is returned.
func (r *Resolver) liveForMerge(ctx context.Context, tn store.Tenant, id string) (*profile.Profile, error) {
	p, err := profile.Get(ctx, tn, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRetry
	}
	if err != nil {
		return nil, fmt.Errorf("load profile %s: %w", id, err)
	}
	if p.MergingInto != "" {
		if err := r.finishByID(ctx, tn, p.MergeID); err != nil {
			return nil, err
		}
		return nil, errRetry
	}
	return p, nil
}

// finishMerge carries a claimed merge to the end. Every step is idempotent
// so it can run again after a crash, or concurrently with itself.
func (r *Resolver) finishMerge(ctx context.Context, tn store.Tenant, rec Record) (string, []Conflict, error) {
	src, err := profile.Get(ctx, tn, rec.SourceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if rec.Source == nil {
			// This copy may predate the claim: read before the claimer
			// saved Source, with the source folded and retired since by
			// another finisher. The stored record says which; abandoning
			// a stale copy would overwrite a merge that happened
			// (TestStaleFinisherDoesNotAbandonAClaimedMerge). A source
			// is never retired before Source is saved, so a record still
			// without it never claimed: crashed right after the record.
			if err := tn.C(Merges).Get(ctx, rec.ID, &rec); err != nil {
				return "", nil, fmt.Errorf("reload merge record %s: %w", rec.ID, err)
			}
			if rec.Status != statusRunning {
				return rec.TargetID, rec.Conflicts, nil
			}
			if rec.Source == nil {
				r.abandon(ctx, tn, rec)
				return rec.TargetID, nil, nil
			}
		}
		// Retired already: only the tail of the merge is left — unless it
		// was refused, released, and retired by a later merge.
		if t, err := profile.Get(ctx, tn, rec.TargetID); err == nil && slices.Contains(t.RefusedMerges, rec.ID) {
			return rec.TargetID, rec.Conflicts, nil
		}
		src = nil
	case err != nil:
		return "", nil, fmt.Errorf("load merge source %s: %w", rec.SourceID, err)
	case src.MergeID != rec.ID:
		r.abandon(ctx, tn, rec)
		return rec.TargetID, nil, nil
	}
	if rec.Source == nil && src != nil {
		rec.Source = src
		rec.Origins = append([]string{src.ID}, src.MergedFrom...)
		if err := r.saveRecord(ctx, tn, &rec); err != nil {
			return "", nil, err
		}
	}

	// Fold the source into the target (once: MergedFrom guards it). The
	// target may itself have been merged away meanwhile: follow it.
	target := rec.TargetID
	if src != nil {
		// Decided upstream: the target, now being merged away itself,
		// already folded (or refused) the source; its own merge carries
		// that on, so folding again further down would count it twice.
		folded, refusedUp := false, false
		for hops := 0; ; hops++ {
			var outcomes []TraitOutcome
			var stageWas, stageWon string
			var conflicts []Conflict
			refused := false
			_, err := profile.Update(ctx, tn, target, r.clock(), func(t *profile.Profile) error {
				outcomes, conflicts, refused = nil, nil, false
				if folded || slices.Contains(t.MergedFrom, src.ID) {
					return nil
				}
				// Fold or refuse is decided once, here, and the decision
				// kept on the target: a concurrent finisher that saw a
				// transient conflict (a unique value reserved, then
				// given back) must not release a source another folded.
				if refusedUp || slices.Contains(t.RefusedMerges, rec.ID) {
					refused, conflicts = true, uniqueConflicts(src, t)
					return nil
				}
				if conflicts = uniqueConflicts(src, t); len(conflicts) > 0 {
					refused = true
					t.RefusedMerges = append(t.RefusedMerges, rec.ID)
					return nil
				}
				was := t.Lifecycle
				outcomes = foldInto(t, src)
				stageWas, stageWon = "", ""
				if t.Lifecycle != was {
					stageWas, stageWon = was, t.Lifecycle
				}
				// Everything the survivor's rules read may have changed
				// (its identifiers above all): the merge re-decides it
				// once done, and if a crash comes first, the sweeper.
				t.MarkDue(r.clock())
				return nil
			})
			if err == nil && refused {
				// A unique value reached the target after the first check:
				// nothing has moved yet, so release the source (unless it
				// is gone: released already and merged elsewhere since).
				if _, err := profile.UpdateAny(ctx, tn, src.ID, r.clock(), func(p *profile.Profile) error {
					if p.MergeID == rec.ID {
						p.MergingInto, p.MergeID = "", ""
					}
					return nil
				}); err != nil && !errors.Is(err, store.ErrNotFound) {
					return "", nil, fmt.Errorf("release %s: %w", src.ID, err)
				}
				if len(conflicts) == 0 {
					// Decided by a concurrent finisher on a conflict that
					// has cleared since: report it by type.
					conflicts = slices.Clone(rec.Conflicts)
					if len(conflicts) == 0 {
						typs := slices.Sorted(maps.Keys(src.Uniques))
						conflicts = []Conflict{{Type: typs[0], Values: []string{src.Uniques[typs[0]]}, ProfileIDs: []string{target, src.ID}}}
					}
				}
				rec.Status, rec.Conflicts = statusRefused, conflicts
				if err := r.saveRecord(ctx, tn, &rec); err != nil {
					return "", nil, err
				}
				r.dequeue(ctx, tn, rec.ID)
				return target, conflicts, nil
			}
			if err == nil {
				if outcomes != nil {
					rec.Traits = outcomes
					rec.StageWas, rec.StageWon = stageWas, stageWon
				}
				break
			}
			if !errors.Is(err, profile.ErrMerging) && !errors.Is(err, store.ErrNotFound) || hops > 64 {
				return "", nil, fmt.Errorf("fold %s into %s: %w", src.ID, target, err)
			}
			if t, gerr := profile.Get(ctx, tn, target); gerr == nil {
				folded = folded || slices.Contains(t.MergedFrom, src.ID)
				refusedUp = refusedUp || slices.Contains(t.RefusedMerges, rec.ID)
				if t.MergeID != "" {
					// The target's own merge is under way and may yet be
					// refused: finish it before going past it. Never fold
					// into, nor move the source's items to, where a pending
					// claim points: were that claim refused, the others
					// finishing this merge would find the target live
					// again and fold the source a second time (counters
					// and traits twice, items on only one of the two:
					// TestFoldDoesNotPassAPendingClaim). Folded already
					// into the target, too: its items must go where its
					// counters are, here if the claim is refused.
					if err := r.finishByID(ctx, tn, t.MergeID); err != nil {
						return "", nil, err
					}
					continue
				}
			}
			// One hop at a time, not Redirect (which follows a whole chain,
			// pending claims included): every profile on the way gets the
			// check above.
			next, rerr := r.redirectOnce(ctx, tn, target)
			if errors.Is(rerr, store.ErrNotFound) && errors.Is(err, profile.ErrMerging) {
				continue // the target's own merge was refused: it is live again
			}
			if rerr != nil {
				return "", nil, fmt.Errorf("fold %s into %s: %w", src.ID, target, err)
			}
			target = next
		}
		rec.TargetID = target
		if err := r.saveRecord(ctx, tn, &rec); err != nil {
			return "", nil, err
		}
	}

	moved, err := r.moveAll(ctx, tn, rec.SourceID, target)
	if err != nil {
		return "", nil, err
	}
	if err := profile.Erase(ctx, tn, rec.SourceID); err != nil {
		return "", nil, fmt.Errorf("retire merged profile: %w", err)
	}
	// Anything attached to the source between the first move and its
	// retirement follows too; later writers find it gone and redirect.
	late, err := r.moveAll(ctx, tn, rec.SourceID, target)
	if err != nil {
		return "", nil, err
	}
	if err := r.sweepOn(ctx, tn, target); err != nil {
		return "", nil, err
	}
	if t, err := profile.Get(ctx, tn, target); err == nil {
		if err := r.syncTerms(ctx, tn, t); err != nil {
			return "", nil, err
		}
	}
	for _, id := range append(moved, late...) {
		if !slices.Contains(rec.Moved, id) {
			rec.Moved = append(rec.Moved, id)
		}
	}
	rec.Status = statusDone
	if err := r.saveRecord(ctx, tn, &rec); err != nil {
		return "", nil, err
	}
	r.dequeue(ctx, tn, rec.ID)
	// Subscribers of the source follow it to the survivor.
	r.updated(ctx, tn, rec.SourceID, map[string]any{realtime.PayloadMergedInto: target, realtime.PayloadCause: "merge"})
	r.updated(ctx, tn, target, map[string]any{realtime.PayloadMergedFrom: []string{rec.SourceID}, realtime.PayloadCause: "merge"})
	r.afterWrite(ctx, tn, "merge", rule.Touched{All: true}, target, rec.SourceID)
	return target, nil, nil
}

// foldInto merges src into t and says how each contested trait was
// decided: per key, the value written last wins. On a tie (both keys
// stamped at the same instant, millisecond precision) the target — the
// survivor, the older profile — keeps its value: a merge only changes the
// survivor's trait for a write that is strictly newer.
func foldInto(t, src *profile.Profile) []TraitOutcome {
	var outcomes []TraitOutcome
	if t.TraitsAt == nil {
		t.TraitsAt = map[string]time.Time{}
	}
	for k, sv := range src.Traits {
		tv, tHas := t.Traits[k]
		sAt, tAt := keyTime(src, k), keyTime(t, k)
		if tHas && reflect.DeepEqual(sv, tv) {
			continue
		}
		// Tie rule: the source wins only if strictly newer; equal stamps
		// keep the target's value (TestMergeTraitTieKeepsTarget).
		if tHas && !sAt.After(tAt) {
			outcomes = append(outcomes, TraitOutcome{Key: k, Winner: "target", Won: tv, Lost: sv, LostPresent: true, LostAt: sAt})
			continue
		}
		outcomes = append(outcomes, TraitOutcome{Key: k, Winner: "source", Won: sv, Lost: tv, LostPresent: tHas, LostAt: tAt})
		t.Traits[k] = sv
		t.TraitsAt[k] = sAt
	}
	t.EventCount += src.EventCount
	t.Tally = scores.MergeTallies(t.Tally, src.Tally)
	// The person is as far along as either profile was.
	t.Lifecycle = profile.Further(t.Lifecycle, src.Lifecycle)
	// A from-events write on the source may have counted events whose
	// ingest now lands on the target: the target's epoch must move too,
	// so that such an ingest recounts instead of adding (package traits).
	t.ComputedEpoch += src.ComputedEpoch
	t.RecountEpoch += src.RecountEpoch
	t.Seen(src.FirstSeenAt)
	t.Seen(src.LastSeenAt)
	for typ, v := range src.Uniques {
		t.Uniques[typ] = v
	}
	t.MergeCount++
	for _, id := range src.RefusedMerges {
		if !slices.Contains(t.RefusedMerges, id) {
			t.RefusedMerges = append(t.RefusedMerges, id)
		}
	}
	for _, id := range append([]string{src.ID}, src.MergedFrom...) {
		if !slices.Contains(t.MergedFrom, id) {
			t.MergedFrom = append(t.MergedFrom, id)
		}
	}
	if outcomes == nil {
		outcomes = []TraitOutcome{}
	}
	return outcomes
}

// keyTime is when a trait key was written; profiles from before per-key
// stamps fall back to their updatedAt.
func keyTime(p *profile.Profile, k string) time.Time {
	if t, ok := p.TraitsAt[k]; ok {
		return t
	}
	return p.UpdatedAt
}

func older(a, b *profile.Profile) bool {
	return a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID)
}

func uniqueConflicts(a, b *profile.Profile) []Conflict {
	var out []Conflict
	for typ, av := range a.Uniques {
		if bv, ok := b.Uniques[typ]; ok && bv != av {
			out = append(out, Conflict{Type: typ, Values: []string{bv, av}, ProfileIDs: []string{b.ID, a.ID}})
		}
	}
	slices.SortFunc(out, func(x, y Conflict) int {
		if x.Type < y.Type {
			return -1
		}
		if x.Type > y.Type {
			return 1
		}
		return 0
	})
	return out
}

// recordConflicts writes CONFLICT records into both profiles' history, one
// per profile pair and type (repeats refresh it rather than pile up).
func (r *Resolver) recordConflicts(ctx context.Context, tn store.Tenant, cs []Conflict, actor string) {
	for _, c := range cs {
		ids := slices.Clone(c.ProfileIDs)
		slices.Sort(ids)
		rec := Record{
			ID: "conflict-" + ids[0] + "-" + ids[1] + "-" + c.Type, Kind: KindConflict, Status: statusDone,
			SourceID: c.ProfileIDs[1], TargetID: c.ProfileIDs[0], At: r.clock().UTC().Truncate(time.Millisecond),
			Reason: "unique identifier conflict", Actor: actor, Conflicts: []Conflict{c},
			Moved: []Identifier{}, Traits: []TraitOutcome{}, Origins: []string{},
		}
		// History is best effort here: the caller reports the conflict in
		// its payload whether or not this write lands.
		_ = tn.C(Merges).Put(ctx, rec)
	}
}

// moveAll moves identities, then everything the other domains keep per
// profile (Followers.MoveProfileData), from source to target. Every step
// is idempotent.
func (r *Resolver) moveAll(ctx context.Context, tn store.Tenant, sourceID, targetID string) ([]Identifier, error) {
	moved, err := moveIdentities(ctx, tn, sourceID, targetID, nil)
	if err != nil {
		return nil, err
	}
	if r.followers != nil {
		if err := r.followers.MoveProfileData(ctx, tn, sourceID, targetID); err != nil {
			return nil, fmt.Errorf("merge %s into %s: %w", sourceID, targetID, err)
		}
	}
	return moved, nil
}

// sweepOn carries on what a slow move left on id after id itself was
// merged away and swept: a move reads an item, then writes it to its
// target, and the target's own merge may have made its last sweep in
// between, stranding the item on a retired profile while its counters
// went on with the merge. Once the caller's moves have returned, it
// follows id's merges hop by hop (as its counters went) and moves what is
// left on each retired profile to the next. A profile still claimed is
// left alone: its merge sweeps it again after retiring it, and if the
// claim is refused, id is live and keeps its items and counters.
func (r *Resolver) sweepOn(ctx context.Context, tn store.Tenant, id string) error {
	for hops := 0; hops < 64; hops++ {
		_, err := profile.Get(ctx, tn, id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("load profile %s: %w", id, err)
		}
		next, err := r.redirectOnce(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // never merged: nothing to follow
		}
		if err != nil {
			return err
		}
		if _, err := r.moveAll(ctx, tn, id, next); err != nil {
			return err
		}
		id = next
	}
	return fmt.Errorf("sweep after merge: more than 64 merges in a chain")
}

// moveIdentities re-points identities of source at target (only those in
// only, when given).
func moveIdentities(ctx context.Context, tn store.Tenant, sourceID, targetID string, only []Identifier) ([]Identifier, error) {
	c := tn.C(Identities)
	docs, err := c.Find(ctx, store.Query{Index: IdentitiesByProfile, Eq: []any{sourceID}})
	if err != nil {
		return nil, fmt.Errorf("identities of %s: %w", sourceID, err)
	}
	var moved []Identifier
	for _, d := range docs {
		var doc identity
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decode identity: %w", err)
		}
		id := Identifier{Type: doc.Type, Value: doc.Value}
		if only != nil && !slices.Contains(only, id) {
			continue
		}
		prev := doc.Version
		doc.Version++
		doc.ProfileID = targetID
		if err := c.Replace(ctx, doc, prev); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("move identity %s to %s: %w", doc.ID, targetID, err)
		}
		moved = append(moved, id)
	}
	return moved, nil
}

// Redirect returns the live profile that id was merged into (following a
// chain of merges), or store.ErrNotFound if id is live or unknown.
func (r *Resolver) Redirect(ctx context.Context, tn store.Tenant, id string) (string, error) {
	return Redirect(ctx, tn, id)
}

// Redirect is Resolver.Redirect, for those built before the resolver (the
// segment engine): it reads only the store.
func Redirect(ctx context.Context, tn store.Tenant, id string) (string, error) {
	next, err := redirectOnce(ctx, tn, id)
	if err != nil {
		return "", err
	}
	for hops := 0; hops < 16; hops++ {
		after, err := redirectOnce(ctx, tn, next)
		if errors.Is(err, store.ErrNotFound) {
			return next, nil
		}
		if err != nil {
			return "", err
		}
		next = after
	}
	return next, nil
}

func (r *Resolver) redirectOnce(ctx context.Context, tn store.Tenant, id string) (string, error) {
	return redirectOnce(ctx, tn, id)
}

func redirectOnce(ctx context.Context, tn store.Tenant, id string) (string, error) {
	p, err := profile.Get(ctx, tn, id)
	if err == nil {
		if p.MergingInto != "" {
			return p.MergingInto, nil
		}
		return "", store.ErrNotFound
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	docs, err := tn.C(Merges).Find(ctx, store.Query{Index: MergesBySource, Eq: []any{id}, Desc: true, Limit: 20})
	if err != nil {
		return "", fmt.Errorf("merges of %s: %w", id, err)
	}
	for _, d := range docs {
		var rec Record
		if err := d.Decode(&rec); err != nil {
			return "", fmt.Errorf("decode merge record: %w", err)
		}
		// A running merge that never claimed its source (no Source) did
		// not retire it: a later attempt, about to be abandoned.
		if rec.Kind == KindMerge && (rec.Status == statusDone || rec.Status == statusRunning && rec.Source != nil) {
			return rec.TargetID, nil
		}
	}
	return "", store.ErrNotFound
}

// saveRecord writes rec with compare-and-swap. Several finishers may run
// one merge at once: an outcome already stored (done, refused, abandoned,
// undone) is never overwritten by a stale copy — rec becomes the stored
// record instead. Only done → undone moves on from an outcome.
func (r *Resolver) saveRecord(ctx context.Context, tn store.Tenant, rec *Record) error {
	c := tn.C(Merges)
	for attempt := 0; attempt < 50; attempt++ {
		prev := rec.Version
		rec.Version = prev + 1
		err := c.Replace(ctx, rec, prev)
		if err == nil {
			return nil
		}
		rec.Version = prev
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("save merge record %s: %w", rec.ID, err)
		}
		var stored Record
		if err := c.Get(ctx, rec.ID, &stored); err != nil {
			return fmt.Errorf("reload merge record %s: %w", rec.ID, err)
		}
		if stored.Status != statusRunning && !(stored.Status == statusDone && rec.Status == statusUndone) {
			*rec = stored
			return nil
		}
		rec.Version = stored.Version
	}
	return fmt.Errorf("save merge record %s: too much contention: %w", rec.ID, store.ErrConflict)
}

func (r *Resolver) abandon(ctx context.Context, tn store.Tenant, rec Record) {
	rec.Status = statusAbandoned
	if err := r.saveRecord(ctx, tn, &rec); err == nil {
		r.dequeue(ctx, tn, rec.ID)
	}
}

func (r *Resolver) enqueue(ctx context.Context, tn store.Tenant, id string, at time.Time) error {
	q := queued{ID: id, Workspace: tn.Workspace(), At: at}
	if err := r.system(tn).C(MergeQueue).Put(ctx, q); err != nil {
		return fmt.Errorf("queue merge %s: %w", id, err)
	}
	return nil
}

// dequeue is best effort: a leftover entry only makes the next start check
// a finished record again.
func (r *Resolver) dequeue(ctx context.Context, tn store.Tenant, id string) {
	_ = r.system(tn).C(MergeQueue).Delete(ctx, id)
}

func (r *Resolver) system(tn store.Tenant) store.Tenant {
	return tn.System()
}

// Settle finishes the merge that has claimed profileID, if any, so the
// caller can then write to the profile (if the merge was refused) or to
// where it went.
func (r *Resolver) Settle(ctx context.Context, tn store.Tenant, profileID string) error {
	p, err := profile.Get(ctx, tn, profileID)
	if err != nil || p.MergeID == "" {
		return nil
	}
	return r.finishByID(ctx, tn, p.MergeID)
}

// finishByID finishes the merge or unmerge recorded under id, if running.
func (r *Resolver) finishByID(ctx context.Context, tn store.Tenant, id string) error {
	var rec Record
	if err := tn.C(Merges).Get(ctx, id, &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("load merge record %s: %w", id, err)
	}
	if rec.Status != statusRunning {
		return nil
	}
	var err error
	switch rec.Kind {
	case KindMerge:
		_, _, err = r.finishMerge(ctx, tn, rec)
	case KindUnmerge:
		err = r.finishUnmerge(ctx, tn, rec)
	}
	return err
}

// Recover finishes every merge and unmerge a crash interrupted, in every
// workspace. The server runs it at start, before serving.
func (r *Resolver) Recover(ctx context.Context, st *store.Store) (int, error) {
	sys := st.Tenant(store.SystemWorkspace)
	docs, err := sys.C(MergeQueue).Find(ctx, store.Query{Index: QueueByAt})
	if err != nil {
		return 0, fmt.Errorf("read merge queue: %w", err)
	}
	for _, d := range docs {
		var q queued
		if err := d.Decode(&q); err != nil {
			return 0, fmt.Errorf("decode merge queue entry: %w", err)
		}
		tn := st.Tenant(q.Workspace)
		if err := r.finishByID(ctx, tn, q.ID); err != nil {
			return 0, fmt.Errorf("finish merge %s in %s: %w", q.ID, q.Workspace, err)
		}
		r.dequeue(ctx, tn, q.ID)
	}
	return len(docs), nil
}

// History lists the merge, unmerge and conflict records that involve a
// profile, newest first (abandoned attempts, which changed nothing, are
// left out).
func History(ctx context.Context, tn store.Tenant, profileID string) ([]Record, error) {
	seen := map[string]bool{}
	var out []Record
	for _, index := range []string{MergesByTarget, MergesBySource} {
		docs, err := tn.C(Merges).Find(ctx, store.Query{Index: index, Eq: []any{profileID}, Desc: true, Limit: 500})
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", profileID, err)
		}
		for _, d := range docs {
			var rec Record
			if err := d.Decode(&rec); err != nil {
				return nil, fmt.Errorf("decode merge record: %w", err)
			}
			if seen[rec.ID] || rec.Status == statusAbandoned {
				continue
			}
			seen[rec.ID] = true
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return b.At.Compare(a.At) })
	return out, nil
}
