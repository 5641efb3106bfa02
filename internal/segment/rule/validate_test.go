package rule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func lastDays(n int) *Window { return &Window{Last: &Last{Amount: n, Unit: Days}} }

func TestValidateErrors(t *testing.T) {
	ok := Rule{Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}}
	deep := ok
	for i := 0; i < MaxDepth; i++ {
		deep = Rule{Not: &deep}
	}
	var wide Rule
	for i := 0; i < MaxNodes; i++ {
		wide.Or = append(wide.Or, ok)
	}
	cases := []struct {
		name  string
		r     Rule
		field string
		msg   string
	}{
		{"empty node", Rule{}, "rule", "none is"},
		{"two kinds", Rule{Trait: ok.Trait, InSegment: "x"}, "rule", "got trait, inSegment"},
		{"empty and", Rule{And: []Rule{}}, "rule.and", "at least one"},
		{"nested bad window", Rule{And: []Rule{ok, {Event: &EventCond{Name: "Order", Window: &Window{}}}}}, "rule.and[1].event.window", "none is"},
		{"both windows", Rule{Event: &EventCond{Name: "Order", Window: &Window{Last: &Last{1, Days}, Between: &Between{day(2025, 1, 1), day(2025, 2, 1)}}}}, "rule.event.window", "got both"},
		{"no name", Rule{Event: &EventCond{}}, "rule.event.name", "empty"},
		{"days too long", Rule{Event: &EventCond{Name: "x", Window: lastDays(MaxLastDays + 1)}}, "rule.event.window.last.amount", "between 1 and 365"},
		{"zero amount", Rule{Event: &EventCond{Name: "x", Window: lastDays(0)}}, "rule.event.window.last.amount", ""},
		{"hours too long", Rule{Event: &EventCond{Name: "x", Window: &Window{Last: &Last{25, Hours}}}}, "rule.event.window.last.amount", "HOURS"},
		{"minutes too long", Rule{Event: &EventCond{Name: "x", Window: &Window{Last: &Last{1441, Minutes}}}}, "rule.event.window.last.amount", ""},
		{"bad unit", Rule{Event: &EventCond{Name: "x", Window: &Window{Last: &Last{1, "WEEKS"}}}}, "rule.event.window.last.unit", ""},
		{"between reversed", Rule{Event: &EventCond{Name: "x", Window: &Window{Between: &Between{day(2025, 2, 1), day(2025, 1, 1)}}}}, "rule.event.window.between", "before"},
		{"between equal", Rule{Event: &EventCond{Name: "x", Window: &Window{Between: &Between{day(2025, 2, 1), day(2025, 2, 1)}}}}, "rule.event.window.between", "before"},
		{"between not midnight", Rule{Event: &EventCond{Name: "x", Window: &Window{Between: &Between{day(2025, 1, 1).Add(time.Hour), day(2025, 2, 1)}}}}, "rule.event.window.between.from", "midnight"},
		{"between too long", Rule{Event: &EventCond{Name: "x", Window: &Window{Between: &Between{day(2024, 1, 1), day(2025, 2, 1)}}}}, "rule.event.window.between", "366"},
		{"count op", Rule{Event: &EventCond{Name: "x", Count: &CountCond{Op: In, Value: 1}}}, "rule.event.count.op", ""},
		{"count negative", Rule{Event: &EventCond{Name: "x", Count: &CountCond{Op: GTE, Value: -1}}}, "rule.event.count.value", ""},
		{"where op", Rule{Event: &EventCond{Name: "x", Where: []PropertyCond{{Key: "a", Op: EQ, Value: 1}, {Key: "b", Op: "LIKE", Value: 1}}}}, "rule.event.where[1].op", "LIKE"},
		{"trait key empty", Rule{Trait: &TraitCond{Op: EQ, Value: 1}}, "rule.trait.key", ""},
		{"trait key dots", Rule{Trait: &TraitCond{Key: "a..b", Op: EQ, Value: 1}}, "rule.trait.key", "empty segment"},
		{"trait key dollar", Rule{Trait: &TraitCond{Key: "$where", Op: EQ, Value: 1}}, "rule.trait.key", "$"},
		{"eq object", Rule{Trait: &TraitCond{Key: "a", Op: EQ, Value: map[string]any{"$gt": 1}}}, "rule.trait.value", ""},
		{"eq nil", Rule{Trait: &TraitCond{Key: "a", Op: EQ}}, "rule.trait.value", ""},
		{"gt bool", Rule{Trait: &TraitCond{Key: "a", Op: GT, Value: true}}, "rule.trait.value", ""},
		{"in without values", Rule{Trait: &TraitCond{Key: "a", Op: In}}, "rule.trait.values", ""},
		{"in with value", Rule{Trait: &TraitCond{Key: "a", Op: In, Value: 1, Values: []any{1}}}, "rule.trait.value", ""},
		{"in bad element", Rule{Trait: &TraitCond{Key: "a", Op: NotIn, Values: []any{1, []any{2}}}}, "rule.trait.values[1]", ""},
		{"values on eq", Rule{Trait: &TraitCond{Key: "a", Op: EQ, Value: 1, Values: []any{1}}}, "rule.trait.values", ""},
		{"exists string", Rule{Trait: &TraitCond{Key: "a", Op: Exists, Value: "yes"}}, "rule.trait.value", ""},
		{"startsWith empty", Rule{Trait: &TraitCond{Key: "a", Op: StartsWith, Value: ""}}, "rule.trait.value", ""},
		{"no op", Rule{Trait: &TraitCond{Key: "a"}}, "rule.trait.op", ""},
		{"profile field", Rule{Profile: &ProfileCond{Field: "AGE", Op: EQ, Value: 1}}, "rule.profile.field", ""},
		{"profile op", Rule{Profile: &ProfileCond{Field: EventCount, Op: In, Value: 1}}, "rule.profile.op", ""},
		{"profile time value", Rule{Profile: &ProfileCond{Field: LastSeenAt, Op: LT, Value: "yesterday"}}, "rule.profile.value", "RFC 3339"},
		{"profile count value", Rule{Profile: &ProfileCond{Field: EventCount, Op: GT, Value: 1.5}}, "rule.profile.value", "integer"},
		{"lastEvent window", Rule{LastEvent: &InactivityCond{Name: "Login"}}, "rule.lastEvent.notWithin.unit", ""},
		{"computed unknown", Rule{Or: []Rule{ok, {Computed: &ComputedCond{Key: "score", Op: GT, Value: 1}}}}, "rule.or[1].computed.key", "unknown computed trait"},
		{"computed op", Rule{Computed: &ComputedCond{Key: "score", Op: "ABOUT", Value: 1}}, "rule.computed.op", ""},
		{"consent without purposes", Rule{Not: &Rule{Consent: &ConsentCond{Purpose: "marketing"}}}, "rule.not.consent.purpose", "unknown purpose"},
		{"too deep", deep, "rule" + strings.Repeat(".not", MaxDepth), "levels"},
		{"too many nodes", wide, "rule.or[99]", "nodes"},
		{"unknown segment", Rule{And: []Rule{ok, {InSegment: "nope"}}}, "rule.and[1].inSegment", "does not exist"},
		{"identifier without types", Rule{Identifier: &IdentifierCond{Type: "email"}}, "rule.identifier.type", "unknown identifier type"},
		{"identifier empty", Rule{Not: &Rule{Identifier: &IdentifierCond{}}}, "rule.not.identifier.type", "empty"},
		{"identifier and trait", Rule{Identifier: &IdentifierCond{Type: "email"}, Trait: ok.Trait}, "rule", "got trait, identifier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.r, func(string) (*Rule, bool) { return nil, false })
			e, isApp := apperr.As(err)
			if err == nil || !isApp {
				t.Fatalf("err = %v, want an *apperr.Error", err)
			}
			if e.Code != apperr.BadUserInput || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %s %q: %q, want field %q containing %q", e.Code, e.Field, e.Message, c.field, c.msg)
			}
		})
	}
}

