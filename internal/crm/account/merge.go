package account

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// MergeRecord is the merge of a duplicate account (the source) into
// another (the target): what the source was, and what moved.
type MergeRecord struct {
	// ID is the source's id.
	ID          string         `bson:"_id"`
	WorkspaceID string         `bson:"workspaceId"`
	TargetID    string         `bson:"targetId"`
	SourceName  string         `bson:"sourceName"`
	Identifiers []Identifier   `bson:"identifiers"`
	Traits      map[string]any `bson:"traits,omitempty"`
	Links       int            `bson:"links"`
	Reason      string         `bson:"reason,omitempty"`
	Actor       string         `bson:"actor,omitempty"`
	At          time.Time      `bson:"at"`
	// Done is set once everything moved (the objects of other domains
	// included, Finish); until then a repeat of the merge finishes it.
	Done    bool  `bson:"done"`
	Version int64 `bson:"version"`
}

// MaxReasonLen bounds a merge's reason.
const MaxReasonLen = 1024

// Absorb merges account sourceID into targetID, the account side: the
// source's identifiers move to the target (they were the source's claims:
// nobody else can take them meanwhile), the target gains the traits it
// lacks, the source's people are linked to the target (a person linked
// to both keeps the target's link) and the source is deleted. A record
// keeps what the source was. The caller then moves the other domains'
// objects and calls Finish.
//
// A repeat of a merge that was cut short (a crash) carries on from where
// it stopped; a merge done already answers with the target.
func (s *Service) Absorb(ctx context.Context, tn store.Tenant, sourceID, targetID, reason, actor string) (*Account, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > MaxReasonLen {
		return nil, apperr.Invalid("reason", "is longer than %d bytes", MaxReasonLen)
	}
	if sourceID == targetID {
		return nil, apperr.Invalid("targetId", "an account cannot be merged into itself")
	}
	target, err := get(ctx, tn, targetID)
	if apperr.CodeOf(err) == apperr.NotFound {
		if rec, _ := s.mergeOf(ctx, tn, targetID); rec != nil {
			return nil, apperr.Invalid("targetId", "account %s was merged into %s: merge into that one", targetID, rec.TargetID)
		}
		return nil, apperr.New(apperr.NotFound, "targetId: account %s not found", targetID)
	}
	if err != nil {
		return nil, err
	}
	source, err := get(ctx, tn, sourceID)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound:
		rec, rerr := s.mergeOf(ctx, tn, sourceID)
		if rerr != nil {
			return nil, rerr
		}
		if rec == nil {
			return nil, apperr.New(apperr.NotFound, "sourceId: account %s not found", sourceID)
		}
		if rec.TargetID != targetID {
			return nil, apperr.Invalid("sourceId", "account %s was merged into %s already", sourceID, rec.TargetID)
		}
		// Cut short after the source went: the links may be left.
		if err := s.moveLinks(ctx, tn, sourceID, targetID); err != nil {
			return nil, err
		}
		return get(ctx, tn, targetID)
	case err != nil:
		return nil, err
	}
	now := s.clock()
	rec := &MergeRecord{ID: sourceID, TargetID: targetID, SourceName: source.Name, Identifiers: source.identifiers(), Traits: source.Traits,
		Reason: reason, Actor: actor, At: now, Version: 1}
	// The record, keyed by the source, is also the merge's lock: one
	// merge of an account at a time. A record for the same target is this
	// merge cut short, carried on.
	fresh := true
	if err := tn.C(AccountMerges).Insert(ctx, rec); errors.Is(err, store.ErrDuplicateKey) {
		cur, err := s.mergeOf(ctx, tn, sourceID)
		if err != nil {
			return nil, err
		}
		if cur == nil || cur.TargetID != targetID {
			into := "another account"
			if cur != nil {
				into = cur.TargetID
			}
			return nil, apperr.New(apperr.Conflict, "sourceId: account %s is being merged into %s: merge it there again to finish", sourceID, into)
		}
		fresh = false
	} else if err != nil {
		return nil, fmt.Errorf("record the merge of account %s: %w", sourceID, err)
	}
	if err := s.unblocked(ctx, tn, sourceID, targetID); err != nil {
		if fresh {
			if derr := tn.C(AccountMerges).Delete(ctx, sourceID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				return nil, errors.Join(err, fmt.Errorf("withdraw the merge record: %w", derr))
			}
		}
		return nil, err
	}
	// Read again now that nothing else merges into it: a merge into the
	// source that finished since the first read gave it identifiers and
	// traits, which must move on too.
	if source, err = get(ctx, tn, sourceID); err != nil {
		return nil, err
	}
	rec.SourceName, rec.Identifiers, rec.Traits = source.Name, source.identifiers(), source.Traits
	if err := tn.C(AccountMerges).Put(ctx, rec); err != nil {
		return nil, fmt.Errorf("record the merge of account %s: %w", sourceID, err)
	}
	for _, id := range rec.Identifiers {
		if err := handOver(ctx, tn, id, sourceID, targetID, now); err != nil {
			return nil, err
		}
	}
	if target, err = s.takeIn(ctx, tn, targetID, source); err != nil {
		return nil, err
	}
	if err := tn.C(Accounts).Delete(ctx, sourceID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("delete merged account %s: %w", sourceID, err)
	}
	if err := s.moveLinks(ctx, tn, sourceID, targetID); err != nil {
		return nil, err
	}
	s.notify(ctx, tn, sourceID)
	s.notify(ctx, tn, targetID)
	return target, nil
}

