// Package agg is the pure core of computed traits: what a definition
// aggregates, the per-profile state kept on the profile document, its O(1)
// update by one event, and the value read at a time. It has no store and
// no GraphQL; package traits runs it (definitions, ingest, backfill).
//
// # Semantics
//
// An event counts for a definition when its name is Def.Event and its
// properties match every Where filter (rule.PropertyCond semantics).
// COUNT counts those events; the other kinds read Def.Property (a dot path
// into the properties) and skip events where it is missing or null — SUM,
// AVG, MIN and MAX also skip non-numeric values, MOST_FREQUENT and
// UNIQUE_LIST non-scalar ones (objects, arrays).
//
//   - SUM of nothing is 0; AVG, MIN, MAX, FIRST, LAST and MOST_FREQUENT of
//     nothing are null; UNIQUE_LIST of nothing is [].
//   - FIRST / LAST: the value of the earliest / latest event by occurredAt
//     (ties by event id), whatever the order events arrive in.
//   - MOST_FREQUENT: the value seen most often; ties go to the value seen
//     last, then to the smaller value. At most MaxTracked distinct values
//     are tracked (MaxTrackedWindowed under a window): values first seen
//     once the table is full are not counted, so the answer is exact only
//     while a profile has no more distinct values than that.
//   - UNIQUE_LIST: the distinct values, most recently seen first, at most
//     MaxUnique (the MaxUnique most recently seen ones — exact).
//
// # Windows
//
// A window limits which occurrences count:
//   - between {from, to}: from <= occurredAt < to; it does not move.
//   - last {n, DAYS}: occurrences from the start of the UTC day n-1 days
//     before now on (HOURS: n·60 minutes, MINUTES: n minutes, whole UTC
//     minutes). Unlike a segment event count, an occurrence dated later
//     than now (up to the 24 h ingest allows) already counts: a value
//     changes with time alone only when an occurrence leaves the window,
//     which Value reports as the next change time.
//
// Windowed state is kept in per-unit buckets (days, or minutes for HOURS
// and MINUTES) sorted by unit, pruned to what the window can still see
// given the newest occurrence (see retention): size is bounded by the
// window, an event updates it with a binary search and at most a slice
// insert.
package agg

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// Kind is what a definition computes.
type Kind string

// Kinds.
const (
	Count        Kind = "COUNT"
	Sum          Kind = "SUM"
	Avg          Kind = "AVG"
	Min          Kind = "MIN"
	Max          Kind = "MAX"
	First        Kind = "FIRST"
	Last         Kind = "LAST"
	MostFrequent Kind = "MOST_FREQUENT"
	UniqueList   Kind = "UNIQUE_LIST"
)

// Kinds lists every kind.
var Kinds = []Kind{Count, Sum, Avg, Min, Max, First, Last, MostFrequent, UniqueList}

// Numeric tells whether the kind reads a numeric property.
func (k Kind) Numeric() bool { return k == Sum || k == Avg || k == Min || k == Max }

// Limits of the state kept per profile.
const (
	MaxTracked         = 100 // MOST_FREQUENT distinct values, no window
	MaxTrackedWindowed = 20  // MOST_FREQUENT distinct values under a last-window
	MaxUnique          = 100 // UNIQUE_LIST values kept and shown
	// MaxAhead is how far after now an occurrence may be dated (ingest
	// refuses more): retention keeps what a window can see until then.
	MaxAhead = 24 * time.Hour
)

// Def is a definition as the aggregation needs it.
type Def struct {
	Key      string
	Kind     Kind
	Event    string
	Property string
	Where    []rule.PropertyCond
	Window   *rule.Window
	// Rev identifies the definition's version: state computed for another
	// revision is not used.
	Rev int64
}

// Occurrence is one event as the aggregation sees it.
type Occurrence struct {
	ID    string
	At    time.Time
	Props map[string]any
}

// State is one definition's aggregate on one profile. Field names are
// short: it is stored on every profile document.
type State struct {
	Rev int64 `bson:"r"`
	// N counts the contributing occurrences (no window / between).
	N   int64   `bson:"n,omitempty"`
	Sum float64 `bson:"s,omitempty"`
	// Lo and Hi are the minimum and maximum (valid when N > 0).
	Lo    float64 `bson:"lo,omitempty"`
	Hi    float64 `bson:"hi,omitempty"`
	First *Point  `bson:"f,omitempty"`
	Last  *Point  `bson:"l,omitempty"`
	// Values: MOST_FREQUENT counts and UNIQUE_LIST entries.
	Values []Value `bson:"v,omitempty"`
	// Buckets: last-window aggregates per unit, sorted by At.
	Buckets []Bucket `bson:"b,omitempty"`
	// Newest is the newest occurrence (last-window retention).
	Newest time.Time `bson:"t,omitempty"`
}

