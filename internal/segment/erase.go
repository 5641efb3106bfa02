package segment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// CauseErasure is the cause of the EXITED records an erasure writes.
const CauseErasure = "erasure"

// Erase makes an erased person leave every segment (GDPR erasure) without
// leaving their profile id behind: each membership of profileIDs, in
// active and archived segments alike, is deleted and recorded as EXITED
// (cause "erasure") under pseudonym, and published as membership.changed,
// so subscribers see the person leave and segment history stays
// consistent with segment sizes. The profiles' earlier membership_changes
// are rewritten to pseudonym too (kept, so history counts do not move).
//
// Idempotent: an EXITED already recorded for pseudonym in a segment is not
// written again. Returns how many segments the person left in all (those
// left by an earlier, interrupted run included).
func (e *Engine) Erase(ctx context.Context, tn store.Tenant, profileIDs []string, pseudonym string, at time.Time) (int, error) {
	at = at.UTC().Truncate(time.Millisecond)
	exited, err := e.erasureExits(ctx, tn, pseudonym)
	if err != nil {
		return 0, err
	}
	segs, err := allSegmentIDs(ctx, tn) // every segment's, archived ones too
	if err != nil {
		return 0, err
	}
	for _, pid := range profileIDs {
		current, err := memberships(ctx, tn, pid, segs)
		if err != nil {
			return 0, fmt.Errorf("memberships of %s: %w", pid, err)
		}
		var (
			records []any
			notes   []realtime.Change
		)
		for _, m := range current {
			if exited[m.SegmentID] {
				continue
			}
			exited[m.SegmentID] = true
			c := Change{ID: store.NewID(), SegmentID: m.SegmentID, ProfileID: pseudonym, Kind: Exited, At: at, Cause: CauseErasure}
			records = append(records, c)
			notes = append(notes, realtime.Change{
				Kind: realtime.MembershipChanged, ProfileID: pseudonym, SegmentID: m.SegmentID,
				Payload: map[string]any{realtime.PayloadKind: Exited, realtime.PayloadCause: CauseErasure, realtime.PayloadChangeID: c.ID},
			})
		}
		// The record goes first: a crash before the membership is deleted
		// leaves a record that the next run sees (exited) and does not repeat.
		if len(records) > 0 {
			errs, err := tn.C(MembershipChanges).InsertMany(ctx, records)
			if err != nil {
				return 0, fmt.Errorf("record erasure exits: %w", err)
			}
			for j := range records {
				if err := errAt(errs, j); err != nil {
					return 0, fmt.Errorf("record erasure exit: %w", err)
				}
			}
		}
		for _, m := range current {
			if err := tn.C(Memberships).Delete(ctx, m.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, fmt.Errorf("exit segment %s: %w", m.SegmentID, err)
			}
		}
		realtime.Notify(ctx, e.publisher, tn, notes...)
		if err := rewriteHistory(ctx, tn, pid, pseudonym); err != nil {
			return 0, err
		}
	}
	return len(exited), nil
}

// erasureExits lists the segments pseudonym already has an erasure EXITED in.
func (e *Engine) erasureExits(ctx context.Context, tn store.Tenant, pseudonym string) (map[string]bool, error) {
	out := map[string]bool{}
	docs, err := tn.C(MembershipChanges).Find(ctx, store.Query{Index: ChangesOfProfile, Eq: []any{pseudonym}})
	if err != nil {
		return nil, fmt.Errorf("membership changes of %s: %w", pseudonym, err)
	}
	for _, d := range docs {
		var c Change
		if err := d.Decode(&c); err != nil {
			return nil, fmt.Errorf("decode membership change: %w", err)
		}
		if c.Kind == Exited && c.Cause == CauseErasure {
			out[c.SegmentID] = true
		}
	}
	return out, nil
}

// rewriteHistory moves a profile's membership_changes to pseudonym.
func rewriteHistory(ctx context.Context, tn store.Tenant, profileID, pseudonym string) error {
	c := tn.C(MembershipChanges)
	for {
		// Rewritten records leave the range: each pass reads from the start.
		docs, err := c.Find(ctx, store.Query{Index: ChangesOfProfile, Eq: []any{profileID}, Limit: 500})
		if err != nil {
			return fmt.Errorf("membership history of %s: %w", profileID, err)
		}
		if len(docs) == 0 {
			return nil
		}
		for _, d := range docs {
			var ch Change
			if err := d.Decode(&ch); err != nil {
				return fmt.Errorf("decode membership change: %w", err)
			}
			ch.ProfileID = pseudonym
			if err := c.Put(ctx, ch); err != nil {
				return fmt.Errorf("anonymise membership change %s: %w", ch.ID, err)
			}
		}
	}
}
