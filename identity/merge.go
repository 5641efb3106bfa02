package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/profile"
	"github.com/halo-cdp/halo/store"
)

// Mover moves what another domain keeps per profile (events, memberships,
// consent...) from source to target during a merge. It must be idempotent:
// a resumed merge calls it again.
type Mover func(ctx context.Context, tn store.Tenant, sourceID, targetID string) error

// mergeRecord is the durable plan and history of one merge. It is written
// before anything moves, so an interrupted merge can be finished from it,
// and it keeps the source profile as it was, for unmerge.
type mergeRecord struct {
	ID          string          `bson:"_id"`
	WorkspaceID string          `bson:"workspaceId"`
	SourceID    string          `bson:"sourceId"`
	TargetID    string          `bson:"targetId"`
	At          time.Time       `bson:"at"`
	Reason      string          `bson:"reason"`
	Actor       string          `bson:"actor"`
	Status      string          `bson:"status"` // running, done
	Source      profile.Profile `bson:"source"`
	Moved       []Identifier    `bson:"moved"`
	Version     int64           `bson:"version"`
}

const (
	mergeRunning = "running"
	mergeDone    = "done"
)

// errRetry tells Resolve that the merge plan it computed is stale.
var errRetry = errors.New("identity: merge raced with another merge; retry")

// merge folds source into target. Each step is idempotent, keyed by the
// merge record (one per source profile), so concurrent or resumed merges
// of the same source converge.
func (r *Resolver) merge(ctx context.Context, tn store.Tenant, sourceID, targetID, reason, actor string) error {
	src, err := profile.Get(ctx, tn, sourceID)
	if errors.Is(err, store.ErrNotFound) {
		// Merged away meanwhile. An identifier claimed for it after its
		// merge moved the identities would be stranded on a retired
		// profile (and every later resolve would retry forever): move any
		// such stragglers to where it went, then re-read the identifiers.
		if to, rerr := r.Redirect(ctx, tn, sourceID); rerr == nil {
			if _, err := r.moveAll(ctx, tn, sourceID, to); err != nil {
				return err
			}
		}
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("load merge source %s: %w", sourceID, err)
	}
	rec := mergeRecord{
		ID: "merge-" + sourceID, SourceID: sourceID, TargetID: targetID,
		At: r.Now().UTC().Truncate(time.Millisecond), Reason: reason, Actor: actor,
		Status: mergeRunning, Source: *src,
	}
	err = tn.C(store.Merges).Insert(ctx, rec)
	if errors.Is(err, store.ErrDuplicateKey) {
		if err := tn.C(store.Merges).Get(ctx, rec.ID, &rec); err != nil {
			return fmt.Errorf("load merge of %s: %w", sourceID, err)
		}
		if rec.TargetID != targetID {
			// Another merge of this source is under way (or was cut
			// short): finish that one, then re-read the identifiers.
			if err := r.finishMerge(ctx, tn, rec); err != nil {
				return err
			}
			return errRetry
		}
	} else if err != nil {
		return fmt.Errorf("record merge %s into %s: %w", sourceID, targetID, err)
	}
	return r.finishMerge(ctx, tn, rec)
}

