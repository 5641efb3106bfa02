package segment

import (
	"testing"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// TestLimitsCheck: the counting behind the segment and feature caps, on
// stored segments and the one being saved.
func TestLimitsCheck(t *testing.T) {
	feats := func(names ...string) []rule.Feature {
		var out []rule.Feature
		for _, n := range names {
			out = append(out, rule.FeatureOf(n, nil))
		}
		return out
	}
	dyn := func(id string, names ...string) *Segment {
		return &Segment{ID: id, Kind: Dynamic, Status: Active, Features: feats(names...)}
	}
	static := func(id string) *Segment {
		return &Segment{ID: id, Kind: Static, Status: Active, Features: []rule.Feature{}}
	}
	l := Limits{Segments: 3, EventFeatures: 4, RuleEvents: 3}
	for _, c := range []struct {
		name   string
		active []*Segment
		s      *Segment
		field  string // "" accepted
	}{
		{"first segment", nil, dyn("n", "a", "b"), ""},
		{"create at the segment cap", []*Segment{static("1"), dyn("2", "a")}, static("n"), ""},
		{"create over the segment cap", []*Segment{static("1"), dyn("2", "a"), dyn("3", "b")}, static("n"), "input"},
		{"dynamic over the segment cap, no new feature", []*Segment{static("1"), dyn("2", "a"), dyn("3", "b")}, dyn("n", "a"), "input"},
		{"update at the segment cap", []*Segment{static("1"), dyn("2", "a"), dyn("3", "b")}, dyn("3", "b", "c"), ""},
		{"shared features count once", []*Segment{dyn("1", "a", "b", "c")}, dyn("n", "a", "b", "c", "d"), ""},
		{"create over the feature cap", []*Segment{dyn("1", "a", "b", "c")}, dyn("n", "d", "e"), "input.rule"},
		{"static segments count no feature", []*Segment{static("1"), dyn("2", "a", "b")}, dyn("n", "c", "d"), ""},
		{"update adding one at the cap", []*Segment{dyn("1", "a", "b"), dyn("2", "c")}, dyn("2", "c", "d"), ""},
		{"update adding over the cap", []*Segment{dyn("1", "a", "b"), dyn("2", "c", "d")}, dyn("2", "c", "d", "e"), "input.rule"},
		{"update swapping at the cap", []*Segment{dyn("1", "a", "b"), dyn("2", "c", "d")}, dyn("2", "c", "e"), ""},
		// Caps lowered below what the workspace holds: changes that add
		// nothing pass, additions do not.
		{"over the cap, update dropping", []*Segment{dyn("1", "a", "b", "c"), dyn("2", "d", "e", "f")}, dyn("2", "d"), ""},
		{"over the cap, update keeping", []*Segment{dyn("1", "a", "b", "c"), dyn("2", "d", "e", "f")}, dyn("2", "d", "e", "f"), ""},
		{"over the cap, update reusing", []*Segment{dyn("1", "a", "b", "c"), dyn("2", "d", "e", "f")}, dyn("2", "a", "d"), ""},
		{"over the cap, update adding", []*Segment{dyn("1", "a", "b", "c"), dyn("2", "d", "e", "f")}, dyn("2", "d", "g"), "input.rule"},
		{"over the cap, update swapping into it", []*Segment{dyn("1", "a", "b", "c"), dyn("2", "d", "e", "f")}, dyn("2", "g"), ""},
		// An update of a segment archived meanwhile is a new active one.
		{"archived meanwhile", []*Segment{static("1"), dyn("2", "a"), dyn("3", "b")}, dyn("4", "b"), "input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := l.check(c.active, c.s)
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

func TestLimitsDefaults(t *testing.T) {
	if got := (Limits{}).orDefaults(); got != DefaultLimits {
		t.Fatalf("zero limits: %+v, want %+v", got, DefaultLimits)
	}
	if got := (Limits{Segments: 7}).orDefaults(); got.Segments != 7 || got.EventFeatures != DefaultLimits.EventFeatures || got.RuleEvents != DefaultLimits.RuleEvents {
		t.Fatalf("partial limits: %+v", got)
	}
	// The rule language allows 100 nodes; the default cap refuses the
	// issue's 99 or-ed events.
	var or []rule.Rule
	for i := 0; i < 99; i++ {
		or = append(or, rule.Rule{Event: &rule.EventCond{Name: "e", Where: []rule.PropertyCond{{Key: "n", Op: rule.EQ, Value: float64(i)}}}})
	}
	if err := (Limits{}).checkRuleSize(rule.Rule{Or: or}); err == nil {
		t.Fatal("99 event nodes accepted by the default limits")
	}
}
