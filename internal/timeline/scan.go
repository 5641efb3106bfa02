package timeline

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
	"github.com/halo-cdp/halo/store"
)

// Reads of the stored items for other domains (segment backfills and
// recounts, computed traits, privacy): the events collection is
// timeline's, and these are the only ways in.

// EventsOf calls fn with each stored item of a profile, oldest first.
func EventsOf(ctx context.Context, tn store.Tenant, profileID string, fn func(*Event) error) error {
	err := tn.C(Events).Each(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{profileID}, Limit: 1000}, func(raw bson.Raw) error {
		return decodeInto(raw, fn)
	})
	if err != nil {
		return fmt.Errorf("events of %s: %w", profileID, err)
	}
	return nil
}

// ScanEvents calls fn with every stored item of the workspace whose name
// keep accepts (nil: every item), by profile, then time. The name is read
// from the raw document, so the items skipped are never decoded.
func ScanEvents(ctx context.Context, tn store.Tenant, keep func(name string) bool, fn func(*Event) error) error {
	err := tn.C(Events).Each(ctx, store.Query{Index: EventsByProfileTime, Limit: 5000}, func(raw bson.Raw) error {
		if keep != nil {
			if name, _ := raw.Lookup("name").StringValueOK(); !keep(name) {
				return nil
			}
		}
		return decodeInto(raw, fn)
	})
	if err != nil {
		return fmt.Errorf("scan events: %w", err)
	}
	return nil
}

// decodeInto decodes one stored item and hands it to fn.
func decodeInto(raw bson.Raw, fn func(*Event) error) error {
	var ev Event
	if err := decodeEvent(raw, &ev); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	return fn(&ev)
}

// RawOf calls fn with each stored item of a profile as stored (a
// data-subject export).
func RawOf(ctx context.Context, tn store.Tenant, profileID string, fn func(bson.Raw) error) error {
	if err := tn.C(Events).Each(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{profileID}}, fn); err != nil {
		return fmt.Errorf("items of %s: %w", profileID, err)
	}
	return nil
}

// CountOf is how many items a profile holds (an index count).
func CountOf(ctx context.Context, tn store.Tenant, profileID string) (int64, error) {
	n, err := tn.C(Events).Count(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{profileID}})
	if err != nil {
		return 0, fmt.Errorf("count items of %s: %w", profileID, err)
	}
	return n, nil
}

// ProfilesStored lists the profiles (distinct, as the items name them:
// some may have been merged away since) of the items stored in [from,
// to): ids are time-ordered, so this is a range of the primary key
// (crash recovery, internal/ingest/journal).
func ProfilesStored(ctx context.Context, tn store.Tenant, from, to time.Time) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	q := store.Query{Index: store.ByID, Range: &store.Bound{Gte: store.IDAt(from), Lt: store.IDAt(to)}, Limit: 1000}
	err := tn.C(Events).Each(ctx, q, func(raw bson.Raw) error {
		if pid, ok := raw.Lookup("profileId").StringValueOK(); ok && !seen[pid] {
			seen[pid] = true
			out = append(out, pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("items stored from %s: %w", from.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// Stored is what analytics reads of a stored item: no person in it.
type Stored struct {
	ID         string // time-ordered (store.NewID): the order items were stored in
	Kind       string // KindEvent, KindInteraction
	Name       string
	Channel    string
	OccurredAt time.Time
}

// StoredAfter returns up to limit items stored after the item with id
// after ("": from the first) and drawn before before (store.IDAt), in id
// order: a reader that follows it from where it stopped sees every item
// once (rollups, behind the ingest journal's horizon). A zero before
// bounds nothing.
func StoredAfter(ctx context.Context, tn store.Tenant, after string, before time.Time, limit int) ([]Stored, error) {
	q := store.Query{Index: store.ByID, Limit: limit}
	if after != "" || !before.IsZero() {
		q.Range = &store.Bound{}
		if after != "" {
			q.Range.Gt = after
		}
		if !before.IsZero() {
			q.Range.Lt = store.IDAt(before)
		}
	}
	docs, err := tn.C(Events).Find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("items stored after %q: %w", after, err)
	}
	out := make([]Stored, 0, len(docs))
	for _, d := range docs {
		var s Stored
		s.ID, _ = d.Raw.Lookup("_id").StringValueOK()
		s.Kind, _ = d.Raw.Lookup("kind").StringValueOK()
		s.Name, _ = d.Raw.Lookup("name").StringValueOK()
		s.Channel, _ = d.Raw.Lookup("channel").StringValueOK()
		at, ok := d.Raw.Lookup("occurredAt").DateTimeOK()
		if !ok {
			return nil, fmt.Errorf("item %s has no occurredAt", s.ID)
		}
		s.OccurredAt = time.UnixMilli(at).UTC()
		out = append(out, s)
	}
	return out, nil
}

// Item is a stored item as a storage-order walk reads it: the fields
// readers group and filter by, the properties decoded only when asked
// for.
type Item struct {
	ProfileID, Kind, Name string
	OccurredAt            time.Time
	props                 bson.RawValue
}

// Properties decodes the item's properties (nil when it has none).
func (it *Item) Properties() (map[string]any, error) {
	if it.props.Type == 0 {
		return nil, nil
	}
	var out map[string]any
	if err := decodeProperties(it.props, &out); err != nil {
		return nil, fmt.Errorf("decode properties: %w", err)
	}
	return out, nil
}

// EachStored calls fn with every stored item of the workspace whose name
// keep accepts, in storage order: one sequential read of the collection,
// the fastest whole walk, for readers that group items themselves
// (analytics' funnels and grids). The item is reused: fn must not keep
// it.
func EachStored(ctx context.Context, tn store.Tenant, keep func(name string) bool, fn func(*Item) error) error {
	var it Item
	err := tn.C(Events).Each(ctx, store.Query{Index: store.ByID, Limit: 5000}, func(raw bson.Raw) error {
		it = Item{}
		err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
			switch string(key) {
			case "profileId":
				return decodeString(v, &it.ProfileID)
			case "kind":
				return decodeString(v, &it.Kind)
			case "name":
				return decodeString(v, &it.Name)
			case "occurredAt":
				return decodeTime(v, &it.OccurredAt)
			case "properties":
				it.props = v
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("decode item: %w", err)
		}
		if keep != nil && !keep(it.Name) {
			return nil
		}
		return fn(&it)
	})
	if err != nil {
		return fmt.Errorf("walk stored items: %w", err)
	}
	return nil
}
