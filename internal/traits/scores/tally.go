package scores

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
)

// MaxActivityEntries bounds Tally.Activity: the ActivityDays the window
// can see plus a few days of events dated ahead (clock skew), so the
// stored tally never grows with a person's history.
const MaxActivityEntries = ActivityDays + 8

// Tally is what a profile keeps for its scores, updated by Add in O(1)
// per event (a binary search and at most a slice insert of ≤ 98 entries):
// the order count, revenue, first and last order times, and events per
// UTC day for the engagement window. Rev stamps the order settings it was
// counted under: a tally of another revision is recounted from events.
type Tally struct {
	Rev        int64
	Orders     int64
	Revenue    float64
	FirstOrder time.Time
	LastOrder  time.Time
	// Activity is events per UTC day, sorted by day, pruned to the days
	// the engagement window can still see.
	Activity []Day
}

// Add counts one event at at (an order worth value when order is set)
// as of now: activity days that fell out of the window are dropped.
func (t *Tally) Add(at time.Time, order bool, value float64, now time.Time) {
	at = at.UTC().Truncate(time.Millisecond)
	if order {
		t.Orders++
		t.Revenue = sanitizeMoney(t.Revenue + sanitizeMoney(value))
		if t.FirstOrder.IsZero() || at.Before(t.FirstOrder) {
			t.FirstOrder = at
		}
		if t.LastOrder.IsZero() || at.After(t.LastOrder) {
			t.LastOrder = at
		}
	}
	t.prune(now)
	d := DayOf(at)
	if d <= DayOf(now)-ActivityDays {
		return // too old to count for engagement
	}
	i, found := slices.BinarySearchFunc(t.Activity, d, func(x Day, d int64) int { return cmp.Compare(x.Day, d) })
	if found {
		t.Activity[i].N++
		return
	}
	t.Activity = slices.Insert(t.Activity, i, Day{Day: d, N: 1})
	if len(t.Activity) > MaxActivityEntries {
		t.Activity = slices.Delete(t.Activity, 0, len(t.Activity)-MaxActivityEntries)
	}
}

// prune drops the activity days the window no longer sees at now.
func (t *Tally) prune(now time.Time) {
	cut := DayOf(now) - ActivityDays
	i := 0
	for i < len(t.Activity) && t.Activity[i].Day <= cut {
		i++
	}
	if i > 0 {
		t.Activity = slices.Delete(t.Activity, 0, i)
	}
}

// Input is the scores' input for this tally at now; firstSeen and
// lastSeen are the profile's activity span (explanations only).
func (t *Tally) Input(now, firstSeen, lastSeen time.Time, w *Workspace) Input {
	in := Input{Now: now, FirstSeen: firstSeen, LastSeen: lastSeen, Workspace: w}
	if t != nil {
		in.Orders, in.Revenue, in.FirstOrder, in.LastOrder, in.Activity = t.Orders, t.Revenue, t.FirstOrder, t.LastOrder, t.Activity
	}
	return in
}

// The stored layout is compact because every ingest write decodes and
// re-encodes it: {r: rev, o: orders, rv: revenue, fo, lo: order times,
// a: activity}, zero fields left out, and activity as one binary value
// of varints (the first day, then day deltas, each followed by the day's
// count): about 2–3 bytes a day instead of ~20 for a sub-document.

// MarshalBSON writes the compact layout.
func (t Tally) MarshalBSON() ([]byte, error) {
	idx, doc := bsoncore.AppendDocumentStart(make([]byte, 0, 64+3*len(t.Activity)))
	if t.Rev != 0 {
		doc = bsoncore.AppendInt64Element(doc, "r", t.Rev)
	}
	if t.Orders != 0 {
		doc = bsoncore.AppendInt64Element(doc, "o", t.Orders)
	}
	if t.Revenue != 0 {
		doc = bsoncore.AppendDoubleElement(doc, "rv", t.Revenue)
	}
	if !t.FirstOrder.IsZero() {
		doc = bsoncore.AppendDateTimeElement(doc, "fo", t.FirstOrder.UnixMilli())
	}
	if !t.LastOrder.IsZero() {
		doc = bsoncore.AppendDateTimeElement(doc, "lo", t.LastOrder.UnixMilli())
	}
	if len(t.Activity) > 0 {
		doc = bsoncore.AppendBinaryElement(doc, "a", 0, packDays(t.Activity))
	}
	return bsoncore.AppendDocumentEnd(doc, idx)
}