// unblocked refuses a merge of sourceID into targetID that another one
// under way crosses: the target being merged away itself, or an account
// being merged into the source. Each merge checks once its own record is
// stored, so of two crossing merges at least one sees the other.
func (s *Service) unblocked(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	if rec, err := s.mergeOf(ctx, tn, targetID); err != nil {
		return err
	} else if rec != nil {
		return apperr.New(apperr.Conflict, "targetId: account %s is being merged into %s: merge into that one", targetID, rec.TargetID)
	}
	incoming, err := s.Merges(ctx, tn, sourceID)
	if err != nil {
		return err
	}
	for _, m := range incoming {
		if !m.Done {
			return apperr.New(apperr.Conflict, "sourceId: account %s is being merged into %s: try again once that merge is done", m.ID, sourceID)
		}
	}
	return nil
}

// handOver re-points the claim of id from sourceID to targetID.
func handOver(ctx context.Context, tn store.Tenant, id Identifier, sourceID, targetID string, now time.Time) error {
	c := tn.C(AccountIdentities)
	for range 5 {
		var held claimDoc
		err := c.FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held)
		if errors.Is(err, store.ErrNotFound) {
			err = c.Insert(ctx, claimDoc{ID: store.NewID(), Type: id.Type, Value: id.Value, AccountID: targetID, ClaimedAt: now, Version: 1})
			if errors.Is(err, store.ErrDuplicateKey) {
				continue
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("read the claim of %s: %w", id.Type, err)
		}
		if held.AccountID != sourceID {
			return nil // the target's already, or not the source's any more
		}
		prev := held.Version
		held.AccountID, held.ClaimedAt, held.Version = targetID, now, prev+1
		if err := c.Replace(ctx, held, prev); err == nil || errors.Is(err, store.ErrNotFound) {
			return nil
		} else if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("hand over %s: %w", id.Type, err)
		}
	}
	return apperr.New(apperr.Conflict, "the identifiers of account %s changed meanwhile: try again", sourceID)
}

// takeIn writes onto targetID the source's identifiers and the traits it
// lacks (the target's values win), re-reading on a concurrent write.
func (s *Service) takeIn(ctx context.Context, tn store.Tenant, targetID string, source *Account) (*Account, error) {
	for range 10 {
		t, err := get(ctx, tn, targetID)
		if err != nil {
			return nil, err
		}
		next := *t
		next.Traits = maps.Clone(t.Traits)
		if next.Traits == nil {
			next.Traits = map[string]any{}
		}
		for k, v := range source.Traits {
			if _, ok := next.Traits[k]; !ok {
				next.Traits[k] = v
			}
		}
		next.Identifiers = slices.Clone(t.Identifiers)
		for _, id := range source.identifiers() {
			if !slices.Contains(next.Identifiers, id) {
				next.Identifiers = append(next.Identifiers, id)
			}
		}
		next.Domains = domainsOf(next.Identifiers)
		next.UpdatedAt, next.Version = s.clock(), t.Version+1
		err = tn.C(Accounts).Replace(ctx, &next, t.Version)
		if err == nil {
			next.WorkspaceID = tn.Workspace()
			return &next, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("store account %s: %w", targetID, err)
		}
	}
	return nil, apperr.New(apperr.Conflict, "account %s changed meanwhile: try again", targetID)
}

