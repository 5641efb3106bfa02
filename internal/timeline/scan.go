package timeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

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

// Stored is what analytics reads of a stored item: its owner only as
// the profile id, which analytics turns into a number (activity).
type Stored struct {
	ID         string // time-ordered (store.NewID): the order items were stored in
	ProfileID  string
	Kind       string // KindEvent, KindInteraction
	Name       string
	Channel    string
	OccurredAt time.Time
	props      bson.RawValue
}

// Properties decodes the item's properties (nil when it has none).
func (s *Stored) Properties() (map[string]any, error) {
	if s.props.Type == 0 {
		return nil, nil
	}
	var out map[string]any
	if err := decodeProperties(s.props, &out); err != nil {
		return nil, fmt.Errorf("decode properties of %s: %w", s.ID, err)
	}
	return out, nil
}

// StoredAfter returns up to limit items stored after the item with id
// after ("": from the first) and drawn before before (store.IDAt), in id
// order: a reader that follows it from where it stopped sees every item
// once (rollups, behind the ingest journal's horizon). A zero before
// bounds nothing. Only items named propsOf keep their properties (a
// copy: the batch's documents are not held for them).
func StoredAfter(ctx context.Context, tn store.Tenant, after string, before time.Time, limit int, propsOf string) ([]Stored, error) {
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
		s, err := stored(d.Raw)
		if err != nil {
			return nil, err
		}
		if propsOf == "" || s.Name != propsOf {
			s.props = bson.RawValue{}
		} else {
			s.props.Value = bytes.Clone(s.props.Value)
		}
		out = append(out, s)
	}
	return out, nil
}

// StoredOf calls fn with each stored item of a profile, oldest first, as
// Stored: the fields read, nothing decoded.
func StoredOf(ctx context.Context, tn store.Tenant, profileID string, fn func(Stored) error) error {
	err := tn.C(Events).Each(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{profileID}, Limit: 1000}, func(raw bson.Raw) error {
		s, err := stored(raw)
		if err != nil {
			return err
		}
		return fn(s)
	})
	if err != nil {
		return fmt.Errorf("items of %s: %w", profileID, err)
	}
	return nil
}

func stored(raw bson.Raw) (Stored, error) {
	var s Stored
	s.ID, _ = raw.Lookup("_id").StringValueOK()
	s.ProfileID, _ = raw.Lookup("profileId").StringValueOK()
	s.Kind, _ = raw.Lookup("kind").StringValueOK()
	s.Name, _ = raw.Lookup("name").StringValueOK()
	s.Channel, _ = raw.Lookup("channel").StringValueOK()
	s.props, _ = raw.LookupErr("properties")
	at, ok := raw.Lookup("occurredAt").DateTimeOK()
	if !ok {
		return s, fmt.Errorf("item %s has no occurredAt", s.ID)
	}
	s.OccurredAt = time.UnixMilli(at).UTC()
	return s, nil
}

// Item is a stored item as a storage-order walk reads it: the fields
// readers group and filter by, the properties decoded only when asked
// for.
type Item struct {
	ProfileID, Kind, Name string
	Channel               string
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
// keep accepts, walking the collection in storage order (a sequential
// read, the fastest whole walk) in parts spans of it side by side, for
// readers that group items themselves (analytics' funnels and grids).
// Calls for one part come one at a time, in storage order; parts run
// concurrently, so fn keeps each part's state apart. The name is checked
// before anything else is decoded; the item is reused: fn must not keep
// it.
func EachStored(ctx context.Context, tn store.Tenant, parts int, keep func(name []byte) bool, fn func(part int, it *Item) error) error {
	spans, err := storedSpans(ctx, tn, parts)
	if err != nil {
		return err
	}
	// The first error ends the other parts too.
	g, ctx := errgroup.WithContext(ctx)
	for p, r := range spans {
		g.Go(func() error { return eachStoredIn(ctx, tn, r, keep, func(it *Item) error { return fn(p, it) }) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("walk stored items: %w", err)
	}
	return nil
}

// storedSpans splits the items' ids into at most parts ranges of equal
// storage time (ids are time-ordered): from the first item's to the
// last's.
func storedSpans(ctx context.Context, tn store.Tenant, parts int) ([]*store.Bound, error) {
	if parts <= 1 {
		return []*store.Bound{nil}, nil
	}
	edge := func(desc bool) (time.Time, bool, error) {
		docs, err := tn.C(Events).Find(ctx, store.Query{Index: store.ByID, Desc: desc, Limit: 1})
		if err != nil || len(docs) == 0 {
			return time.Time{}, false, err
		}
		id, _ := docs[0].Raw.Lookup("_id").StringValueOK()
		t, ok := store.IDTime(id)
		return t, ok, nil
	}
	first, ok1, err := edge(false)
	if err != nil {
		return nil, fmt.Errorf("first stored item: %w", err)
	}
	last, ok2, err := edge(true)
	if err != nil {
		return nil, fmt.Errorf("last stored item: %w", err)
	}
	if !ok1 || !ok2 || !last.After(first) {
		return []*store.Bound{nil}, nil
	}
	out := make([]*store.Bound, parts)
	for p := range out {
		out[p] = &store.Bound{}
		if p > 0 {
			out[p].Gte = store.IDAt(first.Add(last.Sub(first) * time.Duration(p) / time.Duration(parts)))
		}
		if p < parts-1 {
			out[p].Lt = store.IDAt(first.Add(last.Sub(first) * time.Duration(p+1) / time.Duration(parts)))
		}
	}
	return out, nil
}

// errSkipItem stops the walk of an item whose name is not kept.
var errSkipItem = errors.New("skip item")

// eachStoredIn walks the items of one id range (nil: all).
func eachStoredIn(ctx context.Context, tn store.Tenant, r *store.Bound, keep func(name []byte) bool, fn func(*Item) error) error {
	var (
		it            Item
		pid, kind, at bson.RawValue
	)
	return tn.C(Events).Each(ctx, store.Query{Index: store.ByID, Range: r, Limit: 1000}, func(raw bson.Raw) error {
		it, pid, kind, at = Item{}, bson.RawValue{}, bson.RawValue{}, bson.RawValue{}
		err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
			switch string(key) {
			case "profileId":
				pid = v
			case "kind":
				kind = v
			case "name":
				name, ok := rawString(v)
				if !ok || keep != nil && !keep(name) {
					return errSkipItem
				}
				it.Name = string(name)
			case "occurredAt":
				at = v
			case "channel":
				if c, ok := rawString(v); ok {
					it.Channel = string(c)
				}
			case "properties":
				it.props = v
			}
			return nil
		})
		if errors.Is(err, errSkipItem) {
			return nil
		}
		if err == nil && pid.Type != 0 {
			err = decodeString(pid, &it.ProfileID)
		}
		if err == nil && kind.Type != 0 {
			err = decodeString(kind, &it.Kind)
		}
		if err == nil && at.Type != 0 {
			err = decodeTime(at, &it.OccurredAt)
		}
		if err != nil {
			return fmt.Errorf("decode item: %w", err)
		}
		return fn(&it)
	})
}

// rawString is a BSON string's bytes, without copying them.
func rawString(v bson.RawValue) ([]byte, bool) {
	if v.Type != bson.TypeString || len(v.Value) < 5 {
		return nil, false
	}
	return v.Value[4 : len(v.Value)-1], true
}
