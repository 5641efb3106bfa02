package rule

import (
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment/rule/ruletest"
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

// TestOperatorsOnArrays pins the array semantics (documented on TraitCond
// and in ruletest.Match): EQ, IN, GT, GTE, LT, LTE, STARTS_WITH and CONTAINS
// hold when some element does; NE and NOT_IN are their negations, so they
// hold only when NO element equals (is in) the operand; an empty array
// satisfies NE and NOT_IN and nothing else but EXISTS; CONTAINS on an array
// is element equality, not a substring of an element. Each case runs on a
// scalar and an array, as a trait (matchCond), as an event property
// (Feature.Matches), and through the independent reference ruletest.Match,
// which must agree with the table too.
func TestOperatorsOnArrays(t *testing.T) {
	doc := map[string]any{
		"plan":   "pro",
		"n":      int64(5),
		"tags":   []any{"x", "pro", int64(3), 7.5},
		"btags":  bson.A{"x", "pro", int64(3), 7.5},
		"nums":   []any{int64(1), int64(10)},
		"empty":  []any{},
		"nested": []any{[]any{"x"}, map[string]any{"a": "x"}},
		"holes":  []any{nil, "x"},
		"mixed":  []any{true, "Pro", "team"},
		"times":  []any{"2025-06-01T10:00:00Z", "2025-07-01T10:00:00+02:00"},
	}
	type tc struct {
		key  string
		op   Op
		val  any
		vals []any
		want bool
	}
	cases := []tc{
		// NOT_IN: scalar hit and miss, array hit (any element) and miss.
		{"plan", NotIn, nil, []any{"pro", "team"}, false},
		{"plan", NotIn, nil, []any{"free"}, true},
		{"tags", NotIn, nil, []any{"pro"}, false}, // one element is in: not NOT_IN
		{"tags", NotIn, nil, []any{"free", 3.0}, false},
		{"tags", NotIn, nil, []any{"free", "y"}, true},
		{"tags", NotIn, nil, []any{[]any{"x", "pro", int64(3), 7.5}}, true}, // the whole array is not an element
		{"nums", NotIn, nil, []any{10.0}, false},
		{"empty", NotIn, nil, []any{"x"}, true},
		{"nested", NotIn, nil, []any{"x"}, true},
		{"holes", NotIn, nil, []any{"x"}, false},
		{"missing", NotIn, nil, []any{"x"}, true},
		// IN
		{"plan", In, nil, []any{"pro"}, true},
		{"plan", In, nil, []any{"free"}, false},
		{"tags", In, nil, []any{"free", "pro"}, true},
		{"tags", In, nil, []any{3.0}, true},
		{"tags", In, nil, []any{"free", "y"}, false},
		{"empty", In, nil, []any{"x"}, false},
		{"nested", In, nil, []any{"x"}, false},
		{"missing", In, nil, []any{"x"}, false},
		// EQ / NE
		{"plan", EQ, "pro", nil, true},
		{"plan", NE, "pro", nil, false},
		{"plan", NE, "free", nil, true},
		{"tags", EQ, "pro", nil, true},
		{"tags", EQ, 7.5, nil, true},
		{"tags", EQ, "free", nil, false},
		{"tags", NE, "pro", nil, false}, // one element equals: not NE
		{"tags", NE, int64(3), nil, false},
		{"tags", NE, "free", nil, true},
		{"mixed", EQ, "pro", nil, false}, // case-sensitive
		{"mixed", NE, "pro", nil, true},
		{"empty", EQ, "x", nil, false},
		{"empty", NE, "x", nil, true},
		{"holes", NE, "x", nil, false},
		{"nested", EQ, "x", nil, false},
		// GT, GTE, LT, LTE: some element.
		{"nums", GT, int64(5), nil, true},
		{"nums", GT, int64(10), nil, false},
		{"nums", GTE, int64(10), nil, true},
		{"nums", GTE, 10.5, nil, false},
		{"nums", LT, int64(1), nil, false},
		{"nums", LT, 1.5, nil, true},
		{"nums", LTE, int64(1), nil, true},
		{"nums", LTE, 0.5, nil, false},
		{"n", GT, int64(5), nil, false},
		{"n", GTE, int64(5), nil, true},
		{"n", LT, int64(5), nil, false},
		{"n", LTE, int64(5), nil, true},
		{"n", LTE, 4.99, nil, false},
		{"tags", GT, 7.0, nil, true}, // 7.5; strings are not ordered with numbers
		{"tags", LT, int64(3), nil, false},
		{"tags", LTE, int64(3), nil, true},
		{"tags", GT, "pro", nil, true}, // "x" > "pro" byte-wise
		{"tags", GT, "x", nil, false},
		{"empty", GTE, int64(0), nil, false},
		{"times", GT, "2025-07-01T09:00:00Z", nil, false}, // 10:00+02:00 is 08:00Z
		{"times", GTE, "2025-07-01T08:00:00Z", nil, true},
		{"times", LT, "2025-06-01T10:00:00.001Z", nil, true},
		// CONTAINS: substring of a string, element of an array.
		{"plan", Contains, "ro", nil, true},
		{"plan", Contains, "RO", nil, false},
		{"tags", Contains, "pro", nil, true},
		{"tags", Contains, "ro", nil, false}, // no substring inside elements
		{"tags", Contains, 3.0, nil, true},
		{"btags", Contains, int64(3), nil, true},
		{"empty", Contains, "x", nil, false},
		{"n", Contains, int64(5), nil, false},
		// STARTS_WITH: a string, or some string element; case-sensitive.
		{"plan", StartsWith, "pr", nil, true},
		{"plan", StartsWith, "Pr", nil, false},
		{"tags", StartsWith, "pr", nil, true},
		{"tags", StartsWith, "y", nil, false},
		{"mixed", StartsWith, "pr", nil, false},
		{"mixed", StartsWith, "Pr", nil, true},
		{"mixed", StartsWith, "te", nil, true},
		{"empty", StartsWith, "", nil, false},
		{"plan", StartsWith, "", nil, true},
		// EXISTS: an empty array exists.
		{"empty", Exists, nil, nil, true},
		{"empty", Exists, false, nil, false},
	}
	// bson.A behaves as []any: rerun every tags case on btags.
	for _, c := range cases {
		if c.key == "tags" {
			c.key = "btags"
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		cond := TraitCond{Key: c.key, Op: c.op, Value: c.val, Values: c.vals}
		if got := matchCond(&cond, doc); got != c.want {
			t.Errorf("trait %s %s %v%v on %#v: got %v, want %v", c.key, c.op, c.val, c.vals, doc[c.key], got, c.want)
		}
		f := FeatureOf("e", []PropertyCond{cond})
		if got := f.Matches("e", doc); got != c.want {
			t.Errorf("property %s %s %v%v on %#v: got %v, want %v", c.key, c.op, c.val, c.vals, doc[c.key], got, c.want)
		}
		if got := ruletest.Match(c.key, string(c.op), c.val, c.vals, doc); got != c.want {
			t.Errorf("reference segtest.Match %s %s %v%v: got %v, want %v", c.key, c.op, c.val, c.vals, got, c.want)
		}
	}
}
