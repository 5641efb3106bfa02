package analytics

import (
	"fmt"
	"slices"
	"time"
	// The zone database inside the binary: series in any zone work on a
	// host without one (a minimal container image).
	_ "time/tzdata"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// Interval is a series' bucket length, on the calendar of its time zone.
type Interval int

const (
	Hour Interval = iota
	Day
	Week // ISO weeks, from Monday
	Month
)

// MaxBuckets caps one series.
const MaxBuckets = 1000

// Span is where a series' buckets begin and end, on a zone's calendar.
type Span struct {
	Loc *time.Location
	// Bounds are the buckets' edges: bucket i is [Bounds[i], Bounds[i+1]).
	Bounds []time.Time
}

// NewSpan lays out the buckets of interval in zone that cover [since,
// until): the first begins where since's bucket begins, the last ends
// where until's bucket ends (whole buckets). zone is an IANA name ("" is
// UTC). Local midnights and DST changes are the zone's: a DST day has 23
// or 25 hours.
func NewSpan(since, until time.Time, iv Interval, zone string) (Span, error) {
	return newSpan(since, until, iv, zone, time.LoadLocation)
}

// newSpan is NewSpan with the zone database read through load.
func newSpan(since, until time.Time, iv Interval, zone string, load func(string) (*time.Location, error)) (Span, error) {
	if zone == "" {
		zone = "UTC"
	}
	loc, err := load(zone)
	if err != nil || zone == "Local" {
		return Span{}, apperr.Invalid("timeZone", "unknown time zone %q: give an IANA name such as Europe/Lisbon", zone)
	}
	if err := checkRange(since, until); err != nil {
		return Span{}, err
	}
	if iv < Hour || iv > Month {
		return Span{}, apperr.Invalid("interval", "unknown interval")
	}
	sp := Span{Loc: loc, Bounds: []time.Time{floor(since, iv, loc)}}
	for b := sp.Bounds[0]; b.Before(until); {
		if len(sp.Bounds) > MaxBuckets {
			return Span{}, apperr.Invalid("interval", "more than %d buckets from since to until: choose a longer interval or a shorter span", MaxBuckets)
		}
		n := next(b, iv, loc)
		if !n.After(b) {
			return Span{}, fmt.Errorf("analytics: the %v bucket after %s in %s does not begin later", iv, b, zone)
		}
		b = n
		sp.Bounds = append(sp.Bounds, b)
	}
	for _, b := range sp.Bounds {
		if b.Unix()%(15*60) != 0 {
			// Zones had offsets such as +0:20 before 1970: rollups count
			// quarter hours, and a bucket edge inside one cannot be told.
			return Span{}, apperr.Invalid("since", "bucket edge %s in %s is not on a quarter hour of UTC", b.Format(time.RFC3339), zone)
		}
	}
	return sp, nil
}

// Len is the number of buckets.
func (s Span) Len() int { return len(s.Bounds) - 1 }

// Start and End are the span's edges.
func (s Span) Start() time.Time { return s.Bounds[0] }
func (s Span) End() time.Time   { return s.Bounds[len(s.Bounds)-1] }

// Index is the bucket t falls in, or -1 outside the span.
func (s Span) Index(t time.Time) int {
	if t.Before(s.Start()) || !t.Before(s.End()) {
		return -1
	}
	i, found := slices.BinarySearchFunc(s.Bounds, t, func(b, t time.Time) int { return b.Compare(t) })
	if found {
		return i
	}
	return i - 1
}

// quarters sets at[i] to the bucket of the i-th quarter hour of the UTC
// day beginning at day (-1 outside the span): one walk along the edges,
// as quarter hours only go forward.
func (s Span) quarters(day time.Time, at *[quarters]int) {
	b := s.Index(day)
	for i := range at {
		t := day.Add(time.Duration(i) * 15 * time.Minute)
		switch {
		case t.Before(s.Start()) || !t.Before(s.End()):
			b = -1
		case b < 0:
			b = s.Index(t)
		default:
			for !t.Before(s.Bounds[b+1]) {
				b++
			}
		}
		at[i] = b
	}
}

// floor is the start of t's bucket.
func floor(t time.Time, iv Interval, loc *time.Location) time.Time {
	l := t.In(loc)
	switch iv {
	case Hour:
		// By the offset in force at t: a zone half an hour off UTC has
		// its hours begin at half past.
		_, off := l.Zone()
		o := time.Duration(off) * time.Second
		return t.Add(o).Truncate(time.Hour).Add(-o).In(loc)
	case Day:
		return midnight(l.Year(), l.Month(), l.Day(), loc)
	case Week:
		back := (int(l.Weekday()) + 6) % 7 // days since Monday
		return midnight(l.Year(), l.Month(), l.Day()-back, loc)
	default:
		return midnight(l.Year(), l.Month(), 1, loc)
	}
}

// next is the start of the bucket after the one starting at b.
func next(b time.Time, iv Interval, loc *time.Location) time.Time {
	l := b.In(loc)
	var n time.Time
	switch iv {
	case Hour:
		n = floor(b.Add(time.Hour), Hour, loc)
		if !n.After(b) { // a DST change of half an hour
			n = floor(b.Add(90*time.Minute), Hour, loc)
		}
	case Day:
		n = midnight(l.Year(), l.Month(), l.Day()+1, loc)
	case Week:
		n = midnight(l.Year(), l.Month(), l.Day()+7, loc)
	default:
		n = midnight(l.Year(), l.Month()+1, 1, loc)
	}
	return n
}

// midnight is where the local day y-m-d begins in loc (the day may be
// given unnormalised, as time.Date takes it). Where summer time begins
// at midnight (America/Santiago, America/Havana) that day has no 00:00:
// time.Date answers an instant of the day before, and the day begins at
// the change instead.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // the date, normalised
	if ty, tm, td := t.Date(); ty == want.Year() && tm == want.Month() && td == want.Day() {
		return t
	}
	_, end := t.ZoneBounds()
	return end
}
