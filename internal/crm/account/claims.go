package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// An identifier belongs to one account: the identities collection's
// unique (type, value) index decides who holds it. An account claims its
// identifiers before its document is stored (or changed), so that a
// refused claim stores nothing, and lists them on its document once
// stored. A claim whose account is missing, or does not list it, was
// left by a crash or a write that lost its race: once claimGrace has
// passed since it was claimed, the next claimer takes it over.

// claimGrace is how long a claim its account does not list is taken for
// a write still under way.
const claimGrace = time.Minute

type claimDoc struct {
	ID        string    `bson:"_id"`
	Type      string    `bson:"type"`
	Value     string    `bson:"value"`
	AccountID string    `bson:"accountId"`
	ClaimedAt time.Time `bson:"claimedAt"`
	Version   int64     `bson:"version"`
}

// claimAll claims ids for accountID and returns those this call claimed
// (not those the account held already). If one is held by another
// account, it gives back what it claimed and answers CONFLICT.
func (s *Service) claimAll(ctx context.Context, tn store.Tenant, accountID string, ids []Identifier) ([]Identifier, error) {
	var claimed []Identifier
	for _, id := range ids {
		mine, err := s.claim(ctx, tn, accountID, id)
		if err != nil {
			s.release(ctx, tn, accountID, claimed)
			return nil, err
		}
		if mine {
			claimed = append(claimed, id)
		}
	}
	return claimed, nil
}

// claim claims id for accountID: true when this call claimed it, false
// when the account held it already.
func (s *Service) claim(ctx context.Context, tn store.Tenant, accountID string, id Identifier) (bool, error) {
	c := tn.C(AccountIdentities)
	for range 3 {
		now := s.clock()
		err := c.Insert(ctx, claimDoc{ID: store.NewID(), Type: id.Type, Value: id.Value, AccountID: accountID, ClaimedAt: now, Version: 1})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrDuplicateKey) {
			return false, fmt.Errorf("claim %s for account %s: %w", id.Type, accountID, err)
		}
		var held claimDoc
		err = c.FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held)
		if errors.Is(err, store.ErrNotFound) {
			continue // given back meanwhile: claim it again
		}
		if err != nil {
			return false, fmt.Errorf("read the holder of %s: %w", id.Type, err)
		}
		if held.AccountID == accountID {
			return false, nil
		}
		holder, err := get(ctx, tn, held.AccountID)
		if err != nil && apperr.CodeOf(err) != apperr.NotFound {
			return false, err
		}
		if err == nil && holder.Holds(id) {
			return false, apperr.New(apperr.Conflict, "%s %q belongs to account %s", id.Type, id.Value, held.AccountID)
		}
		if now.Sub(held.ClaimedAt) < claimGrace {
			return false, apperr.New(apperr.Conflict, "%s %q is being claimed by another account: try again", id.Type, id.Value)
		}
		prev := held.Version
		held.AccountID, held.ClaimedAt, held.Version = accountID, now, prev+1
		if err := c.Replace(ctx, held, prev); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return false, apperr.New(apperr.Conflict, "%s %q is being claimed by another account: try again", id.Type, id.Value)
			}
			return false, fmt.Errorf("take over %s: %w", id.Type, err)
		}
		return true, nil
	}
	return false, apperr.New(apperr.Conflict, "%s %q is being claimed by another account: try again", id.Type, id.Value)
}

// release gives back ids accountID claimed in a write that did not land.
// Best effort: a claim left behind is taken over once claimGrace has
// passed (see claim).
func (s *Service) release(ctx context.Context, tn store.Tenant, accountID string, ids []Identifier) {
	c := tn.C(AccountIdentities)
	for _, id := range ids {
		var held claimDoc
		err := c.FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held)
		if err == nil && held.AccountID == accountID {
			err = c.Delete(ctx, held.ID)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			slog.WarnContext(ctx, "accounts: give back an identifier", "account", accountID, "type", id.Type, "err", err)
		}
	}
}

// releaseDropped gives back ids an update dropped, unless the account
// lists them again by now (a later update re-adding one keeps it).
func (s *Service) releaseDropped(ctx context.Context, tn store.Tenant, accountID string, ids []Identifier) {
	if len(ids) == 0 {
		return
	}
	a, err := get(ctx, tn, accountID)
	if err != nil {
		return // gone or unreadable: the claims are leftovers, taken over later
	}
	var drop []Identifier
	for _, id := range ids {
		if !a.Holds(id) {
			drop = append(drop, id)
		}
	}
	s.release(ctx, tn, accountID, drop)
}

// ownerOf is the account holding id, "" when none does (a claim whose
// account does not exist or does not list it holds nothing).
func ownerOf(ctx context.Context, tn store.Tenant, id Identifier) (string, error) {
	var held claimDoc
	err := tn.C(AccountIdentities).FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up account %s: %w", id.Type, err)
	}
	a, err := get(ctx, tn, held.AccountID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !a.Holds(id) {
		return "", nil
	}
	return a.ID, nil
}
