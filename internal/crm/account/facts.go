package account

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/store"
)

// What account rule nodes read of accounts and links (package rollup
// adds the deals' and tickets' counts).

// Linked is one account a person is a contact of, with what a rule reads
// of it.
type Linked struct {
	ID       string
	Traits   map[string]any
	Contacts int64
}

// LinkedOf lists the accounts profileID is a contact of, with their
// traits and contact counts.
func LinkedOf(ctx context.Context, tn store.Tenant, profileID string) ([]Linked, error) {
	links, err := linksOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]Linked, 0, len(links))
	for _, l := range links {
		a, err := get(ctx, tn, l.AccountID)
		if apperr.CodeOf(err) == apperr.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		n, err := contactCount(ctx, tn, l.AccountID)
		if err != nil {
			return nil, err
		}
		out = append(out, Linked{ID: a.ID, Traits: a.Traits, Contacts: n})
	}
	return out, nil
}

// AllLinked lists, by person, the accounts each is a contact of (one
// pass over the accounts and one over the links: a preview, an ad-hoc
// list).
func AllLinked(ctx context.Context, tn store.Tenant) (map[string][]Linked, error) {
	accounts := map[string]*Linked{}
	err := tn.C(Accounts).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var a Account
		if err := bson.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("decode account: %w", err)
		}
		accounts[a.ID] = &Linked{ID: a.ID, Traits: userjson.PlainObject(a.Traits)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	var links []LinkDoc
	err = tn.C(AccountLinks).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var l LinkDoc
		if err := bson.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("decode link: %w", err)
		}
		if a, ok := accounts[l.AccountID]; ok {
			a.Contacts++
			links = append(links, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read links: %w", err)
	}
	// As LinkedOf reads them: a person's first MaxAccountsPerProfile
	// links by id.
	slices.SortFunc(links, func(a, b LinkDoc) int { return strings.Compare(a.ID, b.ID) })
	out := map[string][]Linked{}
	for _, l := range links {
		if len(out[l.ProfileID]) < MaxAccountsPerProfile {
			out[l.ProfileID] = append(out[l.ProfileID], *accounts[l.AccountID])
		}
	}
	return out, nil
}

func contactCount(ctx context.Context, tn store.Tenant, accountID string) (int64, error) {
	n, err := tn.C(AccountLinks).Count(ctx, store.Query{Index: AccountLinksByAccount, Eq: []any{accountID}})
	if err != nil {
		return 0, fmt.Errorf("count contacts of account %s: %w", accountID, err)
	}
	return n, nil
}
