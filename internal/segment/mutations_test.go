package segment_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// The domain rules server's TestE2ESegments drove over HTTP: what a
// preview, a save, a write, a trait change, static lists and archiving do
// to memberships and history. server keeps a smoke test of the wiring.

func (e *env) size(t *testing.T, segID string) int64 {
	t.Helper()
	n, err := segment.Size(e.Ctx, e.Tenant, segID)
	if err != nil {
		t.Fatalf("size of %s: %v", segID, err)
	}
	return n
}

func (e *env) addTo(segID string, tg segment.Targets) error {
	_, err := e.seg.AddToStatic(e.Ctx, e.Tenant, segID, tg)
	return err
}

func (e *env) removeFrom(segID string, tg segment.Targets) error {
	_, err := e.seg.RemoveFromStatic(e.Ctx, e.Tenant, segID, tg)
	return err
}

func email(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.Email, Value: v}}
}

func TestSegmentLifecycle(t *testing.T) {
	e := newEnv(t)
	// Two orders for a, one for b; a is pro.
	a := e.track(t, "a", "order", nil)
	e.track(t, "a", "order", nil)
	b := e.track(t, "b", "order", nil)
	e.identify(t, "a", map[string]any{"plan": "pro"})

	repeat := orders(2, 7)
	// Preview saves nothing.
	n, sample, err := e.seg.PreviewFor(e.Ctx, e.Tenant, repeat, nil)
	if err != nil || n != 1 || len(sample) != 1 || sample[0].ID != a {
		t.Fatalf("preview %d %v (%v), want only %s", n, sample, err, a)
	}
	if list, _, _, err := e.seg.List(e.Ctx, e.Tenant, 10, ""); err != nil || len(list) != 0 {
		t.Fatalf("preview saved %d segments (%v)", len(list), err)
	}

	seg := e.create(t, "repeat buyers", repeat)
	if seg.Kind != segment.Dynamic || seg.Status != segment.Active || e.size(t, seg.ID) != 1 || seg.Version != 1 || seg.Rule.Event == nil {
		t.Fatalf("created %+v", seg)
	}
	// b's second order: b enters while the track is ingested.
	e.track(t, "b", "order", nil)
	ms, cursors, more, err := e.seg.Members(e.Ctx, e.Tenant, seg.ID, 1, "")
	if err != nil || e.size(t, seg.ID) != 2 || len(ms) != 1 || !more || ms[0].ProfileID != b {
		t.Fatalf("members after track: %+v more %v (%v)", ms, more, err)
	}
	ms, _, more, err = e.seg.Members(e.Ctx, e.Tenant, seg.ID, 5, cursors[0])
	if err != nil || len(ms) != 1 || more || ms[0].ProfileID != a {
		t.Fatalf("second page of members: %+v more %v (%v)", ms, more, err)
	}
	chs, _, _, err := e.seg.History(e.Ctx, e.Tenant, seg.ID, 10, "")
	if err != nil || len(chs) != 2 || chs[0].Kind != segment.Entered || chs[0].Cause != "track" || chs[0].ProfileID != b ||
		chs[1].Cause != "segment.created" || chs[0].SegmentID != seg.ID {
		t.Fatalf("history: %+v (%v)", chs, err)
	}
	if got, err := e.seg.Get(e.Ctx, e.Tenant, chs[0].SegmentID); err != nil || got.Name != "repeat buyers" {
		t.Fatalf("history's segment: %+v (%v)", got, err)
	}
	in, err := e.seg.ProfileSegments(e.Ctx, e.Tenant, a)
	if err != nil || !slices.ContainsFunc(in, func(m segment.Member) bool { return m.SegmentID == seg.ID }) {
		t.Fatalf("a's segments: %+v (%v)", in, err)
	}

	// Nested + trait, then a trait change exits.
	pro := e.create(t, "pro repeat", rule.Rule{And: []rule.Rule{
		{InSegment: seg.ID},
		{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
	}})
	if e.size(t, pro.ID) != 1 {
		t.Fatalf("pro repeat has %d members, want 1", e.size(t, pro.ID))
	}
	e.identify(t, "a", map[string]any{"plan": "free"})
	if h := e.history(t, pro.ID); e.size(t, pro.ID) != 0 || h[len(h)-1] != "EXITED:identify" {
		t.Fatalf("after the trait change: size %d, history %v", e.size(t, pro.ID), h)
	}

	// Static segment, archive, list.
	vips, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "vips", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, do func(string, segment.Targets) error, tg segment.Targets, want int64) {
		t.Helper()
		if err := do(vips.ID, tg); err != nil || e.size(t, vips.ID) != want {
			t.Fatalf("%s: size %d, want %d (%v)", what, e.size(t, vips.ID), want, err)
		}
	}
	add, remove := e.addTo, e.removeFrom
	step("static add", add, segment.Targets{ProfileIDs: []string{a, b}}, 2)
	step("static remove", remove, segment.Targets{ProfileIDs: []string{a}}, 1)
	// By identifier: an unknown one refuses the whole call.
	if _, err := e.seg.AddToStatic(e.Ctx, e.Tenant, vips.ID, segment.Targets{Identifiers: append(anon("a"), email("nobody@example.com")...)}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("add with an unknown identifier: %v", err)
	}
	step("static add by identifier", add, segment.Targets{Identifiers: anon("a")}, 2)
	step("static remove by identifier", remove, segment.Targets{Identifiers: append(anon("a"), email("nobody@example.com")...)}, 1)
	if _, err := e.seg.AddToStatic(e.Ctx, e.Tenant, vips.ID, segment.Targets{}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("add nobody: %v", err)
	}
	if s, err := e.seg.Archive(e.Ctx, e.Tenant, seg.ID); err != nil || s.Status != segment.Archived {
		t.Fatalf("archive: %+v (%v)", s, err)
	}
	e.track(t, "c", "order", nil)
	e.track(t, "c", "order", nil)
	got, err := e.seg.Get(e.Ctx, e.Tenant, seg.ID)
	if err != nil || got.Status != segment.Archived || e.size(t, seg.ID) != 2 {
		t.Fatalf("archived: %+v, size %d (%v)", got, e.size(t, seg.ID), err)
	}
	list, _, _, err := e.seg.List(e.Ctx, e.Tenant, 10, "")
	if err != nil || !slices.ContainsFunc(list, func(s *segment.Segment) bool { return s.Name == "vips" }) {
		t.Fatalf("segments: %v (%v)", list, err)
	}
}