// Point is a property value at an occurrence.
type Point struct {
	V  any       `bson:"v"`
	At time.Time `bson:"at"`
	ID string    `bson:"id"`
}

// Value is one distinct property value: how often (MOST_FREQUENT) and
// when last seen; under a last-window MOST_FREQUENT counts per unit.
type Value struct {
	V    any           `bson:"v"`
	N    int64         `bson:"n,omitempty"`
	Last time.Time     `bson:"at"`
	Per  []rule.Bucket `bson:"b,omitempty"`

	key string // canonical form, filled on use
}

// Bucket is the aggregate of one unit (UTC day or minute index).
type Bucket struct {
	At    int64   `bson:"at"`
	N     int64   `bson:"n"`
	Sum   float64 `bson:"s,omitempty"`
	Lo    float64 `bson:"lo,omitempty"`
	Hi    float64 `bson:"hi,omitempty"`
	First *Point  `bson:"f,omitempty"`
	Last  *Point  `bson:"l,omitempty"`
}

// Matches tells whether an event counts for d (name and filters; a
// between window is checked by Add).
func (d *Def) Matches(name string, props map[string]any) bool {
	if name != d.Event {
		return false
	}
	return rule.Feature{Name: d.Event, Where: d.Where}.Matches(name, props)
}

// last returns the window's width in units and the unit length in
// seconds, ok false when d has no last-window.
func (d *Def) last() (width, unit int64, ok bool) {
	if d.Window == nil || d.Window.Last == nil {
		return 0, 0, false
	}
	l := d.Window.Last
	switch l.Unit {
	case rule.Days:
		return int64(l.Amount), 86400, true
	case rule.Hours:
		return int64(l.Amount) * 60, 60, true
	case rule.Minutes:
		return int64(l.Amount), 60, true
	}
	return 0, 0, false
}

// Windowed tells whether d's value can change with time alone.
func (d *Def) Windowed() bool { _, _, ok := d.last(); return ok }

