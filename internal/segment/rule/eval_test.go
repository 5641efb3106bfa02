package rule

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 10, 15, 30, 20, 0, time.UTC) // a Tuesday afternoon

// profileWith returns an input whose counters hold the given occurrences
// of each feature.
func profileWith(r Rule, events map[string][]time.Time) Input {
	in := Input{Traits: map[string]any{}, Features: map[string]Counter{}}
	for _, f := range Features(r) {
		var c Counter
		for _, at := range events[f.Name] {
			c.Add(at)
		}
		in.Features[f.Key] = c
	}
	return in
}

// checkNext checks that the answer holds until next (exclusive) and, when
// tight, flips at next; a zero next means it holds forever.
func checkNext(t *testing.T, r Rule, in Input, now time.Time, tight bool) (bool, time.Time) {
	t.Helper()
	v, next := Evaluate(r, in, now)
	if next.IsZero() {
		for _, d := range []time.Duration{time.Millisecond, time.Hour, 40 * 24 * time.Hour, 800 * 24 * time.Hour} {
			if got, _ := Evaluate(r, in, now.Add(d)); got != v {
				t.Fatalf("nextEvalAt zero but the answer changes at now+%s", d)
			}
		}
		return v, next
	}
	if !next.After(now) {
		t.Fatalf("nextEvalAt %s not after now %s", next, now)
	}
	if got, _ := Evaluate(r, in, next.Add(-time.Millisecond)); got != v {
		t.Fatalf("answer changed before nextEvalAt %s", next)
	}
	if got, _ := Evaluate(r, in, next); tight && got == v {
		t.Fatalf("answer did not change at nextEvalAt %s", next)
	}
	return v, next
}

func TestEventLastDays(t *testing.T) {
	r := Rule{Event: &EventCond{Name: "Order", Count: &CountCond{Op: GTE, Value: 2}, Window: lastDays(7)}}
	// Orders on Mar 3 (7 days before: outside a 7-day window), Mar 4 and Mar 9.
	in := profileWith(r, map[string][]time.Time{"Order": {
		day(2026, 3, 3).Add(10 * time.Hour), day(2026, 3, 4).Add(23 * time.Hour), day(2026, 3, 9).Add(time.Hour)}})
	v, next := checkNext(t, r, in, t0, true)
	// Window Mar 4..Mar 10 holds 2; Mar 4 leaves at Mar 11 00:00.
	if !v || !next.Equal(day(2026, 3, 11)) {
		t.Fatalf("got %v %s", v, next)
	}
	v, next = checkNext(t, r, in, next, true)
	if v || !next.IsZero() {
		t.Fatalf("after Mar 11: %v %s", v, next)
	}
	// On Mar 9 (window Mar 3..9) it holds 3; it drops to 2 on Mar 10 and 1
	// on Mar 11: the answer flips on Mar 11, not at the first edge.
	v, next = checkNext(t, r, in, day(2026, 3, 9).Add(2*time.Hour), true)
	if !v || !next.Equal(day(2026, 3, 11)) {
		t.Fatalf("from Mar 9: %v %s", v, next)
	}
	// Before any order: false until Mar 4 enters (with Mar 3 still in).
	v, next = checkNext(t, r, in, day(2026, 3, 1), true)
	if v || !next.Equal(day(2026, 3, 4)) {
		t.Fatalf("from Mar 1: %v %s", v, next)
	}
}

