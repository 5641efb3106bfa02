package privacy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/privacy/privacytest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	n int
}

func newEnv(t testing.TB) *env { return &env{Env: apptest.New(t, start)} }

func (e *env) svc() *privacy.Service { return e.Services.Privacy }

func (e *env) track(t *testing.T, ids []identity.Identifier, name string) (string, error) {
	t.Helper()
	e.n++
	var props any
	if name == "order_completed" {
		props = map[string]any{"sku": "sku-erase-42"}
	}
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{
		MessageID: fmt.Sprintf("m-%d", e.n), Identifiers: ids, Name: name, Properties: props,
	}})
	if err != nil {
		return "", err
	}
	return res[0].Profile.ID, nil
}

func (e *env) identify(t *testing.T, ids []identity.Identifier, traits map[string]any) string {
	t.Helper()
	norm, err := identity.Normalise("identifiers", ids)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: norm, Traits: traits})
	if err != nil {
		t.Fatalf("identify: %v", err)
	}
	return res.Profile.ID
}

func ids(pairs ...string) []identity.Identifier {
	var out []identity.Identifier
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, identity.Identifier{Type: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// consentEntry writes a consent_log document shaped like package consent's.
func (e *env) consentEntry(t *testing.T, profileID, purpose string) {
	t.Helper()
	doc := map[string]any{
		"_id": store.NewID(), "profileId": profileID, "purpose": purpose, "channel": "EMAIL", "status": "GRANTED",
		"source": "web-form", "capturedAt": start, "recordedAt": start, "proof": map[string]any{"ip": "203.0.113.77", "text": "Erinyes agreed"},
	}
	if err := e.Tenant.C(consent.ConsentLog).Insert(e.Ctx, doc); err != nil {
		t.Fatal(err)
	}
}

// person sets up someone with two merged profiles, events, an
// interaction, consent entries and two segment memberships.
func (e *env) person(t *testing.T) (survivor, merged string) {
	t.Helper()
	survivor = e.identify(t, ids("anonymousId", "erase-anon-1"), map[string]any{"firstName": "Erinyes", "plan": "pro"})
	e.Clock.Set(e.Clock.Now().Add(time.Second))
	merged = e.identify(t, ids("email", "Erin.Erased@Example.com"), nil)
	if got := e.identify(t, ids("anonymousId", "erase-anon-1", "email", "erin.erased@example.com"), nil); got != survivor {
		t.Fatalf("merge kept %s, want %s", got, survivor)
	}
	for range 3 {
		if _, err := e.track(t, ids("email", "erin.erased@example.com"), "order_completed"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Services.Ingest.LogInteraction(e.Ctx, e.Tenant, timeline.InteractionInput{ProfileID: survivor, Kind: "CALL", Subject: "Erinyes called"}); err != nil {
		t.Fatal(err)
	}
	e.consentEntry(t, survivor, "marketing")
	e.consentEntry(t, survivor, "analytics")
	return survivor, merged
}

var needles = []string{"erase-anon-1", "erin.erased@example.com", "Erin.Erased@Example.com", "Erinyes", "erinyes", "203.0.113.77", "sku-erase-42"}

func TestEraseLeavesNothingAndSuppresses(t *testing.T) {
	e := newEnv(t)
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "pros", Rule: &rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	static, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "vip", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}
	bystander := e.identify(t, ids("email", "by@example.com"), map[string]any{"plan": "pro"})
	if _, err := e.track(t, ids("email", "by@example.com"), "page_viewed"); err != nil {
		t.Fatal(err)
	}
	p, merged := e.person(t)
	if _, err := e.Services.Segments.AddStatic(e.Ctx, e.Tenant, static.ID, []string{p}); err != nil {
		t.Fatal(err)
	}

	// Export first: everything counted.
	out, err := e.svc().Export(e.Ctx, e.Tenant, merged)
	if err != nil {
		t.Fatal(err)
	}
	counts := out["counts"].(map[string]any)
	want := map[string]int{"events": 3, "interactions": 1, "consentLog": 2, "identifiers": 2, "memberships": 2}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("export counts[%s] = %v, want %d (%v)", k, counts[k], n, counts)
		}
	}
	if out["profileId"] != p || out["traits"].(map[string]any)["firstName"] != "Erinyes" {
		t.Fatalf("export of %s: profileId %v traits %v", merged, out["profileId"], out["traits"])
	}
	// Scores and computed values come readable, not as the stored packed
	// binaries.
	sc, _ := out["scores"].(map[string]any)
	if act, _ := sc["activity"].([]any); len(act) == 0 || len(sc["explain"].([]string)) != 4 {
		t.Fatalf("export scores %v", out["scores"])
	}
	if _, ok := out["computed"].(map[string]any); !ok {
		t.Fatalf("export computed %v", out["computed"])
	}
	if _, ok := out["profile"].(map[string]any)["tally"]; ok {
		t.Fatal("export shows the stored tally")
	}

	rc, err := e.svc().Erase(e.Ctx, e.Tenant, p, "customer request", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if rc.TimelineItems != 4 || rc.Identifiers != 2 || rc.SuppressedIdentifiers != 2 || rc.Memberships != 2 || rc.ConsentRecords != 2 ||
		len(rc.ErasedProfileIDs) != 2 || rc.ErasedProfileIDs[1] != merged || rc.Reason != "customer request" {
		t.Fatalf("receipt %+v", rc)
	}

	hits, read, err := privacytest.Leftovers(e.Ctx, e.Store, e.Tenant.Workspace(), append([]string{p, merged}, needles...))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 || read == 0 {
		t.Fatalf("after erasure (%d documents read):\n%s", read, strings.Join(hits, "\n"))
	}
	// Kept: the anonymised consent entries, and the segment history under the pseudonym.
	if n := e.Count(t, consent.ConsentLog, consent.ConsentByProfile); n != 2 {
		t.Fatalf("consent entries kept: %d", n)
	}
	hist, _, _, err := e.Services.Segments.History(e.Ctx, e.Tenant, seg.ID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || hist[0].Kind != segment.Exited || hist[0].Cause != segment.CauseErasure || !strings.HasPrefix(hist[0].ProfileID, "erased-") {
		t.Fatalf("history %+v", hist)
	}
	// The bystander is untouched.
	if bp := e.Profile(t, bystander); bp.EventCount != 1 {
		t.Fatalf("bystander %+v", bp)
	}
	if n, _ := segment.Size(e.Ctx, e.Tenant, seg.ID); n != 1 {
		t.Fatalf("pros size %d, want 1", n)
	}

	// Later ingest with any of the identifiers is refused and stores nothing.
	events := e.Count(t, timeline.Events, timeline.EventsByProfileTime)
	profiles := e.Count(t, profile.Profiles, profile.ProfilesByCreated)
	for _, who := range [][]identity.Identifier{ids("email", "erin.erased@example.com"), ids("anonymousId", "erase-anon-1", "deviceId", "new-device")} {
		_, err := e.track(t, who, "page_viewed")
		wantCode(t, err, apperr.Suppressed)
	}
	_, err = e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: ids("email", "erin.erased@example.com"), Traits: map[string]any{"x": 1}})
	wantCode(t, err, apperr.Suppressed)
	// A batch with one suppressed event stores none of its events.
	e.n++
	_, err = e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", []timeline.TrackInput{
		{MessageID: "batch-ok", Identifiers: ids("email", "by@example.com"), Name: "page_viewed"},
		{MessageID: "batch-bad", Identifiers: ids("email", "erin.erased@example.com"), Name: "page_viewed"},
	})
	wantCode(t, err, apperr.Suppressed)
	if got := e.Count(t, timeline.Events, timeline.EventsByProfileTime); got != events {
		t.Fatalf("events %d after refused calls, want %d", got, events)
	}
	if got := e.Count(t, profile.Profiles, profile.ProfilesByCreated); got != profiles {
		t.Fatalf("profiles %d after refused calls, want %d", got, profiles)
	}

	// Repeating returns the same receipt.
	again, err := e.svc().Erase(e.Ctx, e.Tenant, p, "", "tester")
	if err != nil || again.ID != rc.ID || again.TimelineItems != 4 || again.Memberships != 2 {
		t.Fatalf("repeat: %+v %v", again, err)
	}

	// Lifting one suppression lets that identifier in (as a new person);
	// the other stays refused.
	lifted, err := e.svc().LiftSuppression(e.Ctx, e.Tenant, identity.Identifier{Type: "email", Value: " ERIN.Erased@example.com "})
	if err != nil || !lifted {
		t.Fatalf("lift: %v %v", lifted, err)
	}
	if lifted, err = e.svc().LiftSuppression(e.Ctx, e.Tenant, identity.Identifier{Type: "email", Value: "erin.erased@example.com"}); err != nil || lifted {
		t.Fatalf("second lift: %v %v", lifted, err)
	}
	back, err := e.track(t, ids("email", "erin.erased@example.com"), "page_viewed")
	if err != nil || back == p || back == merged {
		t.Fatalf("after lift: %s %v", back, err)
	}
	_, err = e.track(t, ids("anonymousId", "erase-anon-1"), "page_viewed")
	wantCode(t, err, apperr.Suppressed)
}

func TestEraseBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.identify(t, ids("anonymousId", "a1"), nil)
	_, err := e.svc().Erase(e.Ctx, e.Tenant, "nope", "", "tester")
	wantCode(t, err, apperr.NotFound)
	_, err = e.svc().Erase(e.Ctx, e.Tenant, p, strings.Repeat("x", privacy.MaxReason+1), "tester")
	wantCode(t, err, apperr.BadUserInput)
	_, err = e.svc().Erase(e.Ctx, e.Tenant, strings.Repeat("x", 200), "", "tester")
	wantCode(t, err, apperr.BadUserInput)
	_, err = e.svc().Export(e.Ctx, e.Tenant, "nope")
	wantCode(t, err, apperr.NotFound)
	for _, id := range []identity.Identifier{{Type: "nope", Value: "x"}, {Type: "email", Value: "not an email"}, {Type: "anonymousId", Value: "undefined"}} {
		_, err := e.svc().LiftSuppression(e.Ctx, e.Tenant, id)
		wantCode(t, err, apperr.BadUserInput)
		if ae, _ := apperr.As(err); !strings.HasPrefix(ae.Field, "identifier.") {
			t.Fatalf("field %q", ae.Field)
		}
	}
	// Nothing was erased or suppressed by the refused calls.
	if _, err := profile.Get(e.Ctx, e.Tenant, p); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(t, identity.Suppressions, identity.SuppressionsByHash); n != 0 {
		t.Fatalf("%d suppressions", n)
	}
}

func TestExportLargeTimeline(t *testing.T) {
	e := newEnv(t)
	p := e.identify(t, ids("anonymousId", "big"), nil)
	const n = 10_000
	for b := 0; b < n/500; b++ {
		in := make([]timeline.TrackInput, 500)
		for i := range in {
			in[i] = timeline.TrackInput{MessageID: fmt.Sprintf("big-%d-%d", b, i), Identifiers: ids("anonymousId", "big"), Name: "page_viewed"}
		}
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", in); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.svc().Export(e.Ctx, e.Tenant, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out["events"].([]any)); got != n {
		t.Fatalf("exported %d events, want %d", got, n)
	}
	rc, err := e.svc().Erase(e.Ctx, e.Tenant, p, "", "tester")
	if err != nil || rc.TimelineItems != n {
		t.Fatalf("erase: %+v %v", rc, err)
	}
	if got := e.Count(t, timeline.Events, timeline.EventsByProfileTime); got != 0 {
		t.Fatalf("%d events left", got)
	}
}
