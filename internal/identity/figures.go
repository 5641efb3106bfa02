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
// the profile became known. One walk of the identifiers in storage order
// (a sequential read), holding each known profile's time until the end.
func EachKnown(ctx context.Context, tn store.Tenant, fn func(profileID string, at time.Time) error) error {
	first := map[string]time.Time{}
	err := tn.C(Identities).Each(ctx, store.Query{Index: store.ByID, Limit: 5000}, func(raw bson.Raw) error {
		typ, _ := raw.Lookup("type").StringValueOK()
		if Anonymous(typ) {
			return nil
		}
		pid, _ := raw.Lookup("profileId").StringValueOK()
		seen, ok := raw.Lookup("firstSeenAt").TimeOK()
		if !ok {
			return nil
		}
		if t, had := first[pid]; !had || seen.Before(t) {
			first[pid] = seen
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identifiers: %w", err)
	}
	for pid, at := range first {
		if err := fn(pid, at); err != nil {
			return err
		}
	}
	return nil
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
