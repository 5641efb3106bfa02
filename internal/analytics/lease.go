package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/store"
)

// Leases. One piece of work at a time writes a workspace's rollups: a
// fold round (roll.go) or an erasure (erase.go). It holds the lease on
// the workspace's cursor: Owner is its token, LeaseUntil when the lease
// lapses unless renewed. Taking and renewing are compare-and-swaps, and
// so is freeing, which only ever frees the caller's own token: a holder
// whose lease lapsed and was taken cannot free the new holder's.

// errLeaseLost stops a fold whose lease is about to lapse.
var errLeaseLost = errors.New("analytics: the rollup lease lapsed during a fold")

// held says the lease is someone's at now.
func (c *cursor) held(now time.Time) bool { return c.Owner != "" && now.Before(c.LeaseUntil) }

// lease takes ws's lease for token for d, if it is free, lapsed or
// token's already (an erasure resumed after a crash); nil if it is held
// by someone else. It creates the cursor of a workspace never folded.
func (s *Service) lease(ctx context.Context, sys store.Tenant, ws, token string, d time.Duration) (*cursor, error) {
	now := s.now()
	var cur cursor
	err := sys.C(Cursors).Get(ctx, ws, &cur)
	if errors.Is(err, store.ErrNotFound) {
		// A new cursor records every day it will fold.
		cur = cursor{ID: ws, Owner: token, LeaseUntil: now.Add(d), Days: map[string]int64{}, Tracked: true, Epoch: store.NewID(), Version: 1}
		if err := sys.C(Cursors).Insert(ctx, &cur); err != nil {
			if errors.Is(err, store.ErrDuplicateKey) {
				return nil, nil // another instance began it just now
			}
			return nil, fmt.Errorf("create rollup cursor: %w", err)
		}
		return &cur, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rollup cursor: %w", err)
	}
	if cur.held(now) && cur.Owner != token {
		return nil, nil
	}
	cur.Owner, cur.LeaseUntil = token, now.Add(d)
	if cur.Days == nil {
		cur.Days = map[string]int64{}
	}
	cur.Version++
	if err := sys.C(Cursors).Replace(ctx, &cur, cur.Version-1); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, nil
		}
		return nil, fmt.Errorf("take rollup lease: %w", err)
	}
	return &cur, nil
}

// updateHeld applies change to ws's cursor as stored and writes it back,
// if token holds the lease: errLeaseLost if it does not; an error that
// matches store.ErrConflict if the cursor was written meanwhile.
func (s *Service) updateHeld(ctx context.Context, sys store.Tenant, ws, token string, change func(*cursor)) error {
	var cur cursor
	if err := sys.C(Cursors).Get(ctx, ws, &cur); err != nil {
		return fmt.Errorf("read rollup cursor: %w", err)
	}
	if cur.Owner != token {
		return errLeaseLost
	}
	change(&cur)
	cur.Version++
	if err := sys.C(Cursors).Replace(ctx, &cur, cur.Version-1); err != nil {
		return fmt.Errorf("write rollup cursor: %w", err)
	}
	return nil
}

// renew extends token's lease on ws by d from now; false if token no
// longer holds it.
func (s *Service) renew(ctx context.Context, sys store.Tenant, ws, token string, d time.Duration) (bool, error) {
	err := s.updateHeld(ctx, sys, ws, token, func(c *cursor) { c.LeaseUntil = s.now().Add(d) })
	if errors.Is(err, errLeaseLost) || errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// release frees token's lease on ws; a lease that is no longer token's
// is left alone.
func (s *Service) release(ctx context.Context, sys store.Tenant, ws, token string) {
	err := s.updateHeld(ctx, sys, ws, token, func(c *cursor) { c.Owner, c.LeaseUntil = "", time.Time{} })
	if err != nil && !errors.Is(err, errLeaseLost) && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		slog.WarnContext(ctx, "analytics: free the rollup lease", "workspace", ws, "err", err)
	}
}
