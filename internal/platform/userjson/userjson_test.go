package userjson

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var testLimits = Limits{MaxDepth: 3, MaxBytes: 1 << 10}

// nest returns n levels of objects: {"k":{"k":...{"leaf":1}}}.
func nest(n int) map[string]any {
	m := map[string]any{"leaf": int64(1)}
	for i := 1; i < n; i++ {
		m = map[string]any{"k": m}
	}
	return m
}

func TestObjectAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"empty", map[string]any{}},
		{"scalars", map[string]any{"s": "héllo", "b": true, "f": 1.5, "i": int64(3), "n": nil, "i32": int32(4), "int": 5, "num": json.Number("7")}},
		{"unicode key", map[string]any{"prénom": "Zoë", "名前": "x"}},
		{"dollar inside key", map[string]any{"price$": 1}},
		{"exactly max depth objects", nest(3)},
		{"exactly max depth arrays", map[string]any{"a": []any{[]any{int64(1)}}}},
		{"array of objects at max depth", map[string]any{"a": []any{map[string]any{"b": 1}}}},
		{"finite extremes", map[string]any{"max": math.MaxFloat64, "min": -math.MaxFloat64, "tiny": math.SmallestNonzeroFloat64}},
		{"key of 256 bytes", map[string]any{strings.Repeat("k", 256): 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Object(tt.in, testLimits)
			if err != nil {
				t.Fatalf("Object: %v", err)
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Fatalf("Object returned %#v, want the input %#v", got, tt.in)
			}
		})
	}
}

func TestObjectNilIsEmptyObject(t *testing.T) {
	got, err := Object(nil, testLimits)
	if err != nil {
		t.Fatalf("Object(nil): %v", err)
	}
	if got == nil || len(got) != 0 {
		t.Fatalf("Object(nil) = %#v, want a non-nil empty map", got)
	}
}

func TestObjectRefuses(t *testing.T) {
	tests := []struct {
		name     string
		in       any
		path     string // want Error.Path
		inReason string // substring of Error.Reason
	}{
		{"string", "x", "", "must be a JSON object"},
		{"number", 1.0, "", "must be a JSON object"},
		{"array", []any{map[string]any{}}, "", "must be a JSON object"},
		{"typed map", map[string]string{"a": "b"}, "", "must be a JSON object"},

		{"dollar key", map[string]any{"$where": "1"}, "$where", "'$'"},
		{"dollar key nested", map[string]any{"a": map[string]any{"$gt": 1}}, "a.$gt", "'$'"},
		{"dollar key in array", map[string]any{"a": []any{1, map[string]any{"$ne": 1}}}, "a[1].$ne", "'$'"},
		{"dotted key", map[string]any{"a.b": 1}, "a.b", "'.'"},
		{"dotted key nested", map[string]any{"x": map[string]any{"y.z": 1}}, "x.y.z", "'.'"},
		{"dotted key in array", map[string]any{"list": []any{map[string]any{"ok": 1, "a.b": 2}}}, "list[0].a.b", "'.'"},
		{"empty key", map[string]any{"": 1}, "", "empty key"},
		{"empty key nested", map[string]any{"a": map[string]any{"": 1}}, "a.", "empty key"},
		{"NUL in key", map[string]any{"a\x00b": 1}, "a\x00b", "NUL"},
		{"key too long", map[string]any{strings.Repeat("k", 257): 1}, strings.Repeat("k", 257), "longer than 256"},
		{"key invalid UTF-8", map[string]any{"a\xffb": 1}, "a\xffb", "UTF-8"},

		{"objects too deep", nest(4), "k.k.k", "deeper than 3"},
		{"arrays too deep", map[string]any{"a": []any{[]any{[]any{1}}}}, "a[0][0]", "deeper than 3"},
		{"mixed too deep", map[string]any{"a": []any{map[string]any{"b": []any{1}}}}, "a[0].b", "deeper than 3"},

		{"NaN", map[string]any{"x": math.NaN()}, "x", "not finite"},
		{"+Inf", map[string]any{"x": math.Inf(1)}, "x", "not finite"},
		{"-Inf in array", map[string]any{"x": []any{1.0, math.Inf(-1)}}, "x[1]", "not finite"},
		{"invalid UTF-8 string", map[string]any{"s": "ab\xc3"}, "s", "UTF-8"},
		{"invalid UTF-8 nested", map[string]any{"a": map[string]any{"s": []any{"ok", "\xff"}}}, "a.s[1]", "UTF-8"},
		{"unsupported type", map[string]any{"t": struct{}{}}, "t", "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Object(tt.in, testLimits)
			if err == nil {
				t.Fatalf("Object accepted %#v, returned %#v", tt.in, got)
			}
			if got != nil {
				t.Errorf("Object returned %#v alongside an error", got)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not *userjson.Error", err, err)
			}
			if e.Path != tt.path {
				t.Errorf("Path = %q, want %q (error %v)", e.Path, tt.path, err)
			}
			if !strings.Contains(e.Reason, tt.inReason) {
				t.Errorf("Reason = %q, want it to mention %q", e.Reason, tt.inReason)
			}
		})
	}
}