func (r *Resolver) finishMerge(ctx context.Context, tn store.Tenant, rec mergeRecord) error {
	// The target may itself be merged away while this merge runs: then
	// everything goes on to where it went (the record keeps the original
	// target; Redirect follows the chain).
	target := rec.TargetID
	var moved []Identifier
	for hops := 0; ; hops++ {
		m, err := r.moveAll(ctx, tn, rec.SourceID, target)
		if err != nil {
			return err
		}
		moved = append(moved, m...)
		// Fold the source as it is now, not as it was when the merge
		// began, so writes it took meanwhile are not lost.
		src := rec.Source
		if cur, err := profile.Get(ctx, tn, rec.SourceID); err == nil {
			src = *cur
		}
		_, err = profile.Update(ctx, tn, target, r.Now(), func(t *profile.Profile) error {
			if slices.Contains(t.MergedFrom, src.ID) {
				return nil // already folded in by an earlier attempt
			}
			foldInto(t, &src)
			return nil
		})
		next, rerr := r.Redirect(ctx, tn, target)
		if err == nil && errors.Is(rerr, store.ErrNotFound) {
			break
		}
		// Either the target is gone, or it is being merged and may have
		// been folded from a read taken before this write: fold again into
		// where it goes (the MergedFrom check keeps that idempotent).
		if (err != nil && !errors.Is(err, store.ErrNotFound)) || rerr != nil || hops == 16 {
			if err == nil {
				err = rerr
			}
			return fmt.Errorf("merge %s into %s: %w", rec.SourceID, target, err)
		}
		// What this merge already moved to target follows it.
		if _, err := r.moveAll(ctx, tn, target, next); err != nil {
			return err
		}
		target = next
	}
	if err := tn.C(store.Profiles).Delete(ctx, rec.SourceID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("retire merged profile %s: %w", rec.SourceID, err)
	}
	// A concurrent Resolve (or merge into the source) may have attached
	// identifiers or events to the source after the first move. Those
	// written before the delete are caught here; later writers find the
	// source gone and retry.
	late, err := r.moveAll(ctx, tn, rec.SourceID, target)
	if err != nil {
		return err
	}
	moved = append(moved, late...)
	if err := profile.DropTerms(ctx, tn, rec.SourceID); err != nil {
		return err
	}
	prev := rec.Version
	rec.Version++
	rec.Status = mergeDone
	rec.Moved = append(rec.Moved, moved...)
	if err := tn.C(store.Merges).Replace(ctx, rec, prev); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("close merge record %s: %w", rec.ID, err)
	}
	return nil
}

// foldInto merges src's data into t. Traits: per key, the value of the
// profile updated last wins (the loser's values stay in the merge record).
func foldInto(t, src *profile.Profile) {
	traits := map[string]any{}
	older, newer := src.Traits, t.Traits
	if src.UpdatedAt.After(t.UpdatedAt) {
		older, newer = t.Traits, src.Traits
	}
	for k, v := range older {
		traits[k] = v
	}
	for k, v := range newer {
		traits[k] = v
	}
	t.Traits = traits
	t.EventCount += src.EventCount
	t.Seen(src.FirstSeenAt)
	t.Seen(src.LastSeenAt)
	t.MergedFrom = append(t.MergedFrom, src.ID)
	for _, id := range src.MergedFrom {
		if !slices.Contains(t.MergedFrom, id) {
			t.MergedFrom = append(t.MergedFrom, id)
		}
	}
}

// moveAll moves identities and everything the Movers handle from source
// to target. Every step is idempotent.
func (r *Resolver) moveAll(ctx context.Context, tn store.Tenant, sourceID, targetID string) ([]Identifier, error) {
	moved, err := r.moveIdentities(ctx, tn, sourceID, targetID)
	if err != nil {
		return nil, err
	}
	for _, mv := range r.Movers {
		if err := mv(ctx, tn, sourceID, targetID); err != nil {
			return nil, fmt.Errorf("merge %s into %s: %w", sourceID, targetID, err)
		}
	}
	return moved, nil
}

// moveIdentities re-points every identity of source at target.
func (r *Resolver) moveIdentities(ctx context.Context, tn store.Tenant, sourceID, targetID string) ([]Identifier, error) {
	c := tn.C(store.Identities)
	docs, err := c.Find(ctx, store.Query{Index: store.IdentitiesByProfile, Eq: []any{sourceID}})
	if err != nil {
		return nil, fmt.Errorf("identities of %s: %w", sourceID, err)
	}
	var moved []Identifier
	for _, d := range docs {
		var doc identity
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decode identity: %w", err)
		}
		prev := doc.Version
		doc.Version++
		doc.ProfileID = targetID
		if err := c.Replace(ctx, doc, prev); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("move identity %s to %s: %w", doc.ID, targetID, err)
		}
		moved = append(moved, Identifier{Type: doc.Type, Value: doc.Value})
	}
	return moved, nil
}

// Redirect returns the profile that id was merged into, or
// store.ErrNotFound if id was never merged.
func (r *Resolver) Redirect(ctx context.Context, tn store.Tenant, id string) (string, error) {
	var rec mergeRecord
	err := tn.C(store.Merges).FindOne(ctx, store.Query{Index: store.MergesBySource, Eq: []any{id}, Desc: true}, &rec)
	if err != nil {
		return "", err
	}
	return rec.TargetID, nil
}
