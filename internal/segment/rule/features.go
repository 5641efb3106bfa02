package rule

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Feature is what an event node counts: events of Name whose properties
// match every Where filter. Every event node of a rule is a feature, and so
// is every lastEvent name (with no filter). Two nodes with the same name
// and the same filters (in any order) share one feature.
type Feature struct {
	// Key is stable: "f_" and 12 hex digits of a hash of the canonical name
	// and filters. It names the profile's Counter.
	Key   string         `bson:"key" json:"key"`
	Name  string         `bson:"name" json:"name"`
	Where []PropertyCond `bson:"where,omitempty" json:"where,omitempty"`
}

// Matches tells whether an event counts for the feature.
func (f Feature) Matches(name string, props map[string]any) bool {
	if name != f.Name {
		return false
	}
	for i := range f.Where {
		if !matchCond(&f.Where[i], props) {
			return false
		}
	}
	return true
}

// FeatureOf returns the feature an event node counts.
func FeatureOf(name string, where []PropertyCond) Feature {
	return Feature{Key: FeatureKey(name, where), Name: name, Where: where}
}

// FeatureKey is the stable key of the feature (name, where).
func FeatureKey(name string, where []PropertyCond) string {
	conds := make([]string, 0, len(where))
	for i := range where {
		conds = append(conds, canonCond(&where[i]))
	}
	sort.Strings(conds)
	var b strings.Builder
	b.WriteString(strconv.Quote(name))
	prev := ""
	for i, c := range conds {
		if i > 0 && c == prev {
			continue // a repeated filter changes nothing
		}
		prev = c
		b.WriteString("&")
		b.WriteString(c)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "f_" + hex.EncodeToString(sum[:6])
}

func canonCond(c *TraitCond) string {
	s := strconv.Quote(c.Key) + " " + string(c.Op)
	switch c.Op {
	case In, NotIn:
		vals := make([]string, 0, len(c.Values))
		for _, v := range c.Values {
			vals = append(vals, canonValue(v))
		}
		sort.Strings(vals)
		out := vals[:0]
		for i, v := range vals {
			if i == 0 || v != vals[i-1] {
				out = append(out, v)
			}
		}
		return s + " [" + strings.Join(out, ",") + "]"
	case Exists:
		if b, ok := c.Value.(bool); ok && !b {
			return s + " false"
		}
		return s + " true"
	}
	return s + " " + canonValue(c.Value)
}

// canonValue writes a value so that values the evaluator treats as equal
// (5, int32(5), 5.0) write the same.
func canonValue(v any) string {
	if n, ok := toNumber(v); ok {
		if !n.isInt && n.f == math.Trunc(n.f) && math.Abs(n.f) < 1<<63 {
			n = number{i: int64(n.f), isInt: true}
		}
		if n.isInt {
			return "n" + strconv.FormatInt(n.i, 10)
		}
		return "n" + strconv.FormatFloat(n.f, 'g', -1, 64)
	}
	if isTimeValue(v) {
		t, _ := toInstant(v)
		return "t" + t.UTC().Format(time.RFC3339Nano)
	}
	switch x := v.(type) {
	case string:
		return "s" + strconv.Quote(x)
	case bool:
		return "b" + strconv.FormatBool(x)
	case nil:
		return "null"
	}
	return "?"
}

// Features lists the features a rule counts, sorted by key, without
// duplicates: its event nodes and the names of its lastEvent nodes. It does
// not follow inSegment (a referenced segment maintains its own features).
func Features(r Rule) []Feature {
	seen := map[string]bool{}
	var out []Feature
	add := func(f Feature) {
		if !seen[f.Key] {
			seen[f.Key] = true
			out = append(out, f)
		}
	}
	walk(&r, "", func(n *Rule, _ string) bool {
		switch {
		case n.Event != nil:
			add(FeatureOf(n.Event.Name, n.Event.Where))
		case n.LastEvent != nil:
			add(FeatureOf(n.LastEvent.Name, nil))
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Counter retention. Day buckets are kept for DayRetention days back from
// the newest occurrence's day; minute buckets for MinuteRetention minutes
// back from the newest occurrence's minute. Windows are exact as long as no
// occurrence is more than MaxAhead after the evaluation time (ingest refuses
// events more than 24 h in the future): the longest last-window
// (MaxLastDays, MaxLastMinutes) plus MaxAhead fits in the retention.
// Between windows reaching further back than DayRetention days before the
// newest occurrence only see the retained days.
const (
	DayRetention    = 400
	MinuteRetention = 2 * 24 * 60
	MaxAhead        = 24 * time.Hour
)

// Counter is a profile's count of one feature, stored on the profile
// document under the feature's key. The zero value is an empty counter.
// It is stored as {days: {"2006-01-02": n}, minutes: {"2006-01-02T15:04":
// n}, total, first, last} (MarshalBSON), readable in the database.
type Counter struct {
	// Days counts occurrences per UTC day.
	Days Buckets `json:"days,omitempty"`
	// Minutes counts recent occurrences per UTC minute, for MINUTES and
	// HOURS windows.
	Minutes Buckets `json:"minutes,omitempty"`
	// Total counts every occurrence ever added (never pruned).
	Total int64 `json:"total"`
	// First and Last are the earliest and latest occurrence times.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Bucket counts the occurrences within one time unit: At is a UTC day
// index (days since 1970-01-01) or minute index.
type Bucket struct {
	At int64 `json:"at"`
	N  int64 `json:"n"`
}

// Buckets are sorted by At, one per unit, counts above zero. A sorted
// slice rather than a map: decoding, range sums and pruning are a binary
// search and a slice, the hot paths of ingest and previews.
type Buckets []Bucket

// find returns the position of the first bucket at or after at.
func (b Buckets) find(at int64) int {
	return sort.Search(len(b), func(i int) bool { return b[i].At >= at })
}

func (b *Buckets) add(at, n int64) {
	i := b.find(at)
	if i < len(*b) && (*b)[i].At == at {
		(*b)[i].N += n
		return
	}
	*b = slices.Insert(*b, i, Bucket{At: at, N: n})
}

// Sum counts the occurrences in units lo..hi (inclusive).
func (b Buckets) Sum(lo, hi int64) int64 {
	var n int64
	for i := b.find(lo); i < len(b) && b[i].At <= hi; i++ {
		n += b[i].N
	}
	return n
}

// dropThrough removes the buckets at or before unit at.
func (b *Buckets) dropThrough(at int64) {
	if i := b.find(at + 1); i > 0 {
		*b = slices.Delete(*b, 0, i)
	}
}

// Add counts one occurrence at at.
func (c *Counter) Add(at time.Time) {
	c.addN(at.UTC(), 1)
}

func (c *Counter) addN(at time.Time, n int64) {
	if n <= 0 {
		return
	}
	advanced := c.Total == 0 || at.After(c.Last)
	if c.Total == 0 || at.Before(c.First) {
		c.First = at
	}
	if advanced {
		c.Last = at
	}
	c.Total += n
	newDay, newMin := dayIndex(c.Last), minuteIndex(c.Last)
	if d := dayIndex(at); d > newDay-DayRetention {
		c.Days.add(d, n)
	}
	if m := minuteIndex(at); m > newMin-MinuteRetention {
		c.Minutes.add(m, n)
	}
	if advanced {
		c.prune()
	}
}

// prune drops buckets that fell out of retention.
func (c *Counter) prune() {
	c.Days.dropThrough(dayIndex(c.Last) - DayRetention)
	c.Minutes.dropThrough(minuteIndex(c.Last) - MinuteRetention)
}

// Merge adds o's occurrences to c (profiles being merged).
func (c *Counter) Merge(o Counter) {
	if o.Total == 0 {
		return
	}
	if c.Total == 0 || o.First.Before(c.First) {
		c.First = o.First
	}
	if c.Total == 0 || o.Last.After(c.Last) {
		c.Last = o.Last
	}
	c.Total += o.Total
	for _, x := range o.Days {
		c.Days.add(x.At, x.N)
	}
	for _, x := range o.Minutes {
		c.Minutes.add(x.At, x.N)
	}
	c.prune()
}

// CountWithin counts the occurrences in [from, to). It is exact when from
// and to are UTC midnights (day buckets) within the day retention, or whole
// UTC minutes (minute buckets) within the minute retention; other bounds are
// rounded down to the minute. A zero from or to leaves that side open.
func (c Counter) CountWithin(from, to time.Time) int64 {
	if from.IsZero() && to.IsZero() {
		return c.Total
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if (from.IsZero() || isMidnight(from)) && (to.IsZero() || isMidnight(to)) {
		if !from.IsZero() {
			lo = dayIndex(from)
		}
		if !to.IsZero() {
			hi = dayIndex(to) - 1
		}
		return c.Days.Sum(lo, hi)
	}
	if !from.IsZero() {
		lo = minuteIndex(from)
	}
	if !to.IsZero() {
		hi = minuteIndex(to) - 1
	}
	return c.Minutes.Sum(lo, hi)
}

// dayIndex is the number of UTC days since 1970-01-01 (floor).
func dayIndex(t time.Time) int64 {
	return floorDiv(t.Unix(), 86400)
}

// minuteIndex is the number of UTC minutes since 1970-01-01 (floor).
func minuteIndex(t time.Time) int64 {
	return floorDiv(t.Unix(), 60)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// parseDay reads a "2006-01-02" key as a day index, without allocating.
func parseDay(s []byte) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// parseMinute reads a "2006-01-02T15:04" key as a minute index.
func parseMinute(s []byte) (int64, bool) {
	if len(s) != 16 || s[10] != 'T' || s[13] != ':' {
		return 0, false
	}
	d, ok := parseDay(s[:10])
	h, ok1 := digits(s[11:13])
	m, ok2 := digits(s[14:16])
	if !ok || !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, false
	}
	return d*1440 + h*60 + m, true
}

func digits(s []byte) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// daysFromCivil is H. Hinnant's days_from_civil: days since 1970-01-01.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
