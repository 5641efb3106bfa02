package analytics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Activity. A distinct count does not add up (the people active on two
// days are not the sum of each day's), so active-profile series cannot
// come from the rollups' counts. The roller keeps, per workspace and UTC
// day, which profiles had an event in which quarter hours of it: a
// bucket in any zone is then a union of quarter hours, and its count the
// profiles with a bit set in it (active.go). Profiles appear as numbers
// (numbers.go), not ids. Bits are a set: folding an event twice sets
// nothing new, so the activity fold needs no per-day position of its
// own, only the cursor's (cursor.Active).
//
// Events move between profiles on merges and unmerges, and leave with an
// erasure: moves.go keeps the days true to the stored events' owners.

// mask is the quarter hours of a UTC day a profile was active in.
type mask [2]uint64

func (m *mask) set(q int)         { m[q>>6] |= 1 << (q & 63) }
func (m mask) or(o mask) mask     { return mask{m[0] | o[0], m[1] | o[1]} }
func (m mask) zero() bool         { return m[0] == 0 && m[1] == 0 }
func (m mask) has(q int) bool     { return m[q>>6]&(1<<(q&63)) != 0 }
func (m mask) first() (int, bool) { return m.next(0) }

// next is the first quarter at or after q that is set.
func (m mask) next(q int) (int, bool) {
	for ; q < quarters; q = (q | 63) + 1 {
		if w := m[q>>6] >> (q & 63); w != 0 {
			return q + bits.TrailingZeros64(w), true
		}
	}
	return 0, false
}

// entry is one profile's activity on a day.
type entry struct {
	n uint32 // the profile's number
	m mask
}

// activeDay is the activity document of one UTC day of a workspace.
type activeDay struct {
	ID          string    `bson:"_id"` // YYYY-MM-DD
	WorkspaceID string    `bson:"workspaceId"`
	Day         time.Time `bson:"day"` // UTC midnight
	// P packs the day's entries in number order: per entry the number's
	// distance from the previous one (uvarint), then its quarter hours,
	// one byte each, all but the last with the high bit set. A profile
	// active once a day costs some three bytes.
	P       []byte `bson:"p"`
	Version int64  `bson:"version"`
}

// pack encodes entries, which are in number order.
func pack(entries []entry) []byte {
	b := make([]byte, 0, len(entries)*3)
	var prev uint32
	for _, e := range entries {
		if e.m.zero() {
			continue
		}
		b = binary.AppendUvarint(b, uint64(e.n-prev))
		prev = e.n
		q, _ := e.m.first()
		for {
			nq, more := e.m.next(q + 1)
			if !more {
				b = append(b, byte(q))
				break
			}
			b = append(b, byte(q)|0x80)
			q = nq
		}
	}
	return b
}

// unpack calls fn with each entry of p, in number order.
func unpack(p []byte, fn func(entry)) error {
	var n uint32
	for len(p) > 0 {
		d, k := binary.Uvarint(p)
		if k <= 0 || d > 1<<31 {
			return errors.New("activity: a number is unreadable")
		}
		n += uint32(d)
		p = p[k:]
		var m mask
		for {
			if len(p) == 0 {
				return errors.New("activity: an entry ends early")
			}
			q := int(p[0] & 0x7f)
			if q >= quarters {
				return fmt.Errorf("activity: quarter %d", q)
			}
			m.set(q)
			last := p[0]&0x80 == 0
			p = p[1:]
			if last {
				break
			}
		}
		fn(entry{n, m})
	}
	return nil
}

// entries decodes the day's entries.
func (d *activeDay) entries() ([]entry, error) {
	var out []entry
	err := unpack(d.P, func(e entry) { out = append(out, e) })
	if err != nil {
		return nil, fmt.Errorf("activity of %s: %w", d.ID, err)
	}
	return out, nil
}

// merged is have with add ORed in; both are in number order.
func merged(have, add []entry) []entry {
	out := make([]entry, 0, len(have)+len(add))
	i, j := 0, 0
	for i < len(have) || j < len(add) {
		switch {
		case j == len(add) || (i < len(have) && have[i].n < add[j].n):
			out = append(out, have[i])
			i++
		case i == len(have) || add[j].n < have[i].n:
			out = append(out, add[j])
			j++
		default:
			out = append(out, entry{have[i].n, have[i].m.or(add[j].m)})
			i, j = i+1, j+1
		}
	}
	return out
}

// dayEntries gathers entries by UTC day, one per number.
type dayEntries map[string]map[uint32]mask

func (de dayEntries) add(n uint32, at time.Time) {
	id := dayID(at)
	m, ok := de[id]
	if !ok {
		m = map[uint32]mask{}
		de[id] = m
	}
	k := m[n]
	k.set(quarterOf(at))
	m[n] = k
}

// sorted is day id's entries in number order.
func (de dayEntries) sorted(id string) []entry {
	out := make([]entry, 0, len(de[id]))
	for n, m := range de[id] {
		out = append(out, entry{n, m})
	}
	slices.SortFunc(out, func(a, b entry) int { return int(int64(a.n) - int64(b.n)) })
	return out
}

// foldActive sets the bits of the events among items (interactions are
// not activity) on their days, numbering the profiles new to the
// workspace's activity. It runs under the rollup lease (cur, held).
func (s *Service) foldActive(ctx context.Context, tn, sys store.Tenant, cur *cursor, items []timeline.Stored, deadline time.Time) error {
	var owners []string
	for _, it := range items {
		if it.Kind == timeline.KindEvent {
			owners = append(owners, it.ProfileID)
		}
	}
	if len(owners) == 0 {
		return nil
	}
	nums, err := s.number(ctx, tn, sys, cur, owners)
	if err != nil {
		return err
	}
	add := dayEntries{}
	for _, it := range items {
		if it.Kind == timeline.KindEvent {
			add.add(nums[it.ProfileID], it.OccurredAt)
		}
	}
	return writeActive(ctx, tn, add, nil, deadline)
}

// writeActive writes the days of add, each with add's entries ORed in
// and, first, the numbers of drop taken out (moves.go).
func writeActive(ctx context.Context, tn store.Tenant, add dayEntries, drop map[string]map[uint32]bool, deadline time.Time) error {
	ids := make([]string, 0, len(add)+len(drop))
	for id := range add {
		ids = append(ids, id)
	}
	for id := range drop {
		if _, ok := add[id]; !ok {
			ids = append(ids, id)
		}
	}
	errs := make([]error, len(ids))
	fns := make([]func(context.Context), len(ids))
	for i, id := range ids {
		fns[i] = func(ctx context.Context) {
			errs[i] = writeActiveDay(ctx, tn, id, add.sorted(id), drop[id], deadline)
		}
	}
	// Independent days: written together (one commit on the embedded
	// engine), a few dozen at a time.
	for chunk := range slices.Chunk(fns, 64) {
		store.Together(ctx, chunk...)
	}
	return errors.Join(errs...)
}

func writeActiveDay(ctx context.Context, tn store.Tenant, id string, add []entry, drop map[uint32]bool, deadline time.Time) error {
	var d activeDay
	err := tn.C(Activity).Get(ctx, id, &d)
	isNew := errors.Is(err, store.ErrNotFound)
	if err != nil && !isNew {
		return fmt.Errorf("read activity of %s: %w", id, err)
	}
	if isNew {
		if len(add) == 0 {
			return nil
		}
		at, err := time.Parse(time.DateOnly, id)
		if err != nil {
			return err
		}
		d = activeDay{ID: id, Day: at}
	}
	have, err := d.entries()
	if err != nil {
		return err
	}
	if len(drop) > 0 {
		have = slices.DeleteFunc(have, func(e entry) bool { return drop[e.n] })
	}
	p := pack(merged(have, add))
	if !isNew && string(p) == string(d.P) {
		return nil
	}
	d.P = p
	d.Version++
	if time.Now().After(deadline) {
		return errLeaseLost
	}
	if isNew {
		err = tn.C(Activity).Insert(ctx, &d)
	} else {
		err = tn.C(Activity).Replace(ctx, &d, d.Version-1)
	}
	if err != nil {
		return fmt.Errorf("write activity of %s: %w", id, err)
	}
	return nil
}

// everyDay has gone taken off every activity day of the workspace (for
// writeActive): a profile's entries may be on any day, wherever its
// events were when they were folded.
func everyDay(ctx context.Context, tn store.Tenant, gone map[uint32]bool) (map[string]map[uint32]bool, error) {
	drop := map[string]map[uint32]bool{}
	err := tn.C(Activity).Each(ctx, store.Query{Index: ActivityByDay}, func(raw bson.Raw) error {
		id, _ := raw.Lookup("_id").StringValueOK()
		drop[id] = gone
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the activity days: %w", err)
	}
	return drop, nil
}