func TestObjectSizeLimit(t *testing.T) {
	// {"s":"xxx..."} encodes to 8 bytes plus the string.
	lim := Limits{MaxDepth: 3, MaxBytes: 100}
	fits := map[string]any{"s": strings.Repeat("x", 92)}
	if n := Size(fits); n != 100 {
		t.Fatalf("test setup: Size = %d, want 100", n)
	}
	if _, err := Object(fits, lim); err != nil {
		t.Fatalf("document of exactly MaxBytes refused: %v", err)
	}
	over := map[string]any{"s": strings.Repeat("x", 93)}
	_, err := Object(over, lim)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("document of MaxBytes+1 bytes: err = %v, want *Error", err)
	}
	if e.Path != "" || !strings.Contains(e.Reason, "101 bytes") || !strings.Contains(e.Reason, "100 allowed") {
		t.Fatalf("size error = %+v", e)
	}
}

func TestErrorMessage(t *testing.T) {
	if got := (&Error{Reason: "bad"}).Error(); got != "bad" {
		t.Errorf("no path: %q", got)
	}
	if got := (&Error{Path: "a.b", Reason: "bad"}).Error(); got != "a.b: bad" {
		t.Errorf("with path: %q", got)
	}
}

func TestSize(t *testing.T) {
	if got := Size(map[string]any{"a": 1}); got != len(`{"a":1}`) {
		t.Errorf("Size = %d", got)
	}
	if got := Size(math.NaN()); got != math.MaxInt {
		t.Errorf("Size(NaN) = %d, want MaxInt for an unencodable value", got)
	}
}

func TestPatch(t *testing.T) {
	tests := []struct {
		name        string
		base, patch map[string]any
		want        map[string]any
	}{
		{"both nil", nil, nil, map[string]any{}},
		{"nil base", nil, map[string]any{"a": 1, "gone": nil}, map[string]any{"a": 1}},
		{"nil patch", map[string]any{"a": 1}, nil, map[string]any{"a": 1}},
		{"replace", map[string]any{"a": 1, "b": 2}, map[string]any{"a": "x"}, map[string]any{"a": "x", "b": 2}},
		{"null removes", map[string]any{"a": 1, "b": 2}, map[string]any{"b": nil}, map[string]any{"a": 1}},
		{"null of absent key", map[string]any{"a": 1}, map[string]any{"z": nil}, map[string]any{"a": 1}},
		{"nested replaced whole", map[string]any{"o": map[string]any{"x": 1, "y": 2}}, map[string]any{"o": map[string]any{"x": 3}}, map[string]any{"o": map[string]any{"x": 3}}},
		{"add", map[string]any{"a": 1}, map[string]any{"b": false}, map[string]any{"a": 1, "b": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before map[string]any
			if tt.base != nil {
				before = make(map[string]any, len(tt.base))
				for k, v := range tt.base {
					before[k] = v
				}
			}
			got := Patch(tt.base, tt.patch)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Patch = %#v, want %#v", got, tt.want)
			}
			if tt.base != nil && !reflect.DeepEqual(tt.base, before) {
				t.Fatalf("base mutated: %#v, was %#v", tt.base, before)
			}
		})
	}
}

