package agg

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment/rule"
)

// oldState is how states were stored before the packed layout: the
// reflection encoding of these tags (the hand-written codec of that time
// wrote the same bytes). Frozen here so the compatibility test does not
// follow later changes to State.
type oldState struct {
	Rev     int64       `bson:"r"`
	N       int64       `bson:"n,omitempty"`
	Sum     float64     `bson:"s,omitempty"`
	Lo      float64     `bson:"lo,omitempty"`
	Hi      float64     `bson:"hi,omitempty"`
	First   *oldPoint   `bson:"f,omitempty"`
	Last    *oldPoint   `bson:"l,omitempty"`
	Values  []oldValue  `bson:"v,omitempty"`
	Buckets []oldBucket `bson:"b,omitempty"`
	Newest  time.Time   `bson:"t,omitempty"`
}

type oldPoint struct {
	V  any       `bson:"v"`
	At time.Time `bson:"at"`
	ID string    `bson:"id"`
}

type oldValue struct {
	V    any         `bson:"v"`
	N    int64       `bson:"n,omitempty"`
	Last time.Time   `bson:"at"`
	Per  []oldPerBkt `bson:"b,omitempty"`
}

type oldPerBkt struct {
	At int64 `bson:"at"`
	N  int64 `bson:"n"`
}

type oldBucket struct {
	At    int64     `bson:"at"`
	N     int64     `bson:"n"`
	Sum   float64   `bson:"s,omitempty"`
	Lo    float64   `bson:"lo,omitempty"`
	Hi    float64   `bson:"hi,omitempty"`
	First *oldPoint `bson:"f,omitempty"`
	Last  *oldPoint `bson:"l,omitempty"`
}

func toOld(s State) oldState {
	pt := func(p *Point) *oldPoint {
		if p == nil {
			return nil
		}
		return &oldPoint{V: p.V, At: p.At, ID: p.ID}
	}
	o := oldState{Rev: s.Rev, N: s.N, Sum: s.Sum, Lo: s.Lo, Hi: s.Hi, First: pt(s.First), Last: pt(s.Last), Newest: s.Newest}
	for _, v := range s.Values {
		ov := oldValue{V: v.V, N: v.N, Last: v.Last}
		for _, b := range v.Per {
			ov.Per = append(ov.Per, oldPerBkt{At: b.At, N: b.N})
		}
		o.Values = append(o.Values, ov)
	}
	for _, b := range s.Buckets {
		o.Buckets = append(o.Buckets, oldBucket{At: b.At, N: b.N, Sum: b.Sum, Lo: b.Lo, Hi: b.Hi, First: pt(b.First), Last: pt(b.Last)})
	}
	return o
}

// randomState is a state with every field in use, values of every type
// a property can hold, and times and floats the packed layout has to
// take care with (fractions, huge, negative, milliseconds, zero time,
// unsorted units).
func randomState(r *rand.Rand) State {
	vals := []any{"red", "", "ünï", 3.5, -0.1, 1e300, float64(1 << 60), int64(7), int64(-1 << 62), true, false, nil,
		map[string]any{"k": "v", "n": int64(2)}, []any{"a", int64(1), 2.5}}
	at := func() time.Time {
		if r.IntN(40) == 0 {
			return time.UnixMilli(0).UTC()
		}
		return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(1e9)) * time.Millisecond * time.Duration(1+r.IntN(1000)))
	}
	pt := func() *Point {
		if r.IntN(3) == 0 {
			return nil
		}
		return &Point{V: vals[r.IntN(len(vals))], At: at(), ID: "ev-" + string(rune('a'+r.IntN(26))) + strings.Repeat("x", r.IntN(30))}
	}
	f := func() float64 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return -float64(r.IntN(1000)) / 7
		case 2:
			return float64(r.Int64N(1 << 62))
		case 3:
			return math.MaxFloat64 / float64(1+r.IntN(5))
		}
		return float64(r.IntN(1000)) / 4
	}
	unit := func(base int64) int64 {
		if r.IntN(10) == 0 {
			return -base
		}
		return base
	}
	s := State{Rev: r.Int64N(1 << 52), N: int64(r.IntN(3)), Sum: f(), Lo: f(), Hi: f(), First: pt(), Last: pt()}
	for range r.IntN(5) {
		v := Value{V: vals[r.IntN(len(vals))], N: int64(r.IntN(300)), Last: at()}
		base := unit(int64(20000 + r.IntN(40)))
		for j := range r.IntN(4) {
			v.Per = append(v.Per, rule.Bucket{At: base + int64(j*(1+r.IntN(3))), N: int64(1 + r.IntN(400))})
		}
		s.Values = append(s.Values, v)
	}
	base := unit(int64(29000000 + r.IntN(100000)))
	var cols [5]bool // which optional bucket fields this state uses, as a kind would
	for i := range cols {
		cols[i] = r.IntN(3) == 0
	}
	for j := range r.IntN(40) {
		b := Bucket{At: base + int64(j*(1+r.IntN(100))), N: int64(r.IntN(5000))}
		if r.IntN(20) == 0 {
			b.At = int64(r.IntN(1000)) // out of order
		}
		if cols[0] {
			b.Sum = f()
		}
		if cols[1] {
			b.Lo = f()
		}
		if cols[2] {
			b.Hi = f()
		}
		if cols[3] {
			b.First = pt()
		}
		if cols[4] {
			b.Last = pt()
		}
		s.Buckets = append(s.Buckets, b)
	}
	if r.IntN(2) == 0 {
		s.Newest = at()
	}
	return s
}