func unitOf(t time.Time, unit int64) int64 { return floorDiv(t.Unix(), unit) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Add counts one occurrence (that Matches d) into s. The result does not
// depend on the order occurrences are added in. It reports whether s
// changed.
func (d *Def) Add(s *State, o Occurrence) bool {
	at := o.At.UTC()
	if w := d.Window; w != nil && w.Between != nil && (at.Before(w.Between.From) || !at.Before(w.Between.To)) {
		return false
	}
	var (
		num float64
		val any
	)
	switch {
	case d.Kind == Count:
	case d.Kind.Numeric():
		f, ok := number(lookup(o.Props, d.Property))
		if !ok {
			return false
		}
		num = f
	default:
		v := lookup(o.Props, d.Property)
		if v == nil {
			return false
		}
		v = userjson.Plain(v)
		if d.Kind == MostFrequent || d.Kind == UniqueList {
			if !scalar(v) {
				return false
			}
			if f, ok := number(v); ok {
				v = f // 5 and 5.0 are one value
			}
		}
		val = v
	}
	s.Rev = d.Rev
	pt := func() *Point { return &Point{V: val, At: at, ID: o.ID} }
	if width, unit, ok := d.last(); ok {
		if at.After(s.Newest) {
			s.Newest = at
		}
		floor := unitOf(s.Newest.Add(-MaxAhead), unit) - width + 1
		u := unitOf(at, unit)
		if u < floor {
			return false // already out of every window it could be seen in
		}
		switch d.Kind {
		case MostFrequent, UniqueList:
			d.addValue(s, val, at, u, MaxTrackedWindowed)
		default:
			i := sort.Search(len(s.Buckets), func(i int) bool { return s.Buckets[i].At >= u })
			if i == len(s.Buckets) || s.Buckets[i].At != u {
				s.Buckets = slices.Insert(s.Buckets, i, Bucket{At: u})
			}
			b := &s.Buckets[i]
			addTo(&b.N, &b.Sum, &b.Lo, &b.Hi, &b.First, &b.Last, d.Kind, num, pt)
		}
		s.prune(d.Kind, floor, unit)
		return true
	}
	switch d.Kind {
	case MostFrequent, UniqueList:
		d.addValue(s, val, at, 0, MaxTracked)
	default:
		addTo(&s.N, &s.Sum, &s.Lo, &s.Hi, &s.First, &s.Last, d.Kind, num, pt)
	}
	return true
}

func addTo(n *int64, sum, lo, hi *float64, first, last **Point, k Kind, num float64, pt func() *Point) {
	switch k {
	case Sum, Avg:
		*sum += num
	case Min, Max:
		if *n == 0 || num < *lo {
			*lo = num
		}
		if *n == 0 || num > *hi {
			*hi = num
		}
	case First:
		if p := pt(); *first == nil || before(p, *first) {
			*first = p
		}
	case Last:
		if p := pt(); *last == nil || before(*last, p) {
			*last = p
		}
	}
	*n++
}

// before orders points by occurrence time, then event id.
func before(a, b *Point) bool {
	if c := a.At.Compare(b.At); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// addValue records val seen at at (unit u when windowed, max distinct
// values kept). UNIQUE_LIST keeps the MaxUnique most recently seen values
// (evicting the least recent); MOST_FREQUENT ignores new values once full.
func (d *Def) addValue(s *State, val any, at time.Time, u int64, max int) {
	key := canon(val)
	i := slices.IndexFunc(s.Values, func(v Value) bool { return v.canon() == key })
	if i < 0 {
		if d.Kind == UniqueList {
			max = MaxUnique
		}
		if len(s.Values) >= max {
			if d.Kind == MostFrequent {
				return
			}
			// Evict the least recent (it may be the new one itself).
			j := 0
			for k := range s.Values {
				if recent(s.Values[j], s.Values[k]) {
					j = k
				}
			}
			nv := Value{V: val, Last: at, key: key}
			if !recent(nv, s.Values[j]) {
				return
			}
			s.Values = slices.Delete(s.Values, j, j+1)
		}
		s.Values = append(s.Values, Value{V: val, key: key})
		i = len(s.Values) - 1
	}
	v := &s.Values[i]
	if at.After(v.Last) {
		v.Last = at
	}
	if d.Kind == MostFrequent {
		v.N++
		if d.Windowed() {
			j := sort.Search(len(v.Per), func(j int) bool { return v.Per[j].At >= u })
			if j == len(v.Per) || v.Per[j].At != u {
				v.Per = slices.Insert(v.Per, j, rule.Bucket{At: u})
			}
			v.Per[j].N++
		}
	}
}

// recent tells whether a was seen more recently than b (ties: the
// smaller value first), the UNIQUE_LIST order.
func recent(a, b Value) bool {
	if c := a.Last.Compare(b.Last); c != 0 {
		return c > 0
	}
	return a.canon() < b.canon()
}

// prune drops what no window can see any more: units before floor.
func (s *State) prune(k Kind, floor, unit int64) {
	switch k {
	case UniqueList:
		s.Values = slices.DeleteFunc(s.Values, func(v Value) bool { return unitOf(v.Last, unit) < floor })
	case MostFrequent:
		out := s.Values[:0]
		for _, v := range s.Values {
			i := sort.Search(len(v.Per), func(i int) bool { return v.Per[i].At >= floor })
			v.Per = v.Per[i:]
			if len(v.Per) > 0 {
				var n int64
				for _, b := range v.Per {
					n += b.N
				}
				v.N = n
				out = append(out, v)
			}
		}
		clear(s.Values[len(out):])
		s.Values = out
	default:
		i := sort.Search(len(s.Buckets), func(i int) bool { return s.Buckets[i].At >= floor })
		s.Buckets = s.Buckets[i:]
	}
}

// ValueIn is d's value at now from a profile's states (its own, when
// there is one), as Value.
func (d *Def) ValueIn(states States, now time.Time) (any, time.Time) {
	if st, ok := states[d.Key]; ok {
		return d.Value(&st, now)
	}
	return d.Value(nil, now)
}

// Value returns d's value on s at now (s may be nil: nothing counted) and
// the next moment it changes with time alone (zero: never, absent new
// events).
func (d *Def) Value(s *State, now time.Time) (any, time.Time) {
	if s == nil || s.Rev != d.Rev {
		s = &State{}
	}
	width, unit, windowed := d.last()
	if !windowed {
		return d.result(s.N, s.Sum, s.Lo, s.Hi, s.First, s.Last, s.Values), time.Time{}
	}
	lo := unitOf(now.UTC(), unit) - width + 1
	var next int64 = math.MaxInt64
	edge := func(u int64) {
		if u+width < next {
			next = u + width
		}
	}
	var vals []Value
	switch d.Kind {
	case UniqueList:
		for _, v := range s.Values {
			if u := unitOf(v.Last, unit); u >= lo {
				vals = append(vals, v)
				edge(u)
			}
		}
	case MostFrequent:
		for _, v := range s.Values {
			i := sort.Search(len(v.Per), func(i int) bool { return v.Per[i].At >= lo })
			var n int64
			for _, b := range v.Per[i:] {
				n += b.N
			}
			if n > 0 {
				edge(v.Per[i].At)
				v.N = n
				vals = append(vals, v)
			}
		}
	default:
		var (
			n           int64
			sum, mn, mx float64
			first, last *Point
		)
		i := sort.Search(len(s.Buckets), func(i int) bool { return s.Buckets[i].At >= lo })
		for _, b := range s.Buckets[i:] {
			if n == 0 {
				edge(b.At)
			}
			if n == 0 || b.Lo < mn {
				mn = b.Lo
			}
			if n == 0 || b.Hi > mx {
				mx = b.Hi
			}
			if first == nil {
				first = b.First
			}
			last = b.Last
			n += b.N
			sum += b.Sum
		}
		v := d.result(n, sum, mn, mx, first, last, nil)
		return v, nextTime(next, unit)
	}
	return d.result(0, 0, 0, 0, nil, nil, vals), nextTime(next, unit)
}

func nextTime(u, unit int64) time.Time {
	if u == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(u*unit, 0).UTC()
}

func (d *Def) result(n int64, sum, lo, hi float64, first, last *Point, vals []Value) any {
	switch d.Kind {
	case Count:
		return n
	case Sum:
		return sum
	case Avg:
		if n == 0 {
			return nil
		}
		return sum / float64(n)
	case Min, Max:
		if n == 0 {
			return nil
		}
		if d.Kind == Min {
			return lo
		}
		return hi
	case First:
		if first == nil {
			return nil
		}
		return first.V
	case Last:
		if last == nil {
			return nil
		}
		return last.V
	case MostFrequent:
		var best *Value
		for i := range vals {
			v := &vals[i]
			if best == nil || v.N > best.N || v.N == best.N && recent(*v, *best) {
				best = v
			}
		}
		if best == nil {
			return nil
		}
		return best.V
	case UniqueList:
		vals = slices.Clone(vals)
		slices.SortFunc(vals, func(a, b Value) int {
			if recent(a, b) {
				return -1
			}
			if recent(b, a) {
				return 1
			}
			return 0
		})
		out := make([]any, 0, min(len(vals), MaxUnique))
		for _, v := range vals[:min(len(vals), MaxUnique)] {
			out = append(out, v.V)
		}
		return out
	}
	return nil
}

func (v *Value) canon() string {
	if v.key == "" {
		v.key = canon(v.V)
	}
	return v.key
}

// canon writes a scalar so that equal values (5, int32(5), 5.0) write the
// same, and values of different types never do.
func canon(v any) string {
	if f, ok := number(v); ok {
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	switch x := v.(type) {
	case string:
		return "s" + x
	case bool:
		return "b" + strconv.FormatBool(x)
	}
	return "?"
}

func scalar(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	}
	_, ok := number(v)
	return ok
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		// Go callers may pass decoded JSON as is; stored, it is a double,
		// so ingest and a recount from the stored event must agree.
		f, err := x.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// NumberAt is the number at a dot path of props (false when it is
// missing or not a finite number), read as numeric aggregates read it.
func NumberAt(props map[string]any, path string) (float64, bool) {
	return number(lookup(props, path))
}

// lookup is the value at a dot path of props, as segment rules read it;
// nil when missing.
func lookup(props map[string]any, path string) any {
	v, _ := rule.Lookup(props, path)
	return v
}

// Set is a workspace's definitions, indexed for ingest.
type Set struct {
	Defs    []*Def
	byKey   map[string]*Def
	byEvent map[string][]*Def
}

// NewSet indexes defs.
func NewSet(defs []*Def) *Set {
	s := &Set{Defs: defs, byKey: map[string]*Def{}, byEvent: map[string][]*Def{}}
	for _, d := range defs {
		s.byKey[d.Key] = d
		s.byEvent[d.Event] = append(s.byEvent[d.Event], d)
	}
	return s
}

// Get returns the definition of key, nil if none (s may be nil).
func (s *Set) Get(key string) *Def {
	if s == nil {
		return nil
	}
	return s.byKey[key]
}

// ForEvent returns the definitions counting events named name.
func (s *Set) ForEvent(name string) []*Def {
	if s == nil {
		return nil
	}
	return s.byEvent[name]
}

// Len is the number of definitions.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Defs)
}
