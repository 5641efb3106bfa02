package identity

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Anonymous tells whether an identifier type names a browser or a device
// rather than a person: a profile holding only such identifiers is not
// known yet.
func Anonymous(idType string) bool { return idType == AnonymousID || idType == DeviceID }

// EachKnown calls fn once per profile that holds an identifier of a
// person (not Anonymous), with the first time one of those was seen: when
// the profile became known. One walk of the identifiers by profile.
func EachKnown(ctx context.Context, tn store.Tenant, fn func(profileID string, at time.Time) error) error {
	var (
		cur   string
		first time.Time
	)
	flush := func() error {
		if cur == "" || first.IsZero() {
			return nil
		}
		return fn(cur, first)
	}
	err := tn.C(Identities).Each(ctx, store.Query{Index: IdentitiesByProfile}, func(raw bson.Raw) error {
		pid, _ := raw.Lookup("profileId").StringValueOK()
		typ, _ := raw.Lookup("type").StringValueOK()
		seen, ok := raw.Lookup("firstSeenAt").TimeOK()
		if pid != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, first = pid, time.Time{}
		}
		if ok && !Anonymous(typ) && (first.IsZero() || seen.Before(first)) {
			first = seen
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identifiers by profile: %w", err)
	}
	return flush()
}

// EachMergeEvent calls fn with every merge and unmerge that took effect
// in [from, to), by its time: kind is KindMerge (including merges undone
// later: they happened) or KindUnmerge. Refused, abandoned and running
// records and conflicts are not merges.
func EachMergeEvent(ctx context.Context, tn store.Tenant, from, to time.Time, fn func(kind string, at time.Time) error) error {
	for _, status := range []string{statusDone, statusUndone} {
		q := store.Query{Index: MergesByStatus, Eq: []any{status}, Range: &store.Bound{Gte: store.DateTime(from), Lt: store.DateTime(to)}, Limit: 200}
		err := tn.C(Merges).Each(ctx, q, func(raw bson.Raw) error {
			kind, _ := raw.Lookup("kind").StringValueOK()
			at, ok := raw.Lookup("at").TimeOK()
			if !ok || (kind != KindMerge && kind != KindUnmerge) {
				return nil
			}
			return fn(kind, at)
		})
		if err != nil {
			return fmt.Errorf("%s merge records: %w", status, err)
		}
	}
	return nil
}
