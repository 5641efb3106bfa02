package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Mover moves consent records with profiles on merge and unmerge (steps
// of the merge coordinator, internal/merge). It needs only a clock, so it
// exists before the Service, which needs identity.
type Mover struct {
	now func() time.Time
}

// NewMover returns a Mover stamping rebuilt states with now.
func NewMover(now func() time.Time) Mover { return Mover{now: now} }

// MoveConsent is a merge step: the source's consent records move to
// the target, whose state is rebuilt from its whole log (so the survivor
// holds the union, each key resolved by the latest record). Idempotent.
func (m Mover) MoveConsent(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	recs, err := Log(ctx, tn, sourceID)
	if err != nil {
		return err
	}
	if err := repoint(ctx, tn, recs, targetID); err != nil {
		return err
	}
	if len(recs) == 0 {
		// Nothing moved now, but a first pass may have moved records
		// before a crash; the rebuild below is cheap and exact.
		if p, err := profile.Get(ctx, tn, targetID); err != nil || len(p.Consent) == 0 {
			return nil
		}
	}
	return rebuild(ctx, tn, stamp(m.now), targetID)
}

// UnmoveConsent is an unmerge step: records first stored on one of
// origins go back from fromID to toID (the restored profile); both states
// are rebuilt. Records stored on the survivor after the merge stay there.
func (m Mover) UnmoveConsent(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, _ time.Time, _ []identity.Identifier) error {
	recs, err := Log(ctx, tn, fromID)
	if err != nil {
		return err
	}
	back := slices.DeleteFunc(recs, func(r Record) bool { return !slices.Contains(origins, r.OriginProfileID) })
	if err := repoint(ctx, tn, back, toID); err != nil {
		return err
	}
	for _, id := range []string{fromID, toID} {
		if err := rebuild(ctx, tn, stamp(m.now), id); err != nil {
			return err
		}
	}
	return nil
}

func repoint(ctx context.Context, tn store.Tenant, recs []Record, to string) error {
	for _, r := range recs {
		if r.OriginProfileID == "" {
			r.OriginProfileID = r.ProfileID
		}
		r.ProfileID = to
		if err := tn.C(ConsentLog).Put(ctx, r); err != nil {
			return fmt.Errorf("move consent record %s: %w", r.ID, err)
		}
	}
	return nil
}

// rebuild sets a profile's consent state from its log.
func rebuild(ctx context.Context, tn store.Tenant, now time.Time, profileID string) error {
	recs, err := Log(ctx, tn, profileID)
	if err != nil {
		return err
	}
	_, err = profile.UpdateAny(ctx, tn, profileID, now, func(p *profile.Profile) error {
		p.Consent = map[string][]rule.ConsentEntry{}
		for i := range recs {
			addEntry(p, &recs[i], now)
		}
		if len(p.Consent) == 0 {
			p.Consent = nil
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rebuild consent of %s: %w", profileID, err)
	}
	return nil
}