// TestCreateRefusals: the field paths of the rule and name checks, under
// input, and a second segment of a name.
func TestCreateRefusals(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		in    segment.CreateInput
		field string
	}{
		{segment.CreateInput{Name: "x", Rule: &rule.Rule{Event: &rule.EventCond{Name: "o", Window: &rule.Window{Last: &rule.Last{Amount: 0, Unit: rule.Days}}}}}, "input.rule.event.window"},
		{segment.CreateInput{Name: "x", Rule: &rule.Rule{InSegment: "nope"}}, "input.rule.inSegment"},
		{segment.CreateInput{Name: " ", Rule: &rule.Rule{Trait: &rule.TraitCond{Key: "a", Op: rule.Exists}}}, "input.name"},
		{segment.CreateInput{Name: "x"}, "input.rule"},
	}
	for _, c := range cases {
		_, err := e.seg.Create(e.Ctx, e.Tenant, c.in)
		if apperr.CodeOf(err) != apperr.BadUserInput || !strings.HasPrefix(fieldOf(err), c.field) {
			t.Errorf("%+v: %v (field %q), want BAD_USER_INPUT at %s…", c.in, err, fieldOf(err), c.field)
		}
	}
	if _, _, err := e.seg.PreviewFor(e.Ctx, e.Tenant, rule.Rule{InSegment: "nope"}, nil); !strings.HasPrefix(fieldOf(err), "rule") {
		t.Errorf("preview: %v (field %q), want it under rule", err, fieldOf(err))
	}
	// Unique names.
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "dup", Kind: segment.Static}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "dup", Kind: segment.Static}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("second dup: %v", err)
	}
}