func TestValidateIdentifierTypes(t *testing.T) {
	l := Lookups{IdentifierType: func(n string) bool { return n == "email" || n == "crmId" }}
	if err := ValidateWith("", Rule{Identifier: &IdentifierCond{Type: "crmId", Exists: ptr(false)}}, l); err != nil {
		t.Fatalf("declared type refused: %v", err)
	}
	err := ValidateWith("", Rule{And: []Rule{{Identifier: &IdentifierCond{Type: "email"}}, {Identifier: &IdentifierCond{Type: "fax"}}}}, l)
	if e, _ := apperr.As(err); e == nil || e.Field != "rule.and[1].identifier.type" || !strings.Contains(e.Message, `"fax"`) {
		t.Fatalf("undeclared type: %v", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	rules := []Rule{
		{Trait: &TraitCond{Key: "address.city", Op: In, Values: []any{"Lisbon", "Porto"}}},
		{Trait: &TraitCond{Key: "a", Op: Exists}},
		{Trait: &TraitCond{Key: "a", Op: GT, Value: "2025-01-01T00:00:00Z"}},
		{Event: &EventCond{Name: "Order Completed", Where: []PropertyCond{{Key: "revenue", Op: GT, Value: 50}},
			Count: &CountCond{Op: GTE, Value: 2}, Window: lastDays(7)}},
		{Event: &EventCond{Name: "x", Count: &CountCond{Op: EQ, Value: 0}, Window: &Window{Between: &Between{day(2025, 1, 1), day(2026, 1, 2)}}}},
		{LastEvent: &InactivityCond{Name: "Login", NotWithin: Last{14, Days}}},
		{Profile: &ProfileCond{Field: LastSeenAt, Op: LT, Value: "2026-01-01T00:00:00Z"}},
		{Profile: &ProfileCond{Field: CreatedAt, Op: GTE, Value: bson.DateTime(0)}},
		{Profile: &ProfileCond{Field: EventCount, Op: GTE, Value: 10.0}}, // JSON numbers are float64
		{Not: &Rule{Or: []Rule{{Event: &EventCond{Name: "x", Window: &Window{Last: &Last{24, Hours}}}}, {Event: &EventCond{Name: "x", Window: &Window{Last: &Last{1440, Minutes}}}}}}},
	}
	for i, r := range rules {
		if err := Validate(r, nil); err != nil {
			t.Errorf("rule %d: %v", i, err)
		}
	}
}

func TestValidateSegments(t *testing.T) {
	saved := map[string]*Rule{
		"B":      {InSegment: "C"},
		"C":      {Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}},
		"static": nil,
		"D":      {InSegment: "E"},
		"E":      {And: []Rule{{Trait: &TraitCond{Key: "x", Op: Exists}}, {InSegment: "D"}}}, // a stored cycle
		"F":      {InSegment: "gone"},
	}
	resolve := func(id string) (*Rule, bool) { r, ok := saved[id]; return r, ok }
	if err := Validate(Rule{Or: []Rule{{InSegment: "B"}, {InSegment: "static"}}}, resolve); err != nil {
		t.Fatal(err)
	}
	check := func(err error, field, msg string) {
		t.Helper()
		e, ok := apperr.As(err)
		if !ok || e.Field != field || !strings.Contains(e.Message, msg) {
			t.Fatalf("got %v, want %s: …%s…", err, field, msg)
		}
	}
	// A (being saved) → B → C → A: a cycle through the segment being saved.
	saved["C"] = &Rule{Not: &Rule{InSegment: "A"}}
	check(ValidateFor("A", Rule{InSegment: "B"}, resolve), "rule.inSegment.inSegment.not.inSegment", "cycle: A → B → C → A")
	// A referring to itself.
	check(ValidateFor("A", Rule{And: []Rule{{InSegment: "A"}}}, resolve), "rule.and[0].inSegment", "cycle: A → A")
	// A cycle among other segments.
	check(Validate(Rule{InSegment: "D"}, resolve), "rule.inSegment.inSegment.and[1].inSegment", "cycle: D → E → D")
	// A referenced segment referring to a missing one.
	check(Validate(Rule{InSegment: "F"}, resolve), "rule.inSegment.inSegment", `"F" refers to segment "gone"`)
	// Without the self id, A → B → C → A is seen as soon as A resolves (to its stored rule).
	saved["A"] = &Rule{InSegment: "B"}
	check(Validate(Rule{InSegment: "B"}, resolve), "rule.inSegment.inSegment.not.inSegment.inSegment", "cycle: B → C → A → B")
	// Chains deeper than MaxNesting.
	for i := 0; i < MaxNesting+1; i++ {
		saved[string(rune('a'+i))] = &Rule{InSegment: string(rune('a' + i + 1))}
	}
	saved[string(rune('a'+MaxNesting+1))] = nil
	if err := Validate(Rule{InSegment: "a"}, resolve); err == nil || !strings.Contains(err.Error(), "nest at most") {
		t.Fatalf("deep chain: %v", err)
	}
}

// The rule tree is a stored document: it round-trips through BSON and JSON
// (a JSON-decoded rule with float64 numbers validates and evaluates alike).
func TestRuleRoundTrip(t *testing.T) {
	r := Rule{And: []Rule{
		{Event: &EventCond{Name: "Order", Where: []PropertyCond{{Key: "revenue", Op: GT, Value: int64(50)}, {Key: "plan", Op: In, Values: []any{"pro", "team"}}},
			Count: &CountCond{Op: GTE, Value: 2}, Window: lastDays(7)}},
		{Not: &Rule{LastEvent: &InactivityCond{Name: "Login", NotWithin: Last{14, Days}}}},
		{Profile: &ProfileCond{Field: CreatedAt, Op: LT, Value: "2026-01-01T00:00:00Z"}},
		{Event: &EventCond{Name: "Visit", Window: &Window{Between: &Between{day(2025, 1, 1), day(2025, 2, 1)}}}},
		{InSegment: "seg1"},
	}}
	raw, err := bson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Rule
	if err := bson.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(r)
	var fromJSON Rule
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	resolve := func(id string) (*Rule, bool) { return nil, id == "seg1" }
	for _, x := range []Rule{r, back, fromJSON} {
		if err := Validate(x, resolve); err != nil {
			t.Fatal(err)
		}
		if got, want := Features(x), Features(r); len(got) != 3 || got[0].Key != want[0].Key || got[1].Key != want[1].Key || got[2].Key != want[2].Key {
			t.Fatalf("features differ after a round trip: %v vs %v", got, want)
		}
	}
	if !back.And[3].Event.Window.Between.From.Equal(day(2025, 1, 1)) {
		t.Fatal("between lost")
	}
}