// TestStateCodecRoundTrip: what MarshalBSON writes reads back as the same
// state, on its own and as a map value inside a profile-like document.
func TestStateCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 2000; i++ {
		s := randomState(r)
		raw, err := s.MarshalBSON()
		if err != nil {
			t.Fatal(err)
		}
		w := s
		w.Normalise()
		var got State
		if err := got.UnmarshalBSON(raw); err != nil {
			t.Fatalf("case %d: %v\n%v", i, err, bson.Raw(raw))
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("case %d: decoded\n%#v\nwant\n%#v", i, got, w)
		}
		type doc struct {
			C map[string]State `bson:"c"`
		}
		rawDoc, err := bson.Marshal(doc{C: map[string]State{"k": s}})
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := bson.Unmarshal(rawDoc, &back); err != nil || !reflect.DeepEqual(back.C["k"], w) {
			t.Fatalf("case %d: in a document: %v", i, err)
		}
	}
}

// TestStateCodecReadsOldLayout: documents written before the packed
// layout (sub-documents and arrays of them) decode to the same state.
func TestStateCodecReadsOldLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 2000; i++ {
		s := randomState(r)
		raw, err := bson.Marshal(toOld(s))
		if err != nil {
			t.Fatal(err)
		}
		w := s
		w.Normalise()
		var got State
		if err := got.UnmarshalBSON(raw); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("case %d: decoded\n%#v\nwant\n%#v", i, got, w)
		}
		// Re-written in the new layout, it still reads the same.
		again, err := got.MarshalBSON()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalBSON(again); err != nil || !reflect.DeepEqual(back, w) {
			t.Fatalf("case %d: old → new: %v", i, err)
		}
	}
}

// TestStateCodecKinds round-trips states built by Add for every kind
// and window, checking the value read from the decoded state, and that
// the packed layout is much smaller than the old one.
func TestStateCodecKinds(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	windows := []*rule.Window{nil,
		{Last: &rule.Last{Amount: 30, Unit: rule.Days}},
		{Last: &rule.Last{Amount: 6, Unit: rule.Hours}},
		{Between: &rule.Between{From: now.AddDate(0, 0, -3), To: now}}}
	r := rand.New(rand.NewPCG(15, 16))
	var oldSize, newSize int
	for _, w := range windows {
		for _, k := range Kinds {
			d := Def{Key: "k", Kind: k, Event: "e", Property: "p", Window: w, Rev: 3}
			if k == Count {
				d.Property = ""
			}
			var s State
			for i := range 400 {
				v := any(float64(r.IntN(100)))
				if !k.Numeric() {
					v = []any{"red", "green", "blue", int64(4), true}[r.IntN(5)]
				}
				at := now.Add(-time.Duration(r.Int64N(int64(48 * time.Hour)))).Truncate(time.Millisecond)
				d.Add(&s, Occurrence{ID: fmt.Sprintf("%024d", i), At: at, Props: map[string]any{"p": v}})
			}
			raw, err := s.MarshalBSON()
			if err != nil {
				t.Fatal(err)
			}
			old, _ := bson.Marshal(toOld(s))
			oldSize, newSize = oldSize+len(old), newSize+len(raw)
			var got State
			if err := got.UnmarshalBSON(raw); err != nil {
				t.Fatalf("%s %v: %v", k, w, err)
			}
			for _, at := range []time.Time{now, now.Add(5 * time.Hour), now.AddDate(0, 0, 29)} {
				want, wnext := d.Value(&s, at)
				v, next := d.Value(&got, at)
				if !reflect.DeepEqual(v, want) || !next.Equal(wnext) {
					t.Fatalf("%s %v at %s: decoded state reads %v (%s), want %v (%s)", k, w, at, v, next, want, wnext)
				}
			}
		}
	}
	t.Logf("old layout %d bytes, packed %d", oldSize, newSize)
	if newSize*3 > oldSize {
		t.Errorf("packed layout %d bytes, old %d: expected at least 3x smaller", newSize, oldSize)
	}
}

