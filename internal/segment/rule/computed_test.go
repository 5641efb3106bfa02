package rule

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// TestComputedNode: a computed value compared with the trait operators,
// and nextEvalAt at the window edge that flips the comparison (not at the
// first edge where the value merely changes).
func TestComputedNode(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// orders: 3 now, drops to 2 at +1d, to 1 at +2d, to 0 at +5d.
	orders := func(at time.Time) (any, time.Time) {
		switch {
		case at.Before(t0.Add(day)):
			return int64(3), t0.Add(day)
		case at.Before(t0.Add(2 * day)):
			return int64(2), t0.Add(2 * day)
		case at.Before(t0.Add(5 * day)):
			return int64(1), t0.Add(5 * day)
		}
		return int64(0), time.Time{}
	}
	in := Input{Computed: func(key string, at time.Time) (any, time.Time) {
		switch key {
		case "orders":
			return orders(at)
		case "avg":
			return nil, time.Time{}
		case "colors":
			return []any{"red", "blue"}, time.Time{}
		}
		return nil, time.Time{}
	}}
	cases := []struct {
		name string
		c    ComputedCond
		want bool
		next time.Time
	}{
		{"gte 2 until the second edge", ComputedCond{Key: "orders", Op: GTE, Value: 2}, true, t0.Add(2 * day)},
		{"gt 0 until the last edge", ComputedCond{Key: "orders", Op: GT, Value: 0}, true, t0.Add(5 * day)},
		{"eq 0 later", ComputedCond{Key: "orders", Op: EQ, Value: 0}, false, t0.Add(5 * day)},
		{"null is missing", ComputedCond{Key: "avg", Op: Exists}, false, time.Time{}},
		{"ne on null", ComputedCond{Key: "avg", Op: NE, Value: 3}, true, time.Time{}},
		{"list contains", ComputedCond{Key: "colors", Op: Contains, Value: "red"}, true, time.Time{}},
		{"list in", ComputedCond{Key: "colors", Op: In, Values: []any{"green", "blue"}}, true, time.Time{}},
	}
	for _, c := range cases {
		got, next := Evaluate(Rule{Computed: &c.c}, in, t0)
		if got != c.want || !next.Equal(c.next) {
			t.Errorf("%s: got %v %s, want %v %s", c.name, got, next, c.want, c.next)
		}
	}
	d := DependsOn(Rule{And: []Rule{{Computed: &ComputedCond{Key: "orders", Op: GT, Value: 0}}, {Trait: &TraitCond{Key: "a", Op: Exists}}}})
	if len(d.Computed) != 1 || d.Computed[0] != "orders" || !d.Timed {
		t.Fatalf("deps: %+v", d)
	}
	if !d.Affected(Touched{Computed: []string{"orders"}}) || d.Affected(Touched{Computed: []string{"other"}, EventNames: []string{"order_completed"}}) {
		t.Fatal("a computed node is affected by its key only")
	}
	l := Lookups{Computed: func(k string) bool { return k == "orders" }}
	if err := ValidateWith("", Rule{Computed: &ComputedCond{Key: "orders", Op: GTE, Value: 2}}, l); err != nil {
		t.Fatal(err)
	}
	err := ValidateWith("", Rule{Not: &Rule{Computed: &ComputedCond{Key: "nope", Op: GTE, Value: 2}}}, l)
	if e, ok := apperr.As(err); !ok || e.Field != "rule.not.computed.key" {
		t.Fatalf("unknown key: %v", err)
	}
}
