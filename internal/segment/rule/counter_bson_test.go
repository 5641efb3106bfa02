package rule

import (
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The hand-written codec must round-trip, alone and as a map value inside
// a document (how profiles hold counters).
func TestCounterBSONRoundTrip(t *testing.T) {
	base := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	var c Counter
	for i := 0; i < 40; i++ {
		c.Add(base.Add(-time.Duration(i*7) * time.Hour))
	}
	if len(c.Days) < 10 || len(c.Minutes) < 5 {
		t.Fatalf("fixture too small: %d days, %d minutes", len(c.Days), len(c.Minutes))
	}
	for name, want := range map[string]Counter{"full": c, "empty": {}} {
		type doc struct {
			F map[string]Counter `bson:"f"`
		}
		raw, err := bson.Marshal(doc{F: map[string]Counter{"k": want}})
		if err != nil {
			t.Fatal(err)
		}
		var got doc
		if err := bson.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g := got.F["k"]
		if len(want.Days) == 0 && len(g.Days) == 0 {
			g.Days = want.Days
		}
		if len(want.Minutes) == 0 && len(g.Minutes) == 0 {
			g.Minutes = want.Minutes
		}
		if !g.First.Equal(want.First) || !g.Last.Equal(want.Last) {
			t.Fatalf("%s: first/last %s %s, want %s %s", name, g.First, g.Last, want.First, want.Last)
		}
		g.First, g.Last = want.First, want.Last
		if !reflect.DeepEqual(g, want) {
			t.Errorf("%s: got %+v, want %+v", name, g, want)
		}
	}
	// The stored layout is readable: day and minute keys.
	raw, _ := bson.Marshal(c)
	if n, err := bson.Raw(raw).LookupErr("days", "2026-11-23"); err != nil || n.Int64() != c.CountWithin(base.Truncate(24*time.Hour), base.Truncate(24*time.Hour).Add(24*time.Hour)) {
		t.Fatalf("days.2026-11-23: %v %v", n, err)
	}
	if _, err := bson.Raw(raw).LookupErr("minutes", "2026-11-23T09:30"); err != nil {
		t.Fatalf("minutes.2026-11-23T09:30: %v", err)
	}
}

// Documents written by the reflection encoder before the hand-written one
// (maps in any order, int32 counts) decode to the same counter; keys that
// do not parse are dropped, as pruning dropped them.
func TestCounterBSONLegacyLayout(t *testing.T) {
	type legacy struct {
		Days    map[string]int64 `bson:"days,omitempty"`
		Minutes map[string]int64 `bson:"minutes,omitempty"`
		Total   int64            `bson:"total"`
		First   time.Time        `bson:"first"`
		Last    time.Time        `bson:"last"`
	}
	first := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	last := time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)
	raw, err := bson.Marshal(legacy{
		Days:    map[string]int64{"2026-11-23": 2, "2026-11-01": 1, "2026-11-10": 4, "garbage": 9},
		Minutes: map[string]int64{"2026-11-23T10:05": 1, "2026-11-23T09:00": 1},
		Total:   7, First: first, Last: last,
	})
	if err != nil {
		t.Fatal(err)
	}
	var c Counter
	if err := bson.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	d := func(s string) int64 { v, _ := parseDay([]byte(s)); return v }
	m := func(s string) int64 { v, _ := parseMinute([]byte(s)); return v }
	want := Counter{
		Days:    Buckets{{d("2026-11-01"), 1}, {d("2026-11-10"), 4}, {d("2026-11-23"), 2}},
		Minutes: Buckets{{m("2026-11-23T09:00"), 1}, {m("2026-11-23T10:05"), 1}},
		Total:   7, First: first, Last: last,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}

	raw, _ = bson.Marshal(bson.D{{Key: "days", Value: bson.D{{Key: "2026-11-23", Value: int32(3)}, {Key: "2026-11-22", Value: int32(1)}}}, {Key: "total", Value: int32(4)}})
	if err := c.UnmarshalBSON(raw); err != nil || c.Days.Sum(d("2026-11-22"), d("2026-11-23")) != 4 || c.Days[0].At != d("2026-11-22") || c.Total != 4 {
		t.Fatalf("int32, unsorted: %+v %v", c, err)
	}
	for name, bad := range map[string]bson.D{
		"string total":  {{Key: "total", Value: "three"}},
		"string bucket": {{Key: "days", Value: bson.D{{Key: "2026-11-23", Value: "x"}}}},
		"days array":    {{Key: "days", Value: bson.A{1}}},
		"first string":  {{Key: "first", Value: "yesterday"}},
	} {
		raw, _ := bson.Marshal(bad)
		if err := c.UnmarshalBSON(raw); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBuckets(t *testing.T) {
	var b Buckets
	for _, at := range []int64{5, 1, 3, 5, 9, 1} {
		b.add(at, 1)
	}
	if want := (Buckets{{1, 2}, {3, 1}, {5, 2}, {9, 1}}); !reflect.DeepEqual(b, want) {
		t.Fatalf("add: %v, want %v", b, want)
	}
	if b.Sum(2, 5) != 3 || b.Sum(0, 100) != 6 || b.Sum(6, 8) != 0 || b.Sum(9, 9) != 1 {
		t.Fatalf("sums: %d %d %d %d", b.Sum(2, 5), b.Sum(0, 100), b.Sum(6, 8), b.Sum(9, 9))
	}
	b.dropThrough(3)
	if want := (Buckets{{5, 2}, {9, 1}}); !reflect.DeepEqual(b, want) {
		t.Fatalf("dropThrough: %v, want %v", b, want)
	}
	b.dropThrough(100)
	if len(b) != 0 {
		t.Fatalf("dropThrough all: %v", b)
	}
}
