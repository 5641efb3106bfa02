package agg

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/segment"
)

// plainState is State without its codec: the reflection encoding the
// struct tags describe, which the hand-written codec must match byte for
// byte (and which documents stored before it were written with).
type plainState State

func randomState(r *rand.Rand) State {
	vals := []any{"red", 3.5, int64(7), true, nil, map[string]any{"k": "v"}, []any{"a", int64(1)}}
	at := func() time.Time {
		return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(1e6)) * time.Second)
	}
	pt := func() *Point {
		if r.IntN(3) == 0 {
			return nil
		}
		return &Point{V: vals[r.IntN(len(vals))], At: at(), ID: "ev-" + string(rune('a'+r.IntN(26)))}
	}
	f := func() float64 {
		if r.IntN(3) == 0 {
			return 0
		}
		return float64(r.IntN(1000)) / 4
	}
	s := State{Rev: int64(r.IntN(5)), N: int64(r.IntN(3)), Sum: f(), Lo: f(), Hi: f(), First: pt(), Last: pt()}
	for range r.IntN(4) {
		v := Value{V: vals[r.IntN(len(vals))], N: int64(r.IntN(3)), Last: at()}
		for j := range r.IntN(3) {
			v.Per = append(v.Per, segment.Bucket{At: int64(20000 + j), N: int64(1 + r.IntN(4))})
		}
		s.Values = append(s.Values, v)
	}
	for j := range r.IntN(14) {
		s.Buckets = append(s.Buckets, Bucket{At: int64(29000000 + j), N: int64(r.IntN(5)), Sum: f(), Lo: f(), Hi: f(), First: pt(), Last: pt()})
	}
	if r.IntN(2) == 0 {
		s.Newest = at()
	}
	return s
}

func TestStateCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 500; i++ {
		s := randomState(r)
		hand, err := s.MarshalBSON()
		if err != nil {
			t.Fatal(err)
		}
		refl, err := bson.Marshal(plainState(s))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hand, refl) {
			t.Fatalf("case %d: bytes differ\nhand %v\nrefl %v", i, bson.Raw(hand), bson.Raw(refl))
		}
		var got State
		if err := got.UnmarshalBSON(refl); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var want plainState
		if err := bson.Unmarshal(refl, &want); err != nil {
			t.Fatal(err)
		}
		w := State(want)
		w.Normalise()
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("case %d: decoded\n%#v\nwant\n%#v", i, got, w)
		}
		// As a map value inside a profile-like document.
		type doc struct {
			C map[string]State `bson:"c"`
		}
		raw, err := bson.Marshal(doc{C: map[string]State{"k": s}})
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := bson.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back.C["k"], w) {
			t.Fatalf("case %d: in a document: %v", i, err)
		}
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
