package agg_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/segment/rule/ruletest"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/agg/aggtest"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func windows() map[string]*rule.Window {
	return map[string]*rule.Window{
		"none":    nil,
		"7d":      {Last: &rule.Last{Amount: 7, Unit: rule.Days}},
		"30d":     {Last: &rule.Last{Amount: 30, Unit: rule.Days}},
		"3h":      {Last: &rule.Last{Amount: 3, Unit: rule.Hours}},
		"90min":   {Last: &rule.Last{Amount: 90, Unit: rule.Minutes}},
		"between": {Between: &rule.Between{From: t0.Truncate(24*time.Hour).AddDate(0, 0, -20), To: t0.Truncate(24*time.Hour).AddDate(0, 0, -5)}},
	}
}

// filters are the event filters of the third definition of each kind and
// window, in turn: every operator, on scalar and array properties (tags
// is an array, maybe empty), hits and misses, so that the reference's
// independent filter code checks agg's (segment's) matching.
var filters = [][]rule.PropertyCond{
	{{Key: "currency", Op: rule.NotIn, Values: []any{"EUR"}}},
	{{Key: "tags", Op: rule.NotIn, Values: []any{"vip"}}},
	{{Key: "tags", Op: rule.In, Values: []any{"vip", "new"}}},
	{{Key: "tags", Op: rule.NE, Value: "vip"}},
	{{Key: "revenue", Op: rule.GTE, Value: int64(50)}},
	{{Key: "tags", Op: rule.Contains, Value: "new"}},
	{{Key: "revenue", Op: rule.LT, Value: 20.0}},
	{{Key: "item.sku", Op: rule.StartsWith, Value: "sku-1"}},
	{{Key: "tags", Op: rule.EQ, Value: "vip"}, {Key: "currency", Op: rule.NE, Value: "EUR"}},
	{{Key: "revenue", Op: rule.GT, Value: 49.5}},
	{{Key: "color", Op: rule.Exists, Value: false}},
	{{Key: "revenue", Op: rule.LTE, Value: int64(50)}, {Key: "tags", Op: rule.NotIn, Values: []any{"old", int64(7)}}},
	{{Key: "tags", Op: rule.GT, Value: int64(5)}},
	{{Key: "tags", Op: rule.StartsWith, Value: "ne"}},
}

