package main

// E2E tests of the data-subject requests (exportProfileData, eraseProfile,
// liftSuppression) over HTTP and websockets. What an export holds, what an
// erasure removes, keeps and refuses afterwards are internal/privacy's
// tests (TestPrivacyExportEraseSuppress).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/store"
)

const receiptFields = `id profileId erasedProfileIds reason erasedAt timelineItems identifiers memberships consentRecords suppressedIdentifiers`

type gqlReceipt struct {
	ID                    string    `json:"id"`
	ProfileID             string    `json:"profileId"`
	ErasedProfileIds      []string  `json:"erasedProfileIds"`
	Reason                *string   `json:"reason"`
	ErasedAt              time.Time `json:"erasedAt"`
	TimelineItems         int       `json:"timelineItems"`
	Identifiers           int       `json:"identifiers"`
	Memberships           int       `json:"memberships"`
	ConsentRecords        int       `json:"consentRecords"`
	SuppressedIdentifiers int       `json:"suppressedIdentifiers"`
}

// secondStore opens a second handle on a running server's store (both
// engines allow several processes on one store).
func secondStore(t *testing.T, s *testServer) *store.Store {
	t.Helper()
	st, err := openStore(context.Background(), s.Config)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

// untilTraitSegmentLive identifies fresh "pro" profiles until the
// subscription delivers one's ENTERED, then drains it.
func untilTraitSegmentLive(t *testing.T, s *testServer, tok string, recv memRecv) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		identify(t, s, tok, ids("anonymousId", fmt.Sprintf("warm-pro-%d", i)), map[string]any{"plan": "pro"})
		if _, ok := recv(300 * time.Millisecond); ok {
			for {
				if _, ok := recv(200 * time.Millisecond); !ok {
					return
				}
			}
		}
	}
	t.Fatal("subscription never became live")
}

