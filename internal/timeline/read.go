package timeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Filter narrows a timeline read.
type Filter struct {
	Kinds        []string // KindEvent, KindInteraction
	Names        []string
	Since, Until *time.Time // occurredAt >= Since, < Until
}

// Page is one page of a timeline, newest first.
type Page struct {
	Items   []*Event
	Cursors []string
	HasNext bool
	// Resume is set when the scan cap (maxScan) cut the page short: the
	// key of the last item scanned, which may be a filtered-out item past
	// the last one returned. The next page must start after it, not after
	// the last item; the page may even have no items at all. Empty
	// otherwise (continue from the last cursor).
	Resume string
}

// Next is the position the following page starts after: Resume if the
// scan cap cut the page short, else the last item's cursor ("" for an
// empty page that reached the end).
func (p Page) Next() string {
	if p.Resume != "" {
		return p.Resume
	}
	if len(p.Cursors) == 0 {
		return ""
	}
	return p.Cursors[len(p.Cursors)-1]
}

// maxScan bounds how many stored items one read may skip over when
// filters are selective, so a page costs at most this many index rows.
const maxScan = 5000

// Read returns up to first items of the profile's timeline, newest first,
// after the cursor. Cursors are keyset positions (occurredAt, id), stable
// under concurrent inserts.
//
// With kind or name filters a page scans at most maxScan stored items. A
// page cut short by that cap has HasNext and Resume set, even when it has
// no items (a run of more than maxScan filtered-out items), so following
// Next() page by page reaches every matching item.
func Read(ctx context.Context, tn store.Tenant, profileID string, first int, after string, f Filter) (Page, error) {
	q := f.query(profileID)
	q.Desc, q.After = true, after
	filtered := f.filtered()
	batch := first + 1
	if filtered {
		batch = max(2*(first+1), 100)
	}
	var page Page
	scanned := 0
	for {
		q.Limit = batch
		docs, err := tn.C(Events).Find(ctx, q)
		if err != nil {
			if errors.Is(err, store.ErrBadCursor) {
				return Page{}, apperr.Invalid("after", "malformed cursor")
			}
			return Page{}, fmt.Errorf("read timeline of %s: %w", profileID, err)
		}
		for _, d := range docs {
			scanned++
			var ev Event
			if err := decodeEvent(d.Raw, &ev); err != nil {
				return Page{}, fmt.Errorf("decode event: %w", err)
			}
			q.After = d.Key
			if !f.matches(ev.Kind, ev.Name) {
				continue
			}
			if len(page.Items) == first {
				page.HasNext = true
				return page, nil
			}
			ev.normalise()
			page.Items = append(page.Items, &ev)
			page.Cursors = append(page.Cursors, d.Key)
		}
		if len(docs) < batch {
			return page, nil
		}
		if scanned >= maxScan {
			// Say there may be more, and where the scan stopped: the
			// client continues from there, past the items already
			// rejected, not from its last item (which may be none).
			page.HasNext = true
			page.Resume = q.After
			return page, nil
		}
	}
}

