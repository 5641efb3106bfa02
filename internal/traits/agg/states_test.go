package agg

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// profileDoc stands for the profile document States is a field of.
type profileDoc struct {
	ID       string `bson:"_id"`
	Computed States `bson:"computed,omitempty"`
	Version  int64  `bson:"version"`
}

func randomStates(r *rand.Rand) (States, States) {
	m, want := States{}, States{}
	for i := range r.IntN(25) {
		s := randomState(r)
		k := string(rune('a'+i%26)) + "_trait"
		m[k] = s
		s.Normalise()
		want[k] = s
	}
	return m, want
}

func TestStatesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for i := 0; i < 500; i++ {
		m, want := randomStates(r)
		raw, err := bson.Marshal(profileDoc{ID: "p", Computed: m, Version: 3})
		if err != nil {
			t.Fatal(err)
		}
		var got profileDoc
		if err := bson.Unmarshal(raw, &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(m) == 0 {
			if _, err := bson.Raw(raw).LookupErr("computed"); err == nil || got.Computed != nil {
				t.Fatalf("case %d: empty states written", i)
			}
			continue
		}
		if got.ID != "p" || got.Version != 3 || !reflect.DeepEqual(got.Computed, want) {
			t.Fatalf("case %d: decoded\n%#v\nwant\n%#v", i, got.Computed, want)
		}
		// One key alone, and keys that are not there.
		v := bson.Raw(raw).Lookup("computed")
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		k := keys[r.IntN(len(keys))]
		one, err := DecodeStates(v, []string{k, "missing"})
		if err != nil || len(one) != 1 || !reflect.DeepEqual(one[k], want[k]) {
			t.Fatalf("case %d: key %s alone: %v %#v", i, k, err, one)
		}
		if none, err := DecodeStates(v, []string{}); err != nil || len(none) != 0 {
			t.Fatalf("case %d: no keys: %v %v", i, err, none)
		}
	}
}

// TestStatesReadOldLayouts: a computed field written as a sub-document of
// state documents — the reflection layout of before, or State's own
// MarshalBSON — decodes to the same states, whole or by key.
func TestStatesReadOldLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for i := 0; i < 300; i++ {
		m, want := randomStates(r)
		old, packedPerState := bson.D{}, bson.D{}
		for k, s := range m {
			old = append(old, bson.E{Key: k, Value: toOld(s)})
			packedPerState = append(packedPerState, bson.E{Key: k, Value: s})
		}
		for name, computed := range map[string]bson.D{"reflection": old, "per state": packedPerState} {
			raw, err := bson.Marshal(bson.D{{Key: "_id", Value: "p"}, {Key: "computed", Value: computed}, {Key: "version", Value: int64(3)}})
			if err != nil {
				t.Fatal(err)
			}
			var got profileDoc
			if err := bson.Unmarshal(raw, &got); err != nil {
				t.Fatalf("case %d %s: %v", i, name, err)
			}
			if !reflect.DeepEqual(got.Computed, want) {
				t.Fatalf("case %d %s: decoded\n%#v\nwant\n%#v", i, name, got.Computed, want)
			}
			for k := range m {
				one, err := DecodeStates(bson.Raw(raw).Lookup("computed"), []string{k})
				if err != nil || len(one) != 1 || !reflect.DeepEqual(one[k], want[k]) {
					t.Fatalf("case %d %s: key %s alone: %v", i, name, k, err)
				}
				break
			}
		}
	}
}

func TestStatesRefuseMalformed(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for i := 0; i < 300; i++ {
		m, _ := randomStates(r)
		m["x"] = State{Rev: 1, N: 2}
		_, good, err := m.MarshalBSONValue()
		if err != nil {
			t.Fatal(err)
		}
		_, data, _ := bson.RawValue{Type: bson.TypeBinary, Value: good}.BinaryOK()
		for name, bad := range map[string][]byte{
			"truncated": data[:1+r.IntN(len(data)-1)],
			"trailing":  append(slices.Clone(data), 0),
			"format":    append([]byte{packV1 + 1}, data[1:]...),
		} {
			var got States
			if err := got.UnmarshalBSONValue(byte(bson.TypeBinary), bsoncoreBinary(bad)); err == nil {
				t.Errorf("case %d %s: no error", i, name)
			}
		}
		mut := slices.Clone(data)
		mut[r.IntN(len(mut))] = byte(r.IntN(256))
		var got States
		_ = got.UnmarshalBSONValue(byte(bson.TypeBinary), bsoncoreBinary(mut)) // no panic
	}
	var got States
	if err := got.UnmarshalBSONValue(byte(bson.TypeString), []byte{2, 0, 0, 0, 'x', 0}); err == nil {
		t.Error("string accepted")
	}
}

func bsoncoreBinary(data []byte) []byte {
	_, v, _ := bson.MarshalValue(bson.Binary{Subtype: binSubtype, Data: data})
	return v
}
