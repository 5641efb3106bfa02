package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/rawbson"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// GroupBy splits a volume series.
type GroupBy int

const (
	NoGroup GroupBy = iota
	ByName
	ByChannel
	// ByProperty groups by the value of the event property
	// VolumeQuery.Property: a walk of the stored events
	// (volume_property.go), not the rollups.
	ByProperty
)

// MaxTop caps the groups a series names before "other".
const MaxTop = 50

// VolumeQuery asks how many events occurred per bucket.
type VolumeQuery struct {
	SeriesQuery
	// Names and Channels keep only events of these names or channels
	// (empty: all). The channel of events sent without one is "".
	Names, Channels []string
	GroupBy         GroupBy
	// Property is the dot path ByProperty groups by.
	Property string
	// Top is how many groups are named, largest first; the rest are
	// added up in one group marked Other.
	Top int
}

// Volume is an event-volume series.
type Volume struct {
	Span   Span
	Total  int64
	Groups []Group // empty without GroupBy
	// Buckets[i] is bucket i: its total and, per group in Groups' order,
	// its count.
	Buckets []Bucket
}

// Group is one group of a series, over the whole span.
type Group struct {
	Key   string
	Total int64
	Other bool // the groups past Top, added up
	// By property: the value as stored, and Null for the events without
	// it (or holding null).
	Value any
	Null  bool
}

// Bucket is one bucket of a series.
type Bucket struct {
	Total  int64
	Counts []int64
}

// EventVolume answers q from the day rollups and the items stored since
// the last fold: exact as of the read.
func (s *Service) EventVolume(ctx context.Context, tn store.Tenant, q VolumeQuery) (*Volume, error) {
	if q.GroupBy == ByProperty {
		// From the stored events, not the rollups.
		if q.Top < 1 || q.Top > MaxTop {
			return nil, apperr.Invalid("top", "must be between 1 and %d", MaxTop)
		}
		sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
		if err != nil {
			return nil, err
		}
		return s.volumeByProperty(ctx, tn, q, sp)
	}
	return again(ctx, tn, func() (*Volume, string, error) { return s.volumeOnce(ctx, tn, q) })
}

// again makes a read of the rollups (returning the epoch of the cursor it
// read) once more when the rollups started over meanwhile (startOver):
// days folded again from the first item, read against the older cursor,
// would hide the items between their position and the cursor's. Twice
// in a row is a settings change per read: the third read stands.
func again[T any](ctx context.Context, tn store.Tenant, read func() (T, string, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		out, epoch, err := read()
		if err != nil || attempt == 2 {
			return out, err
		}
		var now cursor
		err = tn.System().C(Cursors).Get(ctx, tn.Workspace(), &now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return out, fmt.Errorf("read rollup cursor: %w", err)
		}
		if now.Epoch == epoch {
			return out, nil
		}
	}
}