func TestEventSubDayWindows(t *testing.T) {
	r := Rule{Event: &EventCond{Name: "View", Count: &CountCond{Op: GTE, Value: 3}, Window: &Window{Last: &Last{30, Minutes}}}}
	base := t0.Truncate(time.Minute) // 15:30
	in := profileWith(r, map[string][]time.Time{"View": {
		base.Add(-40 * time.Minute), base.Add(-29*time.Minute + 59*time.Second), base.Add(-5 * time.Minute), base.Add(10 * time.Second)}})
	// Window at 15:30:20 = minutes 15:01..15:30: 15:01:59, 15:25, 15:30:10 → 3.
	v, next := checkNext(t, r, in, t0, true)
	if !v || !next.Equal(base.Add(time.Minute)) {
		t.Fatalf("got %v %s", v, next)
	}
	// Hours are 60-minute windows.
	rh := Rule{Event: &EventCond{Name: "View", Count: &CountCond{Op: EQ, Value: 4}, Window: &Window{Last: &Last{1, Hours}}}}
	inh := profileWith(rh, map[string][]time.Time{"View": in.Features[Features(r)[0].Key].sortedTimesForTest()})
	v, next = checkNext(t, rh, inh, t0, true)
	if !v || !next.Equal(base.Add(-40*time.Minute).Add(time.Hour)) {
		t.Fatalf("hours: %v %s", v, next)
	}
	// A future occurrence (ingest allows up to 24 h ahead) enters later.
	rf := Rule{Event: &EventCond{Name: "View", Window: &Window{Last: &Last{5, Minutes}}}}
	inf := profileWith(rf, map[string][]time.Time{"View": {t0.Add(3 * time.Hour)}})
	v, next = checkNext(t, rf, inf, t0, true)
	if v || !next.Equal(base.Add(3*time.Hour)) {
		t.Fatalf("future: %v %s", v, next)
	}
	v, next = checkNext(t, rf, inf, next, true)
	if !v || !next.Equal(base.Add(3*time.Hour+5*time.Minute)) {
		t.Fatalf("future, entered: %v %s", v, next)
	}
}

// sortedTimesForTest re-expands minute buckets into one time per occurrence.
func (c Counter) sortedTimesForTest() []time.Time {
	var out []time.Time
	for _, x := range c.Minutes {
		for i := int64(0); i < x.N; i++ {
			out = append(out, time.Unix(x.At*60, 0).UTC())
		}
	}
	return out
}

func TestEventFiltersCountsAndWindows(t *testing.T) {
	where := []PropertyCond{{Key: "revenue", Op: GT, Value: 50}, {Key: "shop.country", Op: EQ, Value: "PT"}}
	f := FeatureOf("Order", where)
	var c Counter
	for _, e := range []struct {
		name  string
		props map[string]any
		at    time.Time
	}{
		{"Order", map[string]any{"revenue": 60.5, "shop": map[string]any{"country": "PT"}}, day(2026, 1, 5)},
		{"Order", map[string]any{"revenue": int64(51), "shop": map[string]any{"country": "PT"}}, day(2026, 2, 5)},
		{"Order", map[string]any{"revenue": int64(50), "shop": map[string]any{"country": "PT"}}, day(2026, 2, 6)},
		{"Order", map[string]any{"revenue": "999", "shop": map[string]any{"country": "PT"}}, day(2026, 2, 7)},
		{"Order", map[string]any{"revenue": 70, "shop": map[string]any{"country": "ES"}}, day(2026, 2, 8)},
		{"Refund", map[string]any{"revenue": 70, "shop": map[string]any{"country": "PT"}}, day(2026, 2, 9)},
	} {
		if f.Matches(e.name, e.props) {
			c.Add(e.at)
		}
	}
	if c.Total != 2 || !c.First.Equal(day(2026, 1, 5)) || !c.Last.Equal(day(2026, 2, 5)) {
		t.Fatalf("counter %+v", c)
	}
	in := Input{Features: map[string]Counter{f.Key: c}}
	ev := func(cc *CountCond, w *Window) Rule {
		return Rule{Event: &EventCond{Name: "Order", Where: []PropertyCond{where[1], where[0]}, Count: cc, Window: w}}
	}
	feb := &Window{Between: &Between{day(2026, 2, 1), day(2026, 3, 1)}}
	cases := []struct {
		r    Rule
		want bool
	}{
		{ev(nil, nil), true},
		{ev(&CountCond{Op: EQ, Value: 2}, nil), true},
		{ev(&CountCond{Op: GT, Value: 2}, nil), false},
		{ev(&CountCond{Op: EQ, Value: 1}, feb), true},
		{ev(&CountCond{Op: NE, Value: 1}, feb), false},
		{ev(&CountCond{Op: LT, Value: 1}, &Window{Between: &Between{day(2026, 2, 6), day(2026, 3, 1)}}), true},
		{ev(&CountCond{Op: LTE, Value: 0}, lastDays(10)), false}, // Feb 5 is within Feb 5..14
		{ev(&CountCond{Op: EQ, Value: 0}, lastDays(9)), true},
		{Rule{Event: &EventCond{Name: "Order"}}, false}, // the unfiltered feature has no counter here
	}
	now := day(2026, 2, 14).Add(time.Hour)
	for i, c := range cases {
		if got, _ := checkNext(t, c.r, in, now, false); got != c.want {
			t.Errorf("case %d: got %v", i, got)
		}
	}
	if _, next := Evaluate(cases[3].r, in, now); !next.IsZero() {
		t.Errorf("between windows do not depend on time, next = %s", next)
	}
}

