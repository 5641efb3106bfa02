package segment_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// fakeGuard refuses every rule with err, recording the paths it was
// asked about.
type fakeGuard struct {
	err   error
	paths []string
}

func (g *fakeGuard) CheckRule(_ context.Context, _ store.Tenant, _ rule.Rule, path string) error {
	g.paths = append(g.paths, path)
	return g.err
}

// TestRuleGuardChecksFirst: createSegment, updateSegment and
// segmentPreview ask the caller's guard about the rule before anything
// else, so a refused caller learns nothing else and nothing is saved; a
// call without a rule asks nothing.
func TestRuleGuardChecksFirst(t *testing.T) {
	e := newEnv(t)
	no := errors.New("refused")
	g := &fakeGuard{err: no}
	r := orders(1, 7)
	// Even a blank name and an unknown segment come second.
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: " ", Rule: &r, Guard: g}); !errors.Is(err, no) {
		t.Fatalf("create: %v", err)
	}
	if _, err := e.seg.Update(e.Ctx, e.Tenant, "nope", segment.UpdateInput{Rule: &r, Guard: g}); !errors.Is(err, no) {
		t.Fatalf("update: %v", err)
	}
	if _, _, err := e.seg.PreviewFor(e.Ctx, e.Tenant, rule.Rule{InSegment: "nope"}, g); !errors.Is(err, no) {
		t.Fatalf("preview: %v", err)
	}
	if got := strings.Join(g.paths, " "); got != "input.rule input.rule rule" {
		t.Fatalf("guard asked about %q", got)
	}
	if list, _, _, err := e.seg.List(e.Ctx, e.Tenant, 10, ""); err != nil || len(list) != 0 {
		t.Fatalf("a refused create saved %d segments (%v)", len(list), err)
	}

	// No rule, nothing to ask.
	g.paths = nil
	st, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "list", Kind: segment.Static, Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := e.seg.Update(e.Ctx, e.Tenant, st.ID, segment.UpdateInput{Name: &name, Guard: g}); err != nil || len(g.paths) != 0 {
		t.Fatalf("rename: %v, guard asked about %v", err, g.paths)
	}

	// An allowing guard lets the call through.
	ok := &fakeGuard{}
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &r, Guard: ok})
	if err != nil {
		t.Fatal(err)
	}
	r2 := orders(2, 7)
	if up, err := e.seg.Update(e.Ctx, e.Tenant, s.ID, segment.UpdateInput{Rule: &r2, Guard: ok}); err != nil || up.Version != 2 {
		t.Fatalf("update: %+v (%v)", up, err)
	}
	if n, _, err := e.seg.PreviewFor(e.Ctx, e.Tenant, r, ok); err != nil || n != 0 {
		t.Fatalf("preview: %d (%v)", n, err)
	}
	if len(ok.paths) != 3 {
		t.Fatalf("allowing guard asked %d times, want 3", len(ok.paths))
	}
}

// TestRuleGuardPII: the privacy domain's guard, as the resolvers wire it
// from the caller's scope: without pii:read, a rule on a PII trait (email
// is one by default) is FORBIDDEN at its path, and nothing is saved;
// with it, or on plain data, the call goes through.
func TestRuleGuardPII(t *testing.T) {
	e := newEnv(t)
	onEmail := rule.Rule{And: []rule.Rule{{Trait: &rule.TraitCond{Key: "email", Op: rule.StartsWith, Value: "a"}}}}
	onPlan := rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}
	masked := e.Services.Privacy.RuleGuard(false, e.Services.Traits)
	if clear := e.Services.Privacy.RuleGuard(true, e.Services.Traits); clear != nil {
		t.Fatalf("pii:read guard %v, want none", clear)
	}
	forbidden := func(what string, err error, at string) {
		t.Helper()
		want := at + ` needs scope pii:read: it reads personal data (trait key "email")`
		if apperr.CodeOf(err) != apperr.Forbidden || err.Error() != want {
			t.Fatalf("%s: %v, want FORBIDDEN %q", what, err, want)
		}
	}
	_, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "a-mails", Rule: &onEmail, Guard: masked})
	forbidden("create", err, "input.rule.and[0].trait")
	s, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "pros", Rule: &onPlan, Guard: masked})
	if err != nil {
		t.Fatalf("create on plain data: %v", err)
	}
	_, err = e.seg.Update(e.Ctx, e.Tenant, s.ID, segment.UpdateInput{Rule: &onEmail, Guard: masked})
	forbidden("update", err, "input.rule.and[0].trait")
	_, _, err = e.seg.PreviewFor(e.Ctx, e.Tenant, onEmail, masked)
	forbidden("preview", err, "rule.and[0].trait")
	if got, err := e.seg.Get(e.Ctx, e.Tenant, s.ID); err != nil || got.Version != 1 {
		t.Fatalf("a refused update changed the segment: %+v (%v)", got, err)
	}
	if _, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "a-mails", Rule: &onEmail, Guard: nil}); err != nil {
		t.Fatalf("create with pii:read: %v", err)
	}
}