func defs() []agg.Def {
	var out []agg.Def
	where := []rule.PropertyCond{{Key: "currency", Op: rule.EQ, Value: "USD"}}
	ws := windows()
	wnames := make([]string, 0, len(ws))
	for wname := range ws {
		wnames = append(wnames, wname)
	}
	sort.Strings(wnames)
	for wi, wname := range wnames {
		w := ws[wname]
		for ki, k := range agg.Kinds {
			prop := ""
			switch {
			case k.Numeric():
				prop = "revenue"
			case k == agg.First || k == agg.Last:
				prop = "item.sku"
			case k != agg.Count:
				prop = "color"
			}
			out = append(out, agg.Def{Key: fmt.Sprintf("%s_%s", k, wname), Kind: k, Event: "order", Property: prop, Window: w, Rev: 7})
			out = append(out, agg.Def{Key: fmt.Sprintf("%s_%s_usd", k, wname), Kind: k, Event: "order", Property: prop, Where: where, Window: w, Rev: 7})
			fi := (ki + wi*len(agg.Kinds)) % len(filters)
			out = append(out, agg.Def{Key: fmt.Sprintf("%s_%s_f%d", k, wname, fi), Kind: k, Event: "order", Property: prop, Where: filters[fi], Window: w, Rev: 7})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// events makes a deterministic random event set over 40 days before t0
// (and up to 24 h after it), with some ties and odd property types.
func events(r *rand.Rand, n int) []aggtest.Event {
	colors := []any{"red", "green", "blue", int64(5), 5.0, true, "teal", map[string]any{"x": 1}, nil}
	var out []aggtest.Event
	for i := range n {
		name := "order"
		if r.IntN(5) == 0 {
			name = "page"
		}
		props := map[string]any{"currency": []string{"USD", "EUR"}[r.IntN(2)]}
		switch r.IntN(6) {
		case 0: // no revenue
		case 1:
			props["revenue"] = "12.5" // not a number
		case 2:
			props["revenue"] = int64(r.IntN(100))
		default:
			props["revenue"] = float64(r.IntN(10000)) / 100
		}
		if r.IntN(4) > 0 {
			props["color"] = colors[r.IntN(len(colors))]
		}
		switch r.IntN(4) {
		case 0: // no tags
		case 1:
			props["tags"] = []any{}
		default:
			var tags []any
			for _, x := range []any{"vip", "new", "New", "old", int64(7)} {
				if r.IntN(2) == 0 {
					tags = append(tags, x)
				}
			}
			props["tags"] = tags
		}
		if r.IntN(3) > 0 {
			props["item"] = map[string]any{"sku": "sku-" + strconv.Itoa(r.IntN(30))}
		}
		at := t0.Add(-time.Duration(r.Int64N(int64(40 * 24 * time.Hour)))).Add(time.Duration(r.IntN(20)) * time.Hour)
		if r.IntN(4) == 0 {
			at = t0.Add(-time.Duration(r.IntN(300)) * time.Minute) // dense recent minutes
		}
		at = at.Truncate(time.Millisecond)
		if i > 0 && r.IntN(10) == 0 {
			at = out[r.IntN(i)].At // tie
		}
		out = append(out, aggtest.Event{ID: fmt.Sprintf("e%05d", r.IntN(100000)), Name: name, Props: props, At: at})
	}
	return out
}

func near(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Abs(fb))
	}
	return reflect.DeepEqual(a, b)
}

// TestAgainstReference adds random events in shuffled order and compares
// every kind, with and without windows, to a from-scratch computation over
// the raw events, at several evaluation times; and checks the reported
// next change time against the reference just before and at it. The
// reference filters events with its own code (not segment's), over
// filters using every operator on scalar and array properties.
//
// It runs the fixed seeds ruletest.FixedSeeds and one random seed, 5 rounds
// each; HALO_PROP_SEED=<n> replays one seed.
func TestAgainstReference(t *testing.T) {
	for _, seed := range ruletest.Seeds(t, "HALO_PROP_SEED") {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Log(ruletest.Replay("HALO_PROP_SEED", seed))
				}
			}()
			againstReference(t, seed, 5)
		})
	}
}

func againstReference(t *testing.T, seed uint64, rounds int) {
	r := rand.New(rand.NewPCG(seed, 1))
	for round := range rounds {
		evs := events(r, 1+r.IntN(200))
		newest := evs[0].At
		for _, e := range evs {
			if e.At.After(newest) {
				newest = e.At
			}
		}
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		for _, d := range defs() {
			var s agg.State
			for _, e := range evs {
				if d.Matches(e.Name, e.Props) {
					d.Add(&s, agg.Occurrence{ID: e.ID, At: e.At, Props: e.Props})
				}
			}
			// now is never more than MaxAhead before the newest event.
			for _, now := range []time.Time{newest.Add(-agg.MaxAhead + time.Minute), newest, newest.Add(3 * time.Hour), newest.Add(8 * 24 * time.Hour), newest.Add(45 * 24 * time.Hour)} {
				got, next := d.Value(&s, now)
				want := aggtest.Reference(d, evs, now)
				if !near(got, want) {
					t.Fatalf("round %d %s at %s: got %#v, want %#v", round, d.Key, now, got, want)
				}
				if next.IsZero() {
					if d.Windowed() {
						if w := aggtest.Reference(d, evs, now.AddDate(2, 0, 0)); !near(w, want) {
							t.Fatalf("round %d %s at %s: no next change reported, but the value becomes %#v", round, d.Key, now, w)
						}
					}
					continue
				}
				if !next.After(now) {
					t.Fatalf("%s: next %s not after now %s", d.Key, next, now)
				}
				if w := aggtest.Reference(d, evs, next.Add(-time.Millisecond)); !near(w, want) {
					t.Fatalf("round %d %s: value changes before next %s", round, d.Key, next)
				}
				if w := aggtest.Reference(d, evs, next); near(w, want) && (d.Kind == agg.Count || d.Kind == agg.UniqueList) {
					// (other kinds may keep their value when an occurrence
					// leaves: a zero, a tie)
					t.Fatalf("round %d %s: value unchanged at next %s", round, d.Key, next)
				}
			}
		}
	}
}