func TestPatchResultIsIndependentOfBase(t *testing.T) {
	base := map[string]any{"a": 1}
	got := Patch(base, nil)
	got["b"] = 2
	if _, ok := base["b"]; ok {
		t.Fatal("writing to Patch's result changed base")
	}
}

func TestWithoutNulls(t *testing.T) {
	got := WithoutNulls(map[string]any{"a": 1, "b": nil, "c": ""})
	want := map[string]any{"a": 1, "c": ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WithoutNulls = %#v, want %#v", got, want)
	}
	if got := WithoutNulls(nil); got == nil || len(got) != 0 {
		t.Fatalf("WithoutNulls(nil) = %#v, want empty map", got)
	}
}

func TestPlain(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	at := time.Date(2024, 5, 6, 9, 8, 7, 123_000_000, paris)
	dt := bson.NewDateTimeFromTime(time.Date(2023, 1, 2, 3, 4, 5, 6_000_000, time.UTC))
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"string", "s", "s"},
		{"int32", int32(-7), int64(-7)},
		{"int", 42, int64(42)},
		{"int64 unchanged", int64(9), int64(9)},
		{"float unchanged", 2.5, 2.5},
		{"DateTime", dt, "2023-01-02T03:04:05.006Z"},
		{"time in a zone becomes UTC", at, "2024-05-06T07:08:07.123Z"},
		{"bson.A", bson.A{int32(1), "x", bson.A{int32(2)}}, []any{int64(1), "x", []any{int64(2)}}},
		{"bson.D nested", bson.D{
			{Key: "n", Value: int32(1)},
			{Key: "d", Value: bson.D{{Key: "when", Value: dt}, {Key: "list", Value: bson.A{bson.M{"x": int32(3)}}}}},
		}, map[string]any{
			"n": int64(1),
			"d": map[string]any{"when": "2023-01-02T03:04:05.006Z", "list": []any{map[string]any{"x": int64(3)}}},
		}},
		{"bson.M", bson.M{"t": at, "a": bson.A{}}, map[string]any{"t": "2024-05-06T07:08:07.123Z", "a": []any{}}},
		{"plain map and slice", map[string]any{"s": []any{int32(5), map[string]any{"d": dt}}},
			map[string]any{"s": []any{int64(5), map[string]any{"d": "2023-01-02T03:04:05.006Z"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plain(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Plain = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPlainRoundTripsThroughBSON(t *testing.T) {
	// What the store hands back: a document decoded into map[string]any
	// carries bson.D / bson.A / int32 / bson.DateTime inside.
	at := time.Date(2022, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	raw, err := bson.Marshal(bson.M{"traits": bson.M{"age": int32(30), "tags": bson.A{"a", int32(2)}, "since": at, "nested": bson.M{"ok": true}}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Traits map[string]any `bson:"traits"`
	}
	if err := bson.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	got := PlainObject(doc.Traits)
	want := map[string]any{
		"age":    int64(30),
		"tags":   []any{"a", int64(2)},
		"since":  "2022-12-31T23:59:59.999Z",
		"nested": map[string]any{"ok": true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PlainObject = %#v, want %#v", got, want)
	}
}

func TestPlainObject(t *testing.T) {
	for _, in := range []any{nil, "x", bson.A{1}, int32(1)} {
		got := PlainObject(in)
		if got == nil || len(got) != 0 {
			t.Errorf("PlainObject(%#v) = %#v, want empty map", in, got)
		}
	}
	got := PlainObject(bson.D{{Key: "a", Value: int32(1)}})
	if !reflect.DeepEqual(got, map[string]any{"a": int64(1)}) {
		t.Errorf("PlainObject(bson.D) = %#v", got)
	}
}
