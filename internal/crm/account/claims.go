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
// refused claim stores nothing. A claim left by a crash before the
// document was stored names an account that does not exist: once
// claimGrace has passed, the next claimer takes it over.

// claimGrace is how long a claim naming a missing account is taken for
// a create still under way.
const claimGrace = time.Minute

type claimDoc struct {
	ID        string `bson:"_id"`
	Type      string `bson:"type"`
	Value     string `bson:"value"`
	AccountID string `bson:"accountId"`
	Version   int64  `bson:"version"`
}

// claimAll claims ids for accountID; if one is held by another account,
// it gives back those it claimed and answers CONFLICT.
func (s *Service) claimAll(ctx context.Context, tn store.Tenant, accountID string, ids []Identifier) error {
	for i, id := range ids {
		if err := claim(ctx, tn, accountID, id); err != nil {
			s.release(ctx, tn, accountID, ids[:i])
			return err
		}
	}
	return nil
}

func claim(ctx context.Context, tn store.Tenant, accountID string, id Identifier) error {
	c := tn.C(AccountIdentities)
	doc := claimDoc{ID: store.NewID(), Type: id.Type, Value: id.Value, AccountID: accountID, Version: 1}
	err := c.Insert(ctx, doc)
	if err == nil || !errors.Is(err, store.ErrDuplicateKey) {
		if err != nil {
			return fmt.Errorf("claim %s for account %s: %w", id.Type, accountID, err)
		}
		return nil
	}
	var held claimDoc
	if err := c.FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held); err != nil {
		return fmt.Errorf("read the holder of %s: %w", id.Type, err)
	}
	if held.AccountID == accountID {
		return nil
	}
	if _, err := get(ctx, tn, held.AccountID); apperr.CodeOf(err) != apperr.NotFound {
		if err != nil {
			return err
		}
		return apperr.New(apperr.Conflict, "%s %q belongs to account %s", id.Type, id.Value, held.AccountID)
	}
	// A create stores its account right after its claims: a claim whose
	// account is missing for longer than claimGrace was left by a crash.
	if at, ok := store.IDTime(held.ID); !ok || time.Since(at) < claimGrace {
		return apperr.New(apperr.Conflict, "%s %q is being claimed by another account: try again", id.Type, id.Value)
	}
	prev := held.Version
	held.AccountID, held.Version = accountID, prev+1
	if err := c.Replace(ctx, held, prev); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.Conflict, "%s %q is being claimed by another account: try again", id.Type, id.Value)
		}
		return fmt.Errorf("take over %s: %w", id.Type, err)
	}
	return nil
}

// release gives back ids accountID holds. Best effort: a claim left
// behind names accountID, and is taken over by the next claimer if the
// account does not hold it (see claim).
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

// ownerOf is the account holding id, "" when none does.
func ownerOf(ctx context.Context, tn store.Tenant, id Identifier) (string, error) {
	var held claimDoc
	err := tn.C(AccountIdentities).FindOne(ctx, store.Query{Index: AccountIdentitiesByValue, Eq: []any{id.Type, id.Value}}, &held)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up account %s: %w", id.Type, err)
	}
	return held.AccountID, nil
}

// Identifiers lists the identifiers account id holds.
func (s *Service) Identifiers(ctx context.Context, tn store.Tenant, accountID string) ([]Identifier, error) {
	docs, err := tn.C(AccountIdentities).Find(ctx, store.Query{Index: AccountIdentitiesByAccount, Eq: []any{accountID}})
	if err != nil {
		return nil, fmt.Errorf("identifiers of account %s: %w", accountID, err)
	}
	out := make([]Identifier, 0, len(docs))
	for _, d := range docs {
		var doc claimDoc
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decode account identifier: %w", err)
		}
		out = append(out, Identifier{Type: doc.Type, Value: doc.Value})
	}
	return out, nil
}