func TestInactivity(t *testing.T) {
	r := Rule{LastEvent: &InactivityCond{Name: "Login", NotWithin: Last{14, Days}}}
	in := profileWith(r, map[string][]time.Time{"Login": {day(2026, 3, 1).Add(8 * time.Hour)}})
	v, next := checkNext(t, r, in, t0, true)
	// Window Feb 25..Mar 10 contains Mar 1; it leaves at Mar 15.
	if v || !next.Equal(day(2026, 3, 15)) {
		t.Fatalf("got %v %s", v, next)
	}
	if v, next := checkNext(t, r, in, next, true); !v || !next.IsZero() {
		t.Fatalf("at Mar 15: %v %s", v, next)
	}
	// Never logged in: inactive.
	if v, _ := Evaluate(r, Input{}, t0); !v {
		t.Fatal("a profile that never logged in is inactive")
	}
	// "Did it, but not lately".
	both := Rule{And: []Rule{{Event: &EventCond{Name: "Login"}}, r}}
	if v, _ := Evaluate(both, Input{}, t0); v {
		t.Fatal("never logged in")
	}
	if v, next := checkNext(t, both, in, t0, true); v || !next.Equal(day(2026, 3, 15)) {
		t.Fatalf("both: %v %s", v, next)
	}
	// The inactivity feature is the unfiltered event feature of that name.
	if Features(r)[0].Key != FeatureKey("Login", nil) {
		t.Fatal("feature key")
	}
}

func TestProfileFields(t *testing.T) {
	in := Input{CreatedAt: day(2025, 1, 1), FirstSeenAt: day(2025, 1, 2), LastSeenAt: day(2026, 3, 1), EventCount: 12}
	cases := []struct {
		c    ProfileCond
		want bool
	}{
		{ProfileCond{Field: CreatedAt, Op: LT, Value: "2025-06-01T00:00:00Z"}, true},
		{ProfileCond{Field: CreatedAt, Op: EQ, Value: day(2025, 1, 1)}, true},
		{ProfileCond{Field: FirstSeenAt, Op: GT, Value: "2025-01-02T00:00:00+01:00"}, true},
		{ProfileCond{Field: LastSeenAt, Op: GTE, Value: "2026-03-01T00:00:00Z"}, true},
		{ProfileCond{Field: LastSeenAt, Op: NE, Value: "2026-03-01T00:00:00Z"}, false},
		{ProfileCond{Field: EventCount, Op: GT, Value: 11.5}, true},
		{ProfileCond{Field: EventCount, Op: LTE, Value: int32(11)}, false},
		{ProfileCond{Field: EventCount, Op: EQ, Value: "12"}, false},
		{ProfileCond{Field: CreatedAt, Op: LT, Value: 5}, false},
	}
	for i, c := range cases {
		if got, next := Evaluate(Rule{Profile: &c.c}, in, t0); got != c.want || !next.IsZero() {
			t.Errorf("case %d: got %v %s", i, got, next)
		}
	}
}