func (s *Service) volumeOnce(ctx context.Context, tn store.Tenant, q VolumeQuery) (*Volume, string, error) {
	if q.Top < 1 || q.Top > MaxTop {
		return nil, "", apperr.Invalid("top", "must be between 1 and %d", MaxTop)
	}
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, "", err
	}

	keep := func(name, channel string) bool {
		return (len(q.Names) == 0 || slices.Contains(q.Names, name)) && (len(q.Channels) == 0 || slices.Contains(q.Channels, channel))
	}
	groupOf := func(name, channel string) string {
		switch q.GroupBy {
		case ByName:
			return name
		case ByChannel:
			return channel
		}
		return ""
	}
	per := map[string][]int64{} // group → count per bucket
	group := func(key string) []int64 {
		c, ok := per[key]
		if !ok {
			c = make([]int64, sp.Len())
			per[key] = c
		}
		return c
	}

	// The cursor first, then the days, then the tail: an item folded
	// meanwhile is either in a day read (and skipped in the tail by the
	// day's Folded) or after the cursor read (and counted from the tail).
	cur, err := s.readCursor(ctx, tn)
	if err != nil {
		return nil, "", err
	}
	days, err := s.days(ctx, tn, sp, &cur)
	if err != nil {
		return nil, "", err
	}
	var at [quarters]int          // bucket of each quarter hour of a day, -1 outside
	folded := map[string]string{} // day → its last item folded
	for _, d := range days {
		folded[d.ID] = d.Folded
		sp.quarters(d.Day, &at)
		for i := range d.Series {
			sr := &d.Series[i]
			if !keep(sr.Name, sr.Channel) {
				continue
			}
			g := group(groupOf(sr.Name, sr.Channel))
			for qh, n := range sr.Counts {
				if n != 0 && at[qh] >= 0 {
					g[at[qh]] += int64(n)
				}
			}
		}
	}
	err = eachTail(ctx, tn, cur.Folded, "", func(items []timeline.Stored) error {
		for _, it := range items {
			if it.Kind != timeline.KindEvent || !keep(it.Name, it.Channel) {
				continue
			}
			b := sp.Index(it.OccurredAt)
			if b < 0 || it.ID <= folded[dayID(it.OccurredAt)] {
				continue
			}
			group(groupOf(it.Name, it.Channel))[b]++
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return shape(sp, per, q.GroupBy != NoGroup, q.Top), cur.Epoch, nil
}

// readCursor reads the workspace's rollup cursor for a read. A workspace
// with none (events stored before this version folded anything, and no
// write since) reads as the zero cursor: nothing folded, and the roller
// learns of the workspace from here.
func (s *Service) readCursor(ctx context.Context, tn store.Tenant) (cursor, error) {
	var cur cursor
	err := tn.System().C(Cursors).Get(ctx, tn.Workspace(), &cur)
	if errors.Is(err, store.ErrNotFound) {
		s.want(tn.Workspace())
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, fmt.Errorf("read rollup cursor: %w", err)
	}
	return cur, nil
}

// eachTail calls fn with the items stored after the one with id after,
// a batch at a time, in id order: what a read adds to what is folded.
// Only items named propsOf keep their properties.
func eachTail(ctx context.Context, tn store.Tenant, after, propsOf string, fn func([]timeline.Stored) error) error {
	for {
		items, err := timeline.StoredAfter(ctx, tn, after, time.Time{}, foldBatch, propsOf)
		if err != nil {
			return err
		}
		if err := fn(items); err != nil {
			return err
		}
		if len(items) < foldBatch {
			return nil
		}
		after = items[len(items)-1].ID
	}
}

// dayView is a day rollup as a series reads it (decoded without
// reflection: a 90-day series reads some 90 of them per request).
type dayView struct {
	ID         string
	Day        time.Time
	Folded     string
	Version    int64
	Series     []seriesView
	RevenueKey string
	Revenue    [quarters]int64 // millionths
}

type seriesView struct {
	Name, Channel string
	// Counts per quarter hour, unpacked once (views are kept: cache.go).
	Counts [quarters]uint32
}

// days returns the day rollups that overlap the span as of cur: those
// this instance holds at the version cur records from memory, the others
// from the store (then kept, at the version read). A cursor that does
// not record its days (written before it did) has every day read.
//
// As of cur is enough: a day written after cur was written holds only
// items after cur's fold position, which the tail counts (EventVolume),
// or has an erasure's events taken off that are still stored until the
// erasure deletes them.
func (s *Service) days(ctx context.Context, tn store.Tenant, sp Span, cur *cursor) ([]dayView, error) {
	if !cur.Tracked {
		return readDays(ctx, tn, sp)
	}
	var out []dayView
	missing := false
	for d := dayStart(sp.Start()); d.Before(sp.End()); d = d.AddDate(0, 0, 1) {
		id := dayID(d)
		v, ok := cur.Days[id]
		if !ok {
			continue // no rollup as of cur
		}
		if view, ok := s.cache.get(tn.Workspace(), cur.Epoch, id, v); ok {
			out = append(out, view)
			continue
		}
		missing = true
		break
	}
	if !missing {
		return out, nil
	}
	read, err := readDays(ctx, tn, sp)
	if err != nil {
		return nil, err
	}
	// Only the days the cursor lists: one it does not is newer (its items
	// are in the tail) or left by a start over (startOver).
	read = slices.DeleteFunc(read, func(d dayView) bool {
		_, listed := cur.Days[d.ID]
		return !listed
	})
	for _, d := range read {
		s.cache.put(tn.Workspace(), cur.Epoch, d)
	}
	return read, nil
}

// readDays reads the day rollups that overlap the span.
func readDays(ctx context.Context, tn store.Tenant, sp Span) ([]dayView, error) {
	q := store.Query{Index: RollupsByDay, Range: &store.Bound{Gte: dayStart(sp.Start()), Lt: sp.End()}}
	var out []dayView
	err := tn.C(Rollups).Each(ctx, q, func(raw bson.Raw) error {
		d, err := viewDay(raw)
		if err != nil {
			return fmt.Errorf("decode rollup: %w", err)
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	return out, nil
}

func viewDay(raw bson.Raw) (dayView, error) {
	var d dayView
	err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
		switch string(key) {
		case "_id":
			d.ID, _ = v.StringValueOK()
		case "folded":
			d.Folded, _ = v.StringValueOK()
		case "version":
			d.Version, _ = v.AsInt64OK()
		case "rk":
			d.RevenueKey, _ = v.StringValueOK()
		case "rv":
			_, b, _ := v.BinaryOK()
			r, err := revenueQuarters(b)
			if err != nil {
				return err
			}
			d.Revenue = r
		case "day":
			ms, ok := v.DateTimeOK()
			if !ok {
				return fmt.Errorf("day is %s", v.Type)
			}
			d.Day = time.UnixMilli(ms).UTC()
		case "series":
			arr, ok := v.ArrayOK()
			if !ok {
				return fmt.Errorf("series is %s", v.Type)
			}
			return rawbson.Each(arr, func(_ []byte, e bson.RawValue) error {
				doc, ok := e.DocumentOK()
				if !ok {
					return fmt.Errorf("a series is %s", e.Type)
				}
				var sv seriesView
				err := rawbson.Each(doc, func(k []byte, f bson.RawValue) error {
					switch string(k) {
					case "n":
						sv.Name, _ = f.StringValueOK()
					case "c":
						sv.Channel, _ = f.StringValueOK()
					case "q":
						_, q, _ := f.BinaryOK()
						c, err := (&series{Name: sv.Name, Channel: sv.Channel, Q: q}).counts()
						if err != nil {
							return err
						}
						for i, n := range c {
							if n > math.MaxUint32 {
								return fmt.Errorf("series %q: quarter %d holds %d", sv.Name, i, n)
							}
							sv.Counts[i] = uint32(n)
						}
					}
					return nil
				})
				d.Series = append(d.Series, sv)
				return err
			})
		}
		return nil
	})
	return d, err
}

// shape orders the groups by total (then key), keeps top of them and
// adds the rest up as one Other group.
func shape(sp Span, per map[string][]int64, grouped bool, top int) *Volume {
	v := &Volume{Span: sp, Buckets: make([]Bucket, sp.Len())}
	type g struct {
		key    string
		total  int64
		counts []int64
	}
	var gs []g
	for k, c := range per {
		var t int64
		for i, n := range c {
			t += n
			v.Buckets[i].Total += n
		}
		v.Total += t
		if t > 0 { // a series read whose events all fell outside the span
			gs = append(gs, g{k, t, c})
		}
	}
	if !grouped {
		return v
	}
	slices.SortFunc(gs, func(a, b g) int {
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	var other *g
	if len(gs) > top {
		other = &g{counts: make([]int64, sp.Len())}
		for _, x := range gs[top:] {
			other.total += x.total
			for i, n := range x.counts {
				other.counts[i] += n
			}
		}
		gs = gs[:top]
	}
	for _, x := range gs {
		v.Groups = append(v.Groups, Group{Key: x.key, Total: x.total})
	}
	if other != nil {
		v.Groups = append(v.Groups, Group{Total: other.total, Other: true})
		gs = append(gs, *other)
	}
	for i := range v.Buckets {
		v.Buckets[i].Counts = make([]int64, len(gs))
		for j, x := range gs {
			v.Buckets[i].Counts[j] = x.counts[i]
		}
	}
	return v
}
