package privacy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/privacy/privacytest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
)

// An erasure interrupted after its record and a few steps (a crash) is
// finished by calling Erase again, with the receipt counting what was
// there before the crash.
func TestEraseResumesAfterCrash(t *testing.T) {
	e := apptest.New(t, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	s := e.Services.Privacy
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: "email", Value: "crash@example.com"}}, Traits: map[string]any{"firstName": "Crashy"}})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile.ID
	for _, msg := range []string{"c1", "c2"} {
		if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "input", []timeline.TrackInput{{MessageID: msg, Identifiers: []identity.Identifier{{Type: "email", Value: "crash@example.com"}}, Name: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	recID, err := s.Plan(e.Ctx, e.Tenant, p, "crash test", "t")
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the profile and one event went, nothing else.
	if err := profile.Erase(e.Ctx, e.Tenant, p); err != nil {
		t.Fatal(err)
	}
	page, err := timeline.Read(e.Ctx, e.Tenant, p, 1, "", timeline.Filter{})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("read: %v", err)
	}
	if err := e.Tenant.C("events").Delete(e.Ctx, page.Items[0].ID); err != nil {
		t.Fatal(err)
	}

	rc, err := s.Erase(e.Ctx, e.Tenant, p, "ignored on resume", "t")
	if err != nil {
		t.Fatal(err)
	}
	if rc.ID != recID || rc.TimelineItems != 2 || rc.Identifiers != 1 || rc.Reason != "crash test" {
		t.Fatalf("receipt %+v", rc)
	}
	hits, _, err := privacytest.Leftovers(e.Ctx, e.Store, e.Tenant.Workspace(), []string{p, "crash@example.com", "Crashy", "crashy"})
	if err != nil || len(hits) > 0 {
		t.Fatalf("leftovers %v:\n%s", err, strings.Join(hits, "\n"))
	}
}