func TestBooleanNodesAndNext(t *testing.T) {
	soon := Rule{Event: &EventCond{Name: "A", Window: lastDays(1)}}   // true until tomorrow
	later := Rule{Event: &EventCond{Name: "B", Window: lastDays(30)}} // true for weeks
	never := Rule{Event: &EventCond{Name: "C"}}                       // false forever
	pro := Rule{Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}}
	all := Rule{Or: []Rule{soon, later, never}}
	in := profileWith(all, map[string][]time.Time{"A": {t0}, "B": {t0}})
	in.Traits = map[string]any{"plan": "pro"}
	tomorrow, in30 := day(2026, 3, 11), day(2026, 4, 9)
	cases := []struct {
		name string
		r    Rule
		want bool
		next time.Time
	}{
		{"and true: first child change", Rule{And: []Rule{pro, later, soon}}, true, tomorrow},
		{"and false forever", Rule{And: []Rule{soon, never}}, false, time.Time{}},
		{"or true: last true child change", Rule{Or: []Rule{soon, later, never}}, true, in30},
		{"or true forever", Rule{Or: []Rule{soon, pro}}, true, time.Time{}},
		{"not", Rule{Not: &soon}, false, tomorrow},
		{"and false: last false child change", Rule{And: []Rule{{Not: &soon}, {Not: &later}}}, false, in30},
		{"empty node", Rule{}, false, time.Time{}},
		{"computed without values", Rule{Computed: &ComputedCond{Key: "n", Op: Exists}}, false, time.Time{}},
	}
	for _, c := range cases {
		v, next := Evaluate(c.r, in, t0)
		if v != c.want || !next.Equal(c.next) {
			t.Errorf("%s: got %v %s, want %v %s", c.name, v, next, c.want, c.next)
		}
		checkNext(t, c.r, in, t0, false)
	}
}

func TestInSegment(t *testing.T) {
	recent := Rule{Event: &EventCond{Name: "A", Window: lastDays(2)}}
	segs := map[string]SegmentRef{
		"recent":     {Rule: &recent},
		"staticIn":   {Member: true},
		"staticOut":  {},
		"nested":     {Rule: &Rule{And: []Rule{{InSegment: "recent"}, {InSegment: "staticIn"}}}},
		"selfCycle":  {Rule: &Rule{InSegment: "selfCycle"}},
		"notNested":  {Rule: &Rule{Not: &Rule{InSegment: "nested"}}},
		"notMissing": {Rule: &Rule{Not: &Rule{InSegment: "missing"}}},
	}
	in := profileWith(recent, map[string][]time.Time{"A": {t0}})
	in.Segment = func(id string) (SegmentRef, bool) { s, ok := segs[id]; return s, ok }
	cases := []struct {
		id   string
		want bool
		next time.Time
	}{
		{"recent", true, day(2026, 3, 12)},
		{"staticIn", true, time.Time{}},
		{"staticOut", false, time.Time{}},
		{"nested", true, day(2026, 3, 12)},
		{"notNested", false, day(2026, 3, 12)},
		{"missing", false, time.Time{}},
		{"notMissing", true, time.Time{}},
		{"selfCycle", false, time.Time{}}, // rejected at save; bounded at evaluation
	}
	for _, c := range cases {
		v, next := Evaluate(Rule{InSegment: c.id}, in, t0)
		if v != c.want || !next.Equal(c.next) {
			t.Errorf("%s: got %v %s", c.id, v, next)
		}
	}
	in.Segment = nil
	if v, _ := Evaluate(Rule{InSegment: "recent"}, in, t0); v {
		t.Error("no resolver: false")
	}
}

