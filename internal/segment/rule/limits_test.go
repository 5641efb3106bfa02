package rule

import (
	"testing"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

func TestCheckEventNodes(t *testing.T) {
	ev := func(name string) Rule {
		return Rule{Event: &EventCond{Name: name, Count: &CountCond{Op: GTE, Value: 1}}}
	}
	last := Rule{LastEvent: &InactivityCond{Name: "a", NotWithin: Last{Amount: 1, Unit: Days}}}
	trait := Rule{Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}}
	for _, c := range []struct {
		name  string
		rule  Rule
		max   int
		field string // "" accepted
	}{
		{"single event", ev("a"), 1, ""},
		{"no event", Rule{And: []Rule{trait, trait, trait}}, 1, ""},
		{"at the cap", Rule{Or: []Rule{ev("a"), trait, last}}, 2, ""},
		{"over by an event", Rule{Or: []Rule{ev("a"), ev("b"), ev("c")}}, 2, "rule.or[2].event"},
		{"over by a lastEvent", Rule{Or: []Rule{ev("a"), last}}, 1, "rule.or[1].lastEvent"},
		{"repeats count", Rule{Or: []Rule{ev("a"), ev("a")}}, 1, "rule.or[1].event"},
		{"depth first", Rule{And: []Rule{{Not: &Rule{Or: []Rule{ev("a"), ev("b")}}}, ev("c")}}, 1, "rule.and[0].not.or[1].event"},
		{"root event over zero nodes", ev("a"), 0, ""}, // max < 1: no cap
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckEventNodes(c.rule, c.max)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.BadUserInput || e.Field != c.field {
				t.Fatalf("got %#v, want BAD_USER_INPUT on %s", err, c.field)
			}
		})
	}
}
