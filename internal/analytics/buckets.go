package analytics

import (
	"slices"
	"time"

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
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return Span{}, apperr.Invalid("timeZone", "unknown time zone %q: give an IANA name such as Europe/Lisbon", zone)
	}
	if !since.Before(until) {
		return Span{}, apperr.Invalid("since", "must be before until")
	}
	if iv < Hour || iv > Month {
		return Span{}, apperr.Invalid("interval", "unknown interval")
	}
	sp := Span{Loc: loc, Bounds: []time.Time{floor(since, iv, loc)}}
	for b := sp.Bounds[0]; b.Before(until); {
		if len(sp.Bounds) > MaxBuckets {
			return Span{}, apperr.Invalid("interval", "more than %d buckets from since to until: choose a longer interval or a shorter span", MaxBuckets)
		}
		b = next(b, iv, loc)
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
		return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	case Week:
		d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return time.Date(d.Year(), d.Month(), d.Day()-back, 0, 0, 0, 0, loc)
	default:
		return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
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
		n = time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
	case Week:
		n = time.Date(l.Year(), l.Month(), l.Day()+7, 0, 0, 0, 0, loc)
	default:
		n = time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, loc)
	}
	return n
}
