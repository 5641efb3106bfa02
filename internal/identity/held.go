package identity

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Segment rules ask which identifier types a profile holds ("known people
// with an email"), never the values. The identities collection is the
// one place that knows: a copy on the profile document would need
// keeping in step with every attach, merge, unmerge and erasure, and
// with the documents stored before it existed.

// TypesHeld returns the identifier types profileID holds, sorted, each
// once: one read of the profile's identities.
func TypesHeld(ctx context.Context, tn store.Tenant, profileID string) ([]string, error) {
	docs, err := tn.C(Identities).Find(ctx, store.Query{Index: IdentitiesByProfile, Eq: []any{profileID}})
	if err != nil {
		return nil, fmt.Errorf("identifier types of profile %s: %w", profileID, err)
	}
	var out []string
	for _, d := range docs {
		if typ, ok := d.Raw.Lookup("type").StringValueOK(); ok && !slices.Contains(out, typ) {
			out = append(out, typ)
		}
	}
	slices.Sort(out)
	return out, nil
}

// HoldersOf returns the profiles holding at least one identifier of typ:
// one read of that type's identities, for evaluating a rule over every
// profile at once (a preview, a list).
func HoldersOf(ctx context.Context, tn store.Tenant, typ string) (map[string]bool, error) {
	out := map[string]bool{}
	err := tn.C(Identities).Each(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{typ}, Limit: 5000}, func(raw bson.Raw) error {
		if pid, ok := raw.Lookup("profileId").StringValueOK(); ok {
			out[pid] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("holders of %s identifiers: %w", typ, err)
	}
	return out, nil
}

// EmailsAt calls fn once with each profile holding an email that match
// accepts (the accounts domain decides which domains are whose): one read
// of the workspace's emails, for the people an account's new domain
// links.
func EmailsAt(ctx context.Context, tn store.Tenant, match func(email string) bool, fn func(profileID string) error) error {
	seen := map[string]bool{}
	err := tn.C(Identities).Each(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{Email}, Limit: 5000}, func(raw bson.Raw) error {
		v, _ := raw.Lookup("value").StringValueOK()
		if !match(v) {
			return nil
		}
		pid, ok := raw.Lookup("profileId").StringValueOK()
		if !ok || seen[pid] {
			return nil
		}
		seen[pid] = true
		return fn(pid)
	})
	if err != nil {
		return fmt.Errorf("emails: %w", err)
	}
	return nil
}
