package segment

import (
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestTraitOperators(t *testing.T) {
	traits := map[string]any{
		"plan":    "pro",
		"age":     int64(42),
		"score":   41.5,
		"vip":     true,
		"tags":    []any{"a", "b", int64(3)},
		"address": map[string]any{"city": "Lisbon", "geo": map[string]any{"lat": 38.7}},
		"bsonDoc": bson.D{{Key: "x", Value: int32(7)}},
		"signup":  "2025-06-01T10:00:00Z",
		"nothing": nil,
		"email":   "ana@example.com",
	}
	cases := []struct {
		c    TraitCond
		want bool
	}{
		{TraitCond{Key: "plan", Op: EQ, Value: "pro"}, true},
		{TraitCond{Key: "plan", Op: EQ, Value: "Pro"}, false},
		{TraitCond{Key: "plan", Op: NE, Value: "free"}, true},
		{TraitCond{Key: "missing", Op: NE, Value: "free"}, true},
		{TraitCond{Key: "missing", Op: EQ, Value: "free"}, false},
		{TraitCond{Key: "age", Op: EQ, Value: 42.0}, true},
		{TraitCond{Key: "age", Op: EQ, Value: int32(42)}, true},
		{TraitCond{Key: "age", Op: EQ, Value: json.Number("42")}, true},
		{TraitCond{Key: "age", Op: EQ, Value: "42"}, false},
		{TraitCond{Key: "age", Op: GT, Value: 41.9}, true},
		{TraitCond{Key: "age", Op: GTE, Value: int64(42)}, true},
		{TraitCond{Key: "age", Op: LT, Value: 42.0001}, true},
		{TraitCond{Key: "age", Op: LTE, Value: 41}, false},
		{TraitCond{Key: "score", Op: GT, Value: int64(41)}, true},
		{TraitCond{Key: "score", Op: LT, Value: int64(42)}, true},
		{TraitCond{Key: "plan", Op: GT, Value: "free"}, true},
		{TraitCond{Key: "plan", Op: GT, Value: 3}, false},
		{TraitCond{Key: "age", Op: GT, Value: "a"}, false},
		{TraitCond{Key: "plan", Op: In, Values: []any{"free", "pro"}}, true},
		{TraitCond{Key: "plan", Op: In, Values: []any{"free"}}, false},
		{TraitCond{Key: "plan", Op: NotIn, Values: []any{"free"}}, true},
		{TraitCond{Key: "missing", Op: NotIn, Values: []any{"free"}}, true},
		{TraitCond{Key: "age", Op: In, Values: []any{41.0, 42.0}}, true},
		{TraitCond{Key: "plan", Op: Exists}, true},
		{TraitCond{Key: "missing", Op: Exists}, false},
		{TraitCond{Key: "nothing", Op: Exists}, false},
		{TraitCond{Key: "missing", Op: Exists, Value: false}, true},
		{TraitCond{Key: "email", Op: Contains, Value: "@example"}, true},
		{TraitCond{Key: "email", Op: Contains, Value: "@EXAMPLE"}, false},
		{TraitCond{Key: "tags", Op: Contains, Value: "b"}, true},
		{TraitCond{Key: "tags", Op: Contains, Value: 3.0}, true},
		{TraitCond{Key: "tags", Op: Contains, Value: "z"}, false},
		{TraitCond{Key: "tags", Op: EQ, Value: "a"}, true},
		{TraitCond{Key: "tags", Op: NE, Value: "a"}, false},
		{TraitCond{Key: "tags", Op: In, Values: []any{"z", "b"}}, true},
		{TraitCond{Key: "email", Op: StartsWith, Value: "ana@"}, true},
		{TraitCond{Key: "age", Op: StartsWith, Value: "4"}, false},
		{TraitCond{Key: "address.city", Op: EQ, Value: "Lisbon"}, true},
		{TraitCond{Key: "address.geo.lat", Op: GT, Value: 38}, true},
		{TraitCond{Key: "address.zip", Op: Exists}, false},
		{TraitCond{Key: "plan.sub", Op: Exists}, false},
		{TraitCond{Key: "bsonDoc.x", Op: EQ, Value: 7}, true},
		{TraitCond{Key: "signup", Op: GT, Value: "2025-06-01T11:00:00+02:00"}, true}, // by instant, not bytes
		{TraitCond{Key: "signup", Op: LT, Value: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)}, true},
		{TraitCond{Key: "signup", Op: EQ, Value: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)}, true},
		{TraitCond{Key: "vip", Op: EQ, Value: true}, true},
		{TraitCond{Key: "vip", Op: GT, Value: false}, false},
		{TraitCond{Key: "address", Op: EQ, Value: "Lisbon"}, false},
	}
	for _, c := range cases {
		if got := matchCond(&c.c, traits); got != c.want {
			t.Errorf("%+v: got %v, want %v", c.c, got, c.want)
		}
	}
}

func TestNumbersCompareExactly(t *testing.T) {
	big := int64(1<<53 + 1)
	if equal(big, float64(1<<53)) {
		t.Error("2^53+1 must not equal float 2^53")
	}
	if r, _ := compare(big, float64(1<<53)); r != 1 {
		t.Errorf("2^53+1 vs 2^53: %d", r)
	}
	if r, _ := compare(int64(-3), -2.5); r != -1 {
		t.Errorf("-3 vs -2.5: %d", r)
	}
	if r, _ := compare(uint64(1<<63), int64(5)); r != 1 {
		t.Errorf("huge uint: %d", r)
	}
	if r, _ := compare(1e300, int64(5)); r != 1 {
		t.Errorf("1e300: %d", r)
	}
}

// Whatever the types on either side, matching never panics.
func TestMatchNeverPanics(t *testing.T) {
	values := []any{nil, "s", "", int64(1), 1.5, int32(2), true, []any{1, "x", nil, []any{}}, map[string]any{"a": 1},
		bson.D{{Key: "a", Value: 1}}, bson.A{"x"}, time.Now(), bson.DateTime(0), json.Number("x"), struct{}{}, []string{"a"}}
	ops := []Op{EQ, NE, In, NotIn, GT, GTE, LT, LTE, Exists, Contains, StartsWith, "BOGUS", ""}
	for _, tv := range values {
		for _, cv := range values {
			for _, op := range ops {
				c := TraitCond{Key: "k.a", Op: op, Value: cv, Values: []any{cv}}
				matchCond(&c, map[string]any{"k": tv})
				c.Key = "k"
				matchCond(&c, map[string]any{"k": tv})
			}
		}
	}
}
