package consent_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

func email(v string) *identity.Identifier { return &identity.Identifier{Type: "email", Value: v} }

func set(t *testing.T, env *apptest.Env, who consent.Subject, c consent.Choice) consent.State {
	t.Helper()
	st, err := env.Services.Consent.Set(env.Ctx, env.Tenant, "input", who, "", []consent.Choice{c}, "test")
	if err != nil {
		t.Fatalf("set %+v: %v", c, err)
	}
	return st[0]
}

func allowed(t *testing.T, env *apptest.Env, id, purpose, channel string) bool {
	t.Helper()
	p, err := profile.Resolve(env.Ctx, env.Tenant, id, env.Services.Identity.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := env.Services.Consent.CanContact(env.Ctx, env.Tenant, p, purpose, channel)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The survivor of a merge holds both profiles' consent, each key decided
// by the latest record; an unmerge gives the restored profile its own back.
func TestConsentFollowsMergeAndUnmerge(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env := apptest.New(t, start)
	cs := env.Services.Consent
	a := set(t, env, consent.Subject{Identifier: email("a@example.com")}, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED"})
	env.Clock.Set(start.Add(time.Minute))
	b := set(t, env, consent.Subject{Identifier: email("b@example.com")}, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "DENIED"})
	set(t, env, consent.Subject{Identifier: email("b@example.com")}, consent.Choice{Purpose: "analytics", Status: "GRANTED"})

	survivor, err := env.Services.Identity.Merge(env.Ctx, env.Tenant, b.ProfileID, a.ProfileID, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	if survivor.ID != a.ProfileID {
		t.Fatalf("survivor %s", survivor.ID)
	}
	if allowed(t, env, a.ProfileID, "marketing", "EMAIL") {
		t.Fatal("b's later DENIED must win on the survivor")
	}
	if !allowed(t, env, a.ProfileID, "analytics", "WEB") {
		t.Fatal("b's analytics grant did not follow the merge")
	}
	recs, _, _, err := cs.History(env.Ctx, env.Tenant, a.ProfileID, 10, "")
	if err != nil || len(recs) != 3 {
		t.Fatalf("survivor's log %d %v", len(recs), err)
	}

	hist, err := identity.History(env.Ctx, env.Tenant, a.ProfileID)
	if err != nil || len(hist) == 0 {
		t.Fatalf("merge history %v", err)
	}
	if _, err := env.Services.Identity.Unmerge(env.Ctx, env.Tenant, hist[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	if !allowed(t, env, a.ProfileID, "marketing", "EMAIL") || allowed(t, env, a.ProfileID, "analytics", "WEB") {
		t.Fatal("after unmerge a keeps only its own consent")
	}
	if allowed(t, env, b.ProfileID, "marketing", "EMAIL") || !allowed(t, env, b.ProfileID, "analytics", "WEB") {
		t.Fatal("after unmerge b has its own consent back")
	}
}

// A consent change re-evaluates only the segments reading that purpose.
func TestConsentReevaluatesOnlyConsentSegments(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	seg := env.Services.Segments
	mk := func(name string, r rule.Rule) *segment.Segment {
		s, err := seg.Create(env.Ctx, env.Tenant, segment.CreateInput{Name: name, Rule: &r})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mk("pro", rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}})
	mk("buyers", rule.Rule{Event: &rule.EventCond{Name: "order"}})
	mk("analytics", rule.Rule{Consent: &rule.ConsentCond{Purpose: "analytics"}})
	mkt := mk("marketing", rule.Rule{Consent: &rule.ConsentCond{Purpose: "marketing", Channel: "SMS"}})

	who := consent.Subject{Identifier: email("a@example.com")}
	set(t, env, who, consent.Choice{Purpose: "analytics", Status: "GRANTED"})
	before := seg.Evaluations()
	st := set(t, env, who, consent.Choice{Purpose: "marketing", Status: "GRANTED"})
	if n := seg.Evaluations() - before; n != 1 {
		t.Fatalf("a marketing change evaluated %d segments, want 1", n)
	}
	ms, err := seg.ProfileSegments(env.Ctx, env.Tenant, st.ProfileID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("memberships %+v %v", ms, err)
	}
	if _, err := env.Services.Consent.DefinePurpose(env.Ctx, env.Tenant, consent.PurposeInput{Key: "loyalty"}); err != nil {
		t.Fatal(err)
	}
	// A changed basis re-evaluates: no record + LEGITIMATE_INTEREST = allowed.
	loyal := mk("loyal", rule.Rule{Consent: &rule.ConsentCond{Purpose: "loyalty"}})
	if n, _ := segment.Size(env.Ctx, env.Tenant, loyal.ID); n != 0 {
		t.Fatalf("loyal has %d members under CONSENT", n)
	}
	if _, err := env.Services.Consent.DefinePurpose(env.Ctx, env.Tenant, consent.PurposeInput{Key: "loyalty", LawfulBasis: consent.BasisLegitimateInterest}); err != nil {
		t.Fatal(err)
	}
	if n, _ := segment.Size(env.Ctx, env.Tenant, loyal.ID); n != 1 {
		t.Fatalf("loyal has %d members under LEGITIMATE_INTEREST", n)
	}
	_ = mkt
}