// TestMergeOfStatesByRecompute: the state after adding a set of events in
// any order is the same value (the engine recomputes after merges from
// the union of events).
func TestOrderIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	evs := events(r, 150)
	for _, d := range defs() {
		var a, b agg.State
		for _, e := range evs {
			if d.Matches(e.Name, e.Props) {
				d.Add(&a, agg.Occurrence{ID: e.ID, At: e.At, Props: e.Props})
			}
		}
		for i := len(evs) - 1; i >= 0; i-- {
			e := evs[i]
			if d.Matches(e.Name, e.Props) {
				d.Add(&b, agg.Occurrence{ID: e.ID, At: e.At, Props: e.Props})
			}
		}
		for _, now := range []time.Time{t0, t0.AddDate(0, 0, 10)} {
			va, _ := d.Value(&a, now)
			vb, _ := d.Value(&b, now)
			if !near(va, vb) {
				t.Fatalf("%s: forward %#v, backward %#v", d.Key, va, vb)
			}
		}
	}
}

func TestEmptyValues(t *testing.T) {
	want := map[agg.Kind]any{agg.Count: int64(0), agg.Sum: 0.0, agg.Avg: nil, agg.Min: nil, agg.Max: nil, agg.First: nil, agg.Last: nil, agg.MostFrequent: nil, agg.UniqueList: []any{}}
	for _, d := range defs() {
		got, next := d.Value(nil, t0)
		if !reflect.DeepEqual(got, want[d.Kind]) || !next.IsZero() {
			t.Errorf("%s of nothing: %#v, %s", d.Key, got, next)
		}
	}
	// State of another revision counts as nothing.
	d := agg.Def{Key: "n", Kind: agg.Count, Event: "x", Rev: 2}
	s := agg.State{Rev: 1, N: 5}
	if v, _ := d.Value(&s, t0); v != int64(0) {
		t.Fatalf("stale revision read: %v", v)
	}
}

func TestBoundedState(t *testing.T) {
	d := agg.Def{Key: "u", Kind: agg.UniqueList, Event: "e", Property: "v", Rev: 1}
	m := agg.Def{Key: "m", Kind: agg.MostFrequent, Event: "e", Property: "v", Rev: 1}
	w := agg.Def{Key: "c", Kind: agg.Count, Event: "e", Window: &rule.Window{Last: &rule.Last{Amount: 7, Unit: rule.Days}}, Rev: 1}
	var su, sm, sw agg.State
	for i := range 5000 {
		o := agg.Occurrence{ID: strconv.Itoa(i), At: t0.Add(time.Duration(i) * time.Hour), Props: map[string]any{"v": strconv.Itoa(i)}}
		d.Add(&su, o)
		m.Add(&sm, o)
		w.Add(&sw, o)
	}
	if len(su.Values) != agg.MaxUnique || len(sm.Values) != agg.MaxTracked || len(sw.Buckets) > 7+2 {
		t.Fatalf("state not bounded: %d unique, %d tracked, %d buckets", len(su.Values), len(sm.Values), len(sw.Buckets))
	}
	v, _ := d.Value(&su, t0)
	if l := v.([]any); len(l) != agg.MaxUnique || l[0] != "4999" || l[99] != "4900" {
		t.Fatalf("unique list should hold the 100 latest, newest first: %v…", l[:3])
	}
}

// TestFiltersSplitEvents: each filter of defs keeps some orders and drops
// others, so that a wrong operator changes values.
func TestFiltersSplitEvents(t *testing.T) {
	evs := events(rand.New(rand.NewPCG(3, 3)), 400)
	all := aggtest.Reference(agg.Def{Kind: agg.Count, Event: "order"}, evs, t0).(int64)
	for i, f := range filters {
		n := aggtest.Reference(agg.Def{Kind: agg.Count, Event: "order", Where: f}, evs, t0).(int64)
		if n == 0 || n == all {
			t.Errorf("filter %d %+v keeps %d of %d orders", i, f, n, all)
		}
	}
}