func packDays(days []Day) []byte {
	buf := make([]byte, 0, 3*len(days)+8)
	prev := int64(0)
	for i, d := range days {
		if i == 0 {
			buf = binary.AppendVarint(buf, d.Day)
		} else {
			buf = binary.AppendUvarint(buf, uint64(d.Day-prev))
		}
		buf = binary.AppendUvarint(buf, uint64(d.N))
		prev = d.Day
	}
	return buf
}

var errPacked = errors.New("scores: corrupt activity")

func unpackDays(b []byte) ([]Day, error) {
	var out []Day
	prev := int64(0)
	for len(b) > 0 {
		var day int64
		if len(out) == 0 {
			v, n := binary.Varint(b)
			if n <= 0 {
				return nil, errPacked
			}
			day, b = v, b[n:]
		} else {
			v, n := binary.Uvarint(b)
			if n <= 0 || v == 0 || v > math.MaxInt32 {
				return nil, errPacked
			}
			day, b = prev+int64(v), b[n:]
		}
		c, n := binary.Uvarint(b)
		if n <= 0 || c > math.MaxInt64 {
			return nil, errPacked
		}
		b = b[n:]
		out = append(out, Day{Day: day, N: int64(c)})
		prev = day
	}
	return out, nil
}

// UnmarshalBSON reads the compact layout (times in UTC).
func (t *Tally) UnmarshalBSON(data []byte) error {
	*t = Tally{}
	return rawbson.Each(data, func(key []byte, v bson.RawValue) error {
		var ok bool
		switch string(key) {
		case "r":
			t.Rev, ok = v.AsInt64OK()
		case "o":
			t.Orders, ok = v.AsInt64OK()
		case "rv":
			t.Revenue, ok = v.DoubleOK()
		case "fo", "lo":
			var ms int64
			if ms, ok = v.DateTimeOK(); ok {
				at := time.UnixMilli(ms).UTC()
				if key[0] == 'f' {
					t.FirstOrder = at
				} else {
					t.LastOrder = at
				}
			}
		case "a":
			var b []byte
			if _, b, ok = v.BinaryOK(); ok {
				days, err := unpackDays(b)
				if err != nil {
					return err
				}
				t.Activity = days
			}
		default:
			ok = true // a field of a later version
		}
		if !ok {
			return fmt.Errorf("scores: tally field %q has type %s", key, v.Type)
		}
		return nil
	})
}

// MergeTallies is the tally of one person made of two (a profile merge):
// orders and revenue add, the order span widens, activity adds per day
// (the oldest days beyond MaxActivityEntries dropped). Like the event
// count it is exact because each event was counted on exactly one side.
// Tallies counted under different order settings cannot be added: the
// result is nil, to be recounted from the events.
func MergeTallies(a, b *Tally) *Tally {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		a, b = b, a
	}
	out := *a
	out.Activity = slices.Clone(a.Activity)
	if b == nil {
		return &out
	}
	if a.Rev != b.Rev {
		return nil
	}
	out.Orders += b.Orders
	out.Revenue = sanitizeMoney(a.Revenue + b.Revenue)
	if !b.FirstOrder.IsZero() && (out.FirstOrder.IsZero() || b.FirstOrder.Before(out.FirstOrder)) {
		out.FirstOrder = b.FirstOrder
	}
	if b.LastOrder.After(out.LastOrder) {
		out.LastOrder = b.LastOrder
	}
	for _, d := range b.Activity {
		i, found := slices.BinarySearchFunc(out.Activity, d.Day, func(x Day, d int64) int { return cmp.Compare(x.Day, d) })
		if found {
			out.Activity[i].N += d.N
		} else {
			out.Activity = slices.Insert(out.Activity, i, d)
		}
	}
	if len(out.Activity) > MaxActivityEntries {
		out.Activity = slices.Delete(out.Activity, 0, len(out.Activity)-MaxActivityEntries)
	}
	return &out
}