func TestDependsOn(t *testing.T) {
	r := Rule{Or: []Rule{
		{Trait: &TraitCond{Key: "address.city", Op: EQ, Value: "Lisbon"}},
		{Trait: &TraitCond{Key: "plan", Op: Exists}},
		{And: []Rule{
			{Event: &EventCond{Name: "Order", Where: []PropertyCond{{Key: "revenue", Op: GT, Value: 5}}}},
			{Not: &Rule{LastEvent: &InactivityCond{Name: "Login", NotWithin: Last{3, Days}}}},
			{Event: &EventCond{Name: "Order"}},
		}},
		{Profile: &ProfileCond{Field: LastSeenAt, Op: LT, Value: "2026-01-01T00:00:00Z"}},
		{InSegment: "s2"}, {InSegment: "s1"},
	}}
	d := DependsOn(r)
	eq := func(a, b []string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if !eq(d.TraitKeys, []string{"address.city", "plan"}) || !eq(d.EventNames, []string{"Login", "Order"}) ||
		!eq(d.Segments, []string{"s1", "s2"}) || len(d.ProfileFields) != 1 || d.ProfileFields[0] != LastSeenAt ||
		len(d.Features) != 3 || !d.Timed {
		t.Fatalf("%+v", d)
	}
	for key, want := range map[string]bool{"address": true, "address.city": true, "address.city.x": true, "addr": false, "plan": true, "planet": false} {
		if d.TouchesTrait(key) != want {
			t.Errorf("TouchesTrait(%q) != %v", key, want)
		}
	}
	if DependsOn(Rule{Event: &EventCond{Name: "x", Window: &Window{Between: &Between{day(2025, 1, 1), day(2025, 1, 2)}}}}).Timed {
		t.Error("between is not timed")
	}
}

func TestIdentifierNode(t *testing.T) {
	now := day(2026, 3, 1)
	email := Rule{Identifier: &IdentifierCond{Type: "email"}}
	noPhone := Rule{Identifier: &IdentifierCond{Type: "phone", Exists: ptr(false)}}
	both := Rule{And: []Rule{email, noPhone}}
	for _, c := range []struct {
		held                 []string
		email, noPhone, both bool
	}{
		{nil, false, true, false},
		{[]string{"email"}, true, true, true},
		{[]string{"email", "phone"}, true, false, false},
		{[]string{"phone"}, false, false, false},
	} {
		in := Input{Holds: func(t string) bool { return slices.Contains(c.held, t) }}
		if c.held == nil {
			in.Holds = nil // no lookup: holds nothing
		}
		for _, x := range []struct {
			r    Rule
			want bool
		}{{email, c.email}, {noPhone, c.noPhone}, {both, c.both}} {
			got, next := Evaluate(x.r, in, now)
			if got != x.want || !next.IsZero() {
				t.Errorf("held %v, rule %s: %v (next %v), want %v, never changing with time", c.held, show(x.r), got, next, x.want)
			}
		}
	}
	d := DependsOn(Rule{Or: []Rule{noPhone, email, {Identifier: &IdentifierCond{Type: "email"}}}})
	if !slices.Equal(d.IdentifierTypes, []string{"email", "phone"}) || d.Timed {
		t.Fatalf("deps %+v", d)
	}
	if !d.Affected(Touched{Identifiers: true}) || DependsOn(Rule{Trait: &TraitCond{Key: "a", Op: Exists}}).Affected(Touched{Identifiers: true}) {
		t.Fatal("a new identifier affects the rules with identifier nodes, and only them")
	}
	if d.Affected(Touched{TraitKeys: []string{"email"}, Seen: true, EventNames: []string{"x"}}) {
		t.Fatal("traits and events do not affect identifier nodes")
	}
}

func TestFeatureKeys(t *testing.T) {
	a := FeatureKey("Order", []PropertyCond{{Key: "revenue", Op: GT, Value: 50}, {Key: "plan", Op: In, Values: []any{"pro", "team"}}})
	b := FeatureKey("Order", []PropertyCond{{Key: "plan", Op: In, Values: []any{"team", "pro", "pro"}}, {Key: "revenue", Op: GT, Value: 50.0}})
	c := FeatureKey("Order", []PropertyCond{{Key: "revenue", Op: GT, Value: 50.5}})
	d := FeatureKey("order", nil)
	e := FeatureKey("Order", []PropertyCond{{Key: "revenue", Op: GT, Value: "50"}})
	if a != b || a == c || a == d || a == e || len(a) != 14 || a[:2] != "f_" {
		t.Fatalf("%s %s %s %s %s", a, b, c, d, e)
	}
	// Keys are stable across releases: they name stored counters.
	if got := FeatureKey("Order Completed", nil); got != "f_d6957f63ff3d" {
		t.Fatal(got)
	}
	if got := FeatureKey("Order Completed", []PropertyCond{{Key: "revenue", Op: GT, Value: int32(50)}}); got != "f_7b5d6f8836c5" {
		t.Fatal(got)
	}
}

func TestCounterRetentionAndMerge(t *testing.T) {
	var c Counter
	start := day(2025, 1, 1)
	for i := 0; i < 500; i++ {
		c.Add(start.Add(time.Duration(i) * 24 * time.Hour).Add(time.Hour))
	}
	if c.Total != 500 || len(c.Days) != DayRetention || len(c.Minutes) != 2 { // the last two days' minutes
		t.Fatalf("total %d, %d days, %d minutes", c.Total, len(c.Days), len(c.Minutes))
	}
	last := start.Add(499 * 24 * time.Hour)
	if n := c.CountWithin(last.Add(-(MaxLastDays-1)*24*time.Hour), last.Add(24*time.Hour)); n != MaxLastDays {
		t.Fatalf("a maximal window: %d", n)
	}
	// Minute buckets.
	for i := 0; i < 3000; i++ {
		c.Add(last.Add(time.Hour + time.Duration(i)*time.Minute))
	}
	if len(c.Minutes) != MinuteRetention {
		t.Fatalf("%d minutes kept", len(c.Minutes))
	}
	end := last.Add(time.Hour + 3000*time.Minute)
	if n := c.CountWithin(end.Add(-MaxLastMinutes*time.Minute), end); n != MaxLastMinutes {
		t.Fatalf("last day of minutes: %d", n)
	}
	// A late occurrence beyond retention counts in Total and First only.
	c.Add(day(2020, 1, 1))
	if c.Total != 3501 || !c.First.Equal(day(2020, 1, 1)) || len(c.Days) > DayRetention {
		t.Fatalf("late: %+v", c.Total)
	}
	// Merge equals adding the occurrences to one counter.
	var a, b, both Counter
	for i := 0; i < 200; i++ {
		at := start.Add(time.Duration(i*37) * time.Hour)
		both.Add(at)
		if i%3 == 0 {
			a.Add(at)
		} else {
			b.Add(at)
		}
	}
	a.Merge(b)
	if a.Total != both.Total || !a.First.Equal(both.First) || !a.Last.Equal(both.Last) || len(a.Days) != len(both.Days) || len(a.Minutes) != len(both.Minutes) {
		t.Fatalf("merge: %+v vs %+v", a.Total, both.Total)
	}
	if !reflect.DeepEqual(a.Days, both.Days) || !reflect.DeepEqual(a.Minutes, both.Minutes) {
		t.Fatalf("merge buckets differ:\n%v\n%v", a.Days, both.Days)
	}
}

// BenchmarkEvaluate: a typical rule (trait, 30-day event count with a
// filter, 14-day inactivity) on a profile with a year of activity.
func BenchmarkEvaluate(b *testing.B) {
	r := Rule{And: []Rule{
		{Trait: &TraitCond{Key: "plan", Op: In, Values: []any{"pro", "team"}}},
		{Event: &EventCond{Name: "Order", Where: []PropertyCond{{Key: "revenue", Op: GT, Value: 50}}, Count: &CountCond{Op: GTE, Value: 2}, Window: lastDays(30)}},
		{Not: &Rule{LastEvent: &InactivityCond{Name: "Login", NotWithin: Last{14, Days}}}},
	}}
	events := map[string][]time.Time{}
	for i := 0; i < 365; i += 3 {
		events["Order"] = append(events["Order"], t0.Add(-time.Duration(i)*24*time.Hour))
		events["Login"] = append(events["Login"], t0.Add(-time.Duration(i)*24*time.Hour-time.Hour))
	}
	in := profileWith(r, events)
	in.Traits["plan"] = "pro"
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(r, in, t0)
	}
}