// moveLinks links the people of sourceID to targetID (a person linked to
// both keeps the target's link) and removes the source's links.
func (s *Service) moveLinks(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	c := tn.C(AccountLinks)
	for {
		docs, err := c.Find(ctx, store.Query{Index: AccountLinksByAccount, Eq: []any{sourceID}, Limit: 500})
		if err != nil {
			return fmt.Errorf("links of account %s: %w", sourceID, err)
		}
		for _, d := range docs {
			var l LinkDoc
			if err := d.Decode(&l); err != nil {
				return fmt.Errorf("decode link: %w", err)
			}
			moved := l
			moved.ID, moved.AccountID, moved.Version = linkID(targetID, l.ProfileID), targetID, 1
			if err := c.Insert(ctx, moved); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
				return fmt.Errorf("link %s to account %s: %w", l.ProfileID, targetID, err)
			}
			if err := c.Delete(ctx, l.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("remove link %s: %w", l.ID, err)
			}
		}
		if len(docs) < 500 {
			return nil
		}
	}
}

// Finish marks the merge of sourceID done, with how many people the
// target has now.
func (s *Service) Finish(ctx context.Context, tn store.Tenant, sourceID string) error {
	for range 5 {
		var rec MergeRecord
		if err := tn.C(AccountMerges).Get(ctx, sourceID, &rec); err != nil {
			return fmt.Errorf("read the merge of account %s: %w", sourceID, err)
		}
		if rec.Done {
			return nil
		}
		n, err := s.CountContacts(ctx, tn, rec.TargetID)
		if err != nil {
			return err
		}
		prev := rec.Version
		rec.Done, rec.Links, rec.Version = true, int(n), prev+1
		if err := tn.C(AccountMerges).Replace(ctx, &rec, prev); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("finish the merge of account %s: %w", sourceID, err)
		}
	}
	return apperr.New(apperr.Conflict, "the merge of account %s changed meanwhile: merge again to finish", sourceID)
}

// mergeOf reads the merge record of an account merged away (nil: none).
func (s *Service) mergeOf(ctx context.Context, tn store.Tenant, id string) (*MergeRecord, error) {
	var rec MergeRecord
	err := tn.C(AccountMerges).Get(ctx, id, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the merge of account %s: %w", id, err)
	}
	return &rec, nil
}

// Live reads account id, or the account it was merged into (following
// merges): NOT_FOUND when neither exists.
func (s *Service) Live(ctx context.Context, tn store.Tenant, id string) (*Account, error) {
	for range 16 {
		a, err := get(ctx, tn, id)
		if apperr.CodeOf(err) != apperr.NotFound {
			return a, err
		}
		rec, rerr := s.mergeOf(ctx, tn, id)
		if rerr != nil {
			return nil, rerr
		}
		if rec == nil {
			return nil, err
		}
		id = rec.TargetID
	}
	return nil, apperr.New(apperr.NotFound, "account %s not found", id)
}

// Merges lists the merges into account id, newest first (at most 100).
func (s *Service) Merges(ctx context.Context, tn store.Tenant, id string) ([]*MergeRecord, error) {
	docs, err := tn.C(AccountMerges).Find(ctx, store.Query{Index: AccountMergesByTarget, Eq: []any{id}, Desc: true, Limit: 100})
	if err != nil {
		return nil, fmt.Errorf("merges into account %s: %w", id, err)
	}
	out := make([]*MergeRecord, len(docs))
	for i, d := range docs {
		out[i] = &MergeRecord{}
		if err := d.Decode(out[i]); err != nil {
			return nil, fmt.Errorf("decode account merge: %w", err)
		}
	}
	return out, nil
}
