package consent_test

import (
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// segmentOn creates a dynamic segment with rule r.
func segmentOn(t *testing.T, env *apptest.Env, name string, r rule.Rule) *segment.Segment {
	t.Helper()
	s, err := env.Services.Segments.Create(env.Ctx, env.Tenant, segment.CreateInput{Name: name, Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func consentRule(purpose, channel, status string) rule.Rule {
	return rule.Rule{Consent: &rule.ConsentCond{Purpose: purpose, Channel: channel, Status: status}}
}

func size(t *testing.T, env *apptest.Env, segID string) int64 {
	t.Helper()
	n, err := segment.Size(env.Ctx, env.Tenant, segID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// segmentHistory is a segment's membership changes, newest first.
func segmentHistory(t *testing.T, env *apptest.Env, segID string) []segment.Change {
	t.Helper()
	h, _, _, err := env.Services.Segments.History(env.Ctx, env.Tenant, segID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tick moves the clock on, so that each write has its own recordedAt and
// the log's newest-first order is the order of the calls.
func tick(env *apptest.Env) { env.Clock.Set(env.Clock.Now().Add(time.Second)) }

// The channel's own record overrides ANY for that channel only; a record
// captured before the current one is history; without a record the
// lawful basis decides; the reads list states by purpose then channel,
// and the log newest first, page by page.
func TestConsentChannelOverrideAndReads(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env := apptest.New(t, start)
	cs := env.Services.Consent
	desc := "Service notices"
	if _, err := cs.DefinePurpose(env.Ctx, env.Tenant, consent.PurposeInput{Key: "service_updates", Description: &desc, LawfulBasis: consent.BasisLegitimateInterest}); err != nil {
		t.Fatal(err)
	}
	byEmail := segmentOn(t, env, "marketing email", consentRule("marketing", "EMAIL", "GRANTED"))
	denied := segmentOn(t, env, "marketing email denied", consentRule("marketing", "EMAIL", "DENIED"))

	ana := consent.Subject{Identifier: email("ana@example.com")}
	anyState := set(t, env, ana, consent.Choice{Purpose: "marketing", Status: "GRANTED", Source: "cookie-banner", Proof: map[string]any{"form": "v3"}})
	pid := anyState.ProfileID
	if anyState.Channel != "ANY" || anyState.Status != "GRANTED" || anyState.LawfulBasis != "CONSENT" || anyState.Source != "cookie-banner" {
		t.Fatalf("ANY state %+v", anyState)
	}
	for _, ch := range []string{"EMAIL", "SMS", "ANY"} {
		if !allowed(t, env, pid, "marketing", ch) {
			t.Fatalf("ANY GRANTED: CanContact(marketing, %s) false", ch)
		}
	}
	if size(t, env, byEmail.ID) != 1 {
		t.Fatal("ANY GRANTED: not in the email segment")
	}

	tick(env)
	st := set(t, env, ana, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "DENIED"})
	if st.Channel != "EMAIL" || st.Status != "DENIED" {
		t.Fatalf("EMAIL state %+v", st)
	}
	if allowed(t, env, pid, "marketing", "EMAIL") {
		t.Fatal("EMAIL DENIED overrides ANY GRANTED, but CanContact(marketing, EMAIL) is true")
	}
	if !allowed(t, env, pid, "marketing", "SMS") || !allowed(t, env, pid, "marketing", "ANY") {
		t.Fatal("EMAIL DENIED must not change SMS / ANY")
	}
	if size(t, env, byEmail.ID) != 0 || size(t, env, denied.ID) != 1 {
		t.Fatal("EMAIL DENIED: segments did not follow")
	}
	tick(env)
	old := env.Clock.Now().Add(-time.Hour)
	st = set(t, env, ana, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED", CapturedAt: &old})
	if st.Status != "DENIED" || allowed(t, env, pid, "marketing", "EMAIL") {
		t.Fatalf("an older record changed the state: %+v", st)
	}

	if allowed(t, env, pid, "analytics", "WEB") {
		t.Fatal("analytics (CONSENT) without a record is allowed")
	}
	if !allowed(t, env, pid, "service_updates", "EMAIL") {
		t.Fatal("service_updates (LEGITIMATE_INTEREST) without a record is refused")
	}

	// A banner submission sets several at once; identify carries consent too.
	tick(env)
	if _, err := cs.Set(env.Ctx, env.Tenant, "input", consent.Subject{ProfileID: &pid}, "input.choices", []consent.Choice{
		{Purpose: "analytics", Status: "GRANTED", Source: "banner"},
		{Purpose: "service_updates", Channel: "SMS", Status: "WITHDRAWN", Source: "banner"},
	}, "test"); err != nil {
		t.Fatal(err)
	}
	if allowed(t, env, pid, "service_updates", "SMS") || !allowed(t, env, pid, "analytics", "WEB") {
		t.Fatal("a batch of choices was not applied")
	}
	tick(env)
	if _, err := env.Services.Ingest.Identify(env.Ctx, env.Tenant, ingest.Caller{Subject: "test", ConsentWrite: true}, ingest.IdentifyInput{
		Identifiers: []identity.Identifier{*email("ana@example.com")}, Consent: []consent.Choice{{Purpose: "profiling", Status: "DENIED"}},
	}); err != nil {
		t.Fatal(err)
	}

	p := env.Profile(t, pid)
	states, err := cs.States(env.Ctx, env.Tenant, p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range states {
		got = append(got, c.Purpose+":"+c.Channel+":"+c.Status)
	}
	want := []string{"analytics:ANY:GRANTED", "marketing:ANY:GRANTED", "marketing:EMAIL:DENIED", "profiling:ANY:DENIED", "service_updates:SMS:WITHDRAWN"}
	if !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}

	recs, cursors, more, err := cs.History(env.Ctx, env.Tenant, pid, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Purpose != "profiling" || !more {
		t.Fatalf("history page 1 %+v more %v", recs, more)
	}
	recs, _, more, err = cs.History(env.Ctx, env.Tenant, pid, 10, cursors[len(cursors)-1])
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if len(recs) != 3 || more || last.Purpose != "marketing" || last.Channel != "ANY" || last.Proof["form"] != "v3" {
		t.Fatalf("history page 2 %+v more %v", recs, more)
	}

	ps, err := cs.Purposes(env.Ctx, env.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 6 || ps[0].Key != "analytics" || ps[5].Key != "service_updates" || ps[5].BuiltIn || ps[5].Description != desc {
		t.Fatalf("purposes %+v", ps)
	}
}

// A record stops counting at its expiresAt: CanContact turns false at
// once, and the sweep takes the person out of the segments that read it
// (cause time); the log keeps the record.
func TestConsentExpiryExitsSegment(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env := apptest.New(t, start)
	seg := segmentOn(t, env, "newsletter", consentRule("marketing", "EMAIL", "GRANTED"))

	exp := start.Add(48 * time.Hour)
	st := set(t, env, consent.Subject{Identifier: email("ana@example.com")}, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED", ExpiresAt: &exp})
	pid := st.ProfileID
	if !st.ExpiresAt.Equal(exp) || !allowed(t, env, pid, "marketing", "EMAIL") {
		t.Fatalf("granted state %+v", st)
	}
	if h := segmentHistory(t, env, seg.ID); len(h) != 1 || h[0].Kind != segment.Entered || h[0].Cause != "consent" {
		t.Fatalf("history %+v", h)
	}

	env.Clock.Set(start.Add(24 * time.Hour))
	if !allowed(t, env, pid, "marketing", "EMAIL") {
		t.Fatal("not granted before expiry")
	}
	if _, err := env.Services.Segments.Sweep(env.Ctx, env.Tenant, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if h := segmentHistory(t, env, seg.ID); len(h) != 1 {
		t.Fatalf("a sweep before expiry changed the membership: %+v", h)
	}

	env.Clock.Set(start.Add(49 * time.Hour))
	if allowed(t, env, pid, "marketing", "EMAIL") {
		t.Fatal("still granted after expiry")
	}
	if _, err := env.Services.Segments.Sweep(env.Ctx, env.Tenant, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	h := segmentHistory(t, env, seg.ID)
	if len(h) != 2 || h[0].Kind != segment.Exited || h[0].Cause != "time" || h[0].ProfileID != pid {
		t.Fatalf("history after expiry %+v", h)
	}
	states, err := env.Services.Consent.States(env.Ctx, env.Tenant, env.Profile(t, pid))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, _, err := env.Services.Consent.History(env.Ctx, env.Tenant, pid, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 0 || len(recs) != 1 {
		t.Fatalf("after expiry: states %+v, log %+v", states, recs)
	}
}

// A withdrawal takes the person out of the segments that need the
// consent before Set returns (not at the next sweep), and each record is
// published as consent.changed, in order.
func TestConsentWithdrawalExitsAtOnce(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	out := &apptest.Recorder{}
	env.Services.Publish(out)
	seg := segmentOn(t, env, "sms marketing", rule.Rule{And: []rule.Rule{
		consentRule("marketing", "SMS", "GRANTED"),
		{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}},
	}})
	res, err := env.Services.Ingest.Identify(env.Ctx, env.Tenant, ingest.Caller{Subject: "test"}, ingest.IdentifyInput{
		Identifiers: []identity.Identifier{*email("ana@example.com")}, Traits: map[string]any{"plan": "pro"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := res.Profile.ID
	if size(t, env, seg.ID) != 0 {
		t.Fatal("traits alone let ana in")
	}

	ana := consent.Subject{Identifier: email("ana@example.com")}
	set(t, env, ana, consent.Choice{Purpose: "marketing", Status: "GRANTED", Source: "crm"})
	if h := segmentHistory(t, env, seg.ID); len(h) != 1 || h[0].Kind != segment.Entered || h[0].Cause != "consent" || h[0].ProfileID != pid {
		t.Fatalf("after the grant: %+v", h)
	}
	tick(env)
	st := set(t, env, ana, consent.Choice{Purpose: "marketing", Channel: "SMS", Status: "WITHDRAWN", Source: "sms-stop"})
	if st.Status != "WITHDRAWN" {
		t.Fatalf("state %+v", st)
	}
	if h := segmentHistory(t, env, seg.ID); len(h) != 2 || h[0].Kind != segment.Exited || h[0].Cause != "consent" || h[0].ProfileID != pid {
		t.Fatalf("right after the withdrawal: %+v", h)
	}

	var got []string
	for _, c := range out.Of(0, realtime.ConsentChanged, pid) {
		if c.Payload[realtime.PayloadPurpose] != "marketing" {
			t.Fatalf("consent.changed %+v", c)
		}
		got = append(got, c.Payload[realtime.PayloadChannel].(string))
	}
	if !slices.Equal(got, []string{"ANY", "SMS"}) {
		t.Fatalf("consent.changed channels %v, want ANY then SMS", got)
	}
	var kinds []any
	for _, c := range out.Of(0, realtime.MembershipChanged, pid) {
		kinds = append(kinds, c.Payload[realtime.PayloadKind])
	}
	if !slices.Equal(kinds, []any{segment.Entered, segment.Exited}) {
		t.Fatalf("membership.changed %v", kinds)
	}
}