func TestStateCodecRefusesWrongTypes(t *testing.T) {
	for name, d := range map[string]bson.D{
		"rev string":     {{Key: "r", Value: "one"}},
		"sum string":     {{Key: "s", Value: "lots"}},
		"point string":   {{Key: "f", Value: "p"}},
		"values object":  {{Key: "v", Value: bson.D{{Key: "x", Value: 1}}}},
		"bucket n":       {{Key: "b", Value: bson.A{bson.D{{Key: "at", Value: int64(1)}, {Key: "n", Value: "x"}}}}},
		"newest int":     {{Key: "t", Value: int64(5)}},
		"value at":       {{Key: "v", Value: bson.A{bson.D{{Key: "at", Value: "yesterday"}}}}},
		"per not a list": {{Key: "v", Value: bson.A{bson.D{{Key: "b", Value: int64(3)}}}}},
	} {
		raw, _ := bson.Marshal(d)
		var s State
		if err := s.UnmarshalBSON(raw); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestStateCodecRefusesMalformedPacked: a packed blob that is cut short,
// too long, of another subtype or format, fails to decode (and never
// panics), whatever byte it is cut or changed at.
func TestStateCodecRefusesMalformedPacked(t *testing.T) {
	bin := func(key string, sub byte, data []byte) []byte {
		raw, _ := bson.Marshal(bson.D{{Key: key, Value: bson.Binary{Subtype: sub, Data: data}}})
		return raw
	}
	r := rand.New(rand.NewPCG(17, 18))
	for i := 0; i < 300; i++ {
		s := randomState(r)
		var p packer
		for _, c := range []struct {
			key  string
			pack func() error
		}{
			{"f", func() error { return p.point(&Point{V: "x", At: time.UnixMilli(1e12), ID: "e1"}) }},
			{"v", func() error { return p.values(s.Values) }},
			{"b", func() error { return p.buckets(s.Buckets) }},
		} {
			p.reset()
			if err := c.pack(); err != nil {
				t.Fatal(err)
			}
			good := slices.Clone(p.buf)
			if len(good) < 3 {
				continue
			}
			var st State
			if err := st.UnmarshalBSON(bin(c.key, binSubtype, good)); err != nil {
				t.Fatalf("%s: intact blob: %v", c.key, err)
			}
			bad := map[string][]byte{
				"truncated":  good[:1+r.IntN(len(good)-2)],
				"trailing":   append(slices.Clone(good), 0),
				"format":     append([]byte{packV1 + 1}, good[1:]...),
				"empty":      {},
				"all 0xff":   bytes.Repeat([]byte{0xff}, len(good)),
				"bad varint": append([]byte{packV1}, bytes.Repeat([]byte{0x80}, 11)...),
			}
			for name, data := range bad {
				if err := st.UnmarshalBSON(bin(c.key, binSubtype, data)); err == nil {
					t.Errorf("%s %s: no error", c.key, name)
				}
			}
			if err := st.UnmarshalBSON(bin(c.key, 0, good)); err == nil {
				t.Errorf("%s: generic subtype accepted", c.key)
			}
			// Any single changed byte: an error or some state, no panic.
			mut := slices.Clone(good)
			mut[r.IntN(len(mut))] = byte(r.IntN(256))
			_ = st.UnmarshalBSON(bin(c.key, binSubtype, mut))
		}
	}
}