// TestE2EPrivacyExportEraseSuppress: on every engine, the mutations need
// privacy:admin; eraseProfile's receipt carries the service's; a segment
// subscriber sees the person leave with no profile to show; a refused
// ingest says SUPPRESSED without echoing the identifier; a repeat returns
// the same receipt; liftSuppression says whether it lifted.
func TestE2EPrivacyExportEraseSuppress(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")

		pros := createSegment(t, s, tok, map[string]any{"name": "pros", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}})
		ws := connectWS(t, s, tok)
		op := ws.subscribe(t, membershipSub, map[string]any{"s": pros.ID})
		recv := wsMemRecv(t, ws, op)
		untilTraitSegmentLive(t, s, tok, recv)

		// The person: two profiles merged, an event, an interaction, consent.
		x, _ := identify(t, s, tok, ids("anonymousId", "erase-anon-1"), map[string]any{"firstName": "Erinyes", "plan": "pro"})
		if m, ok := recv(5 * time.Second); !ok || m.Kind != "ENTERED" || m.profileID() != x.ID {
			t.Fatalf("person: %+v %v", m, ok)
		}
		y, _ := identify(t, s, tok, ids("email", "Erin.Erased@Example.com"), nil)
		if p, merged := identify(t, s, tok, ids("anonymousId", "erase-anon-1", "email", "erin.erased@example.com"), nil); p.ID != x.ID || len(merged) != 1 || merged[0] != y.ID {
			t.Fatalf("merge: %s %v", p.ID, merged)
		}
		track(t, s, tok, "erase-ev-0", ids("email", "erin.erased@example.com"), "order_completed", time.Now())
		s.gql(t, tok, `mutation($id: ID!) { logInteraction(input: {profileId: $id, kind: CALL, subject: "Erinyes called"}) { id } }`, map[string]any{"id": y.ID}).requireOK(t)
		setConsent(t, s, tok, "erin.erased@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED", "proof": map[string]any{"ip": "203.0.113.77"}})

		readOnly := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite)
		s.gql(t, readOnly, `query($id: ID!) { exportProfileData(profileId: $id) }`, map[string]any{"id": x.ID}).requireError(t, 200, "FORBIDDEN")
		s.gql(t, readOnly, `mutation($id: ID!) { eraseProfile(profileId: $id) { id } }`, map[string]any{"id": x.ID}).requireError(t, 200, "FORBIDDEN")
		s.gql(t, readOnly, `mutation { liftSuppression(identifier: {type: "email", value: "a@example.com"}) }`, nil).requireError(t, 200, "FORBIDDEN")

		r := s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id, reason: "customer request") { `+receiptFields+` } }`, map[string]any{"id": x.ID})
		r.requireOK(t)
		var er struct{ EraseProfile gqlReceipt }
		r.decode(t, &er)
		rc := er.EraseProfile
		if rc.ID == "" || rc.ProfileID != x.ID || len(rc.ErasedProfileIds) != 2 || rc.ErasedProfileIds[1] != y.ID || rc.TimelineItems != 2 || rc.Identifiers != 2 || rc.SuppressedIdentifiers != 2 ||
			rc.Memberships != 1 || rc.ConsentRecords != 1 || rc.Reason == nil || *rc.Reason != "customer request" || rc.ErasedAt.IsZero() {
			t.Fatalf("receipt %s", r.Data)
		}

		// The subscriber sees the person leave; the profile is gone (null).
		m, ok := recv(5 * time.Second)
		if !ok || m.Kind != "EXITED" || m.Cause != "erasure" || m.Segment.ID != pros.ID || m.Profile != nil {
			t.Fatalf("EXITED: %+v %v", m, ok)
		}

		r = s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { event { id } } }`, map[string]any{"in": map[string]any{
			"messageId": "after-1", "identifiers": ids("email", "ERIN.ERASED@example.com"), "name": "page_viewed"}})
		r.requireError(t, 200, "SUPPRESSED")
		if strings.Contains(strings.ToLower(string(r.Body)), "erin.erased") {
			t.Fatalf("the refusal echoes the identifier: %s", r.Body)
		}

		r = s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id) { `+receiptFields+` } }`, map[string]any{"id": x.ID})
		r.requireOK(t)
		var again struct{ EraseProfile gqlReceipt }
		r.decode(t, &again)
		if again.EraseProfile.ID != rc.ID || again.EraseProfile.TimelineItems != 2 {
			t.Fatalf("repeat: %s", r.Data)
		}

		lift := func(value string) bool {
			r := s.gql(t, tok, `mutation($v: String!) { liftSuppression(identifier: {type: "email", value: $v}) }`, map[string]any{"v": value})
			r.requireOK(t)
			var out struct{ LiftSuppression bool }
			r.decode(t, &out)
			return out.LiftSuppression
		}
		if !lift(" Erin.Erased@EXAMPLE.com") || lift("erin.erased@example.com") {
			t.Fatal("lift: want true, then false")
		}
		if back, _ := track(t, s, tok, "after-2", ids("email", "erin.erased@example.com"), "page_viewed", time.Now()); back == "" || back == x.ID || back == y.ID {
			t.Fatalf("back as %q", back)
		}
	})
}

// The export document is plain JSON: a 10,000-event person is covered by
// the privacy package's tests; here the JSON shape is checked end to end
// on the embedded store for a profile with nested traits.
func TestE2EPrivacyExportIsJSON(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	p, _ := identify(t, s, tok, ids("userId", "u-1"), map[string]any{"address": map[string]any{"city": "Lisbon"}, "tags": []any{"a", "b"}})
	r := s.gql(t, tok, `query($id: ID!) { exportProfileData(profileId: $id) }`, map[string]any{"id": p.ID})
	r.requireOK(t)
	var out struct{ ExportProfileData map[string]json.RawMessage }
	r.decode(t, &out)
	for _, k := range []string{"profile", "traits", "identifiers", "events", "interactions", "consentLog", "memberships", "membershipHistory", "merges", "exportedAt", "counts"} {
		if _, ok := out.ExportProfileData[k]; !ok {
			t.Errorf("export lacks %s", k)
		}
	}
	var traits map[string]any
	if err := json.Unmarshal(out.ExportProfileData["traits"], &traits); err != nil || traits["address"].(map[string]any)["city"] != "Lisbon" {
		t.Fatalf("traits %s: %v", out.ExportProfileData["traits"], err)
	}
}