// Count is how many items of the profile's timeline f selects: Read's
// pages put together. Without kinds or names it is an index count; with
// them, the items in f's time range are read (the profile's, not the
// workspace's), a thousand per store call.
func Count(ctx context.Context, tn store.Tenant, profileID string, f Filter) (int64, error) {
	q := f.query(profileID)
	c := tn.C(Events)
	if !f.filtered() {
		n, err := c.Count(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("count timeline of %s: %w", profileID, err)
		}
		return n, nil
	}
	var n int64
	err := c.Each(ctx, q, func(raw bson.Raw) error {
		kind, _ := raw.Lookup("kind").StringValueOK()
		name, _ := raw.Lookup("name").StringValueOK()
		if f.matches(kind, name) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count timeline of %s: %w", profileID, err)
	}
	return n, nil
}

// query is the index read of f's time range on the profile's timeline.
func (f Filter) query(profileID string) store.Query {
	q := store.Query{Index: EventsByProfileTime, Eq: []any{profileID}}
	if f.Since != nil || f.Until != nil {
		q.Range = &store.Bound{}
		if f.Since != nil {
			q.Range.Gte = *f.Since
		}
		if f.Until != nil {
			q.Range.Lt = *f.Until
		}
	}
	return q
}

// filtered says f selects by kind or name, which no index holds.
func (f Filter) filtered() bool { return len(f.Kinds) > 0 || len(f.Names) > 0 }

func (f Filter) matches(kind, name string) bool {
	return (len(f.Kinds) == 0 || slices.Contains(f.Kinds, kind)) && (len(f.Names) == 0 || slices.Contains(f.Names, name))
}

// Get returns one timeline item by id (store.ErrNotFound if absent).
func Get(ctx context.Context, tn store.Tenant, id string) (*Event, error) {
	var ev Event
	if err := tn.C(Events).Get(ctx, id, &ev); err != nil {
		return nil, err
	}
	ev.normalise()
	return &ev, nil
}

// Position is a place in a newest-first order of items from several
// timelines: (occurredAt, id), the key order of every timeline read.
type Position struct {
	At time.Time
	ID string
}

// Before tells whether (at, id) comes after p in newest-first order.
func (p Position) Before(at time.Time, id string) bool {
	return at.Before(p.At) || at.Equal(p.At) && id < p.ID
}

// NewestFirst orders items as timelines show them: newest first, then by
// id (the order of Position and of the store's descending reads).
func NewestFirst(a, b *Event) int {
	if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// windows are the spans ReadBeforeAll looks back over, one after the
// other, until a page is full (0: all the rest).
var windows = []time.Duration{24 * time.Hour, 8 * 24 * time.Hour, 64 * 24 * time.Hour, 512 * 24 * time.Hour, 0}

// ReadBeforeAll returns up to limit items of the timelines of profileIDs
// together, newest first, that come after p in that order (all when p is
// nil) and that keep accepts: for reads that merge several timelines,
// which share no cursor. One read per MaxIn people: the store merges
// their items by time. It reads the day before p (or now, the caller's
// clock) first, then 8, 64 and 512 days back, then the rest, and stops
// once a page is full: a read walks the items of its window, and people
// with long histories have many.
func ReadBeforeAll(ctx context.Context, tn store.Tenant, profileIDs []string, p *Position, limit int, keep func(*Event) bool, now time.Time) ([]*Event, error) {
	top := now
	if p != nil {
		top = p.At
	}
	var out []*Event
	var hi *time.Time // the previous window's start: this one ends there
	for _, span := range windows {
		b := &store.Bound{}
		switch {
		case hi != nil:
			b.Lt = *hi
		case p != nil:
			b.Lte = p.At
		}
		var lo *store.Bound
		if span > 0 {
			start := top.Add(-span)
			b.Gte, lo, hi = start, &store.Bound{Gte: start}, &start
		}
		var got []*Event
		for in := range store.InLists(profileIDs) {
			q := store.Query{Index: EventsByProfileTime, In: in, Merged: true, Desc: true, Range: b}
			evs, err := Before(ctx, tn.C(Events), q, lo, p, limit-len(out), decodeStored, keep)
			if err != nil {
				return nil, fmt.Errorf("read the timelines of %d people: %w", len(profileIDs), err)
			}
			got = append(got, evs...)
		}
		slices.SortFunc(got, NewestFirst)
		if out = append(out, got[:min(len(got), limit-len(out))]...); len(out) == limit {
			break
		}
	}
	for _, ev := range out {
		ev.normalise()
	}
	return out, nil
}

// Before reads q, a descending read of collection c bounded by its Range,
// after p: up to limit items, decoded by decode, that keep accepts (nil:
// all). Past its first page it goes on from its cursor within floor (nil:
// to the end). It pages any collection of timeline-like items (an
// account's own, package accountfeed).
func Before(ctx context.Context, c store.Collection, q store.Query, floor *store.Bound, p *Position, limit int,
	decode func(bson.Raw) (*Event, error), keep func(*Event) bool) ([]*Event, error) {
	var out []*Event
	for len(out) < limit {
		q.Limit = limit - len(out) + 1
		docs, err := c.Find(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			q.After = d.Key
			ev, err := decode(d.Raw)
			if err != nil {
				return nil, err
			}
			if p != nil && !p.Before(ev.OccurredAt, ev.ID) || keep != nil && !keep(ev) {
				continue
			}
			if out = append(out, ev); len(out) == limit {
				break
			}
		}
		if len(docs) < q.Limit {
			break
		}
		q.Range = floor // the cursor (After) carries on from here
	}
	return out, nil
}

// decodeStored decodes a stored event (ReadBeforeAll normalises those it
// keeps).
func decodeStored(raw bson.Raw) (*Event, error) {
	var ev Event
	if err := decodeEvent(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &ev, nil
}

// Key is p as a cursor: "<unix milliseconds>_<id>".
func (p Position) Key() string { return strconv.FormatInt(p.At.UnixMilli(), 10) + "_" + p.ID }

// ParsePosition reads a Key; false when s is not one.
func ParsePosition(s string) (Position, bool) {
	ms, id, ok := strings.Cut(s, "_")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 512 {
		return Position{}, false
	}
	return Position{At: time.UnixMilli(n).UTC(), ID: id}, true
}
