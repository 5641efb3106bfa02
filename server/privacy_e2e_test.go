package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/privacy/privacytest"
	"github.com/halo-cdp/halo/store"

	// E2E tests of the data-subject requests (exportProfileData, eraseProfile,
	// liftSuppression): the export round-trips what is stored; after erasure no
	// document of any declared collection holds the person's profile ids or
	// identifier values; segment subscribers see EXITED; later ingest with an
	// identifier is refused (SUPPRESSED) and stores nothing until lifted.
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
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

func TestE2EPrivacyExportEraseSuppress(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		st := secondStore(t, s)
		tn := st.Tenant("acme")
		ctx := context.Background()

		pros := createSegment(t, s, tok, map[string]any{"name": "pros", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}})
		vip := createSegment(t, s, tok, map[string]any{"name": "vip", "kind": "STATIC"})
		ws := connectWS(t, s, tok)
		op := ws.subscribe(t, membershipSub, map[string]any{"s": pros.ID})
		recv := wsMemRecv(t, ws, op)
		untilTraitSegmentLive(t, s, tok, recv)

		// A bystander who must come through untouched.
		by, _ := identify(t, s, tok, ids("email", "by@example.com"), map[string]any{"plan": "pro"})
		track(t, s, tok, "by-1", ids("email", "by@example.com"), "page_viewed", time.Now())
		if m, ok := recv(5 * time.Second); !ok || m.Kind != "ENTERED" || m.profileID() != by.ID {
			t.Fatalf("bystander: %+v %v", m, ok)
		}

		// The person: two profiles merged, events, interactions, consent,
		// two memberships.
		x, _ := identify(t, s, tok, ids("anonymousId", "erase-anon-1"), map[string]any{"firstName": "Erinyes", "plan": "pro"})
		if m, ok := recv(5 * time.Second); !ok || m.Kind != "ENTERED" || m.profileID() != x.ID {
			t.Fatalf("person: %+v %v", m, ok)
		}
		y, _ := identify(t, s, tok, ids("email", "Erin.Erased@Example.com"), nil)
		if p, merged := identify(t, s, tok, ids("anonymousId", "erase-anon-1", "email", "erin.erased@example.com"), nil); p.ID != x.ID || len(merged) != 1 || merged[0] != y.ID {
			t.Fatalf("merge: %s %v", p.ID, merged)
		}
		now := time.Now().UTC()
		var messageIDs []string
		for i := range 3 {
			id := fmt.Sprintf("erase-ev-%d", i)
			messageIDs = append(messageIDs, id)
			s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { event { id } } }`, map[string]any{"in": map[string]any{
				"messageId": id, "identifiers": ids("email", "erin.erased@example.com"), "name": "order_completed",
				"occurredAt": now.Add(-time.Duration(i) * time.Minute).Format(time.RFC3339Nano), "properties": map[string]any{"sku": "sku-erase-42"},
			}}).requireOK(t)
		}
		s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": []any{
			map[string]any{"messageId": "erase-ev-3", "identifiers": ids("anonymousId", "erase-anon-1"), "name": "page_viewed"},
			map[string]any{"messageId": "erase-ev-4", "identifiers": ids("anonymousId", "erase-anon-1"), "name": "page_viewed"},
		}}).requireOK(t)
		messageIDs = append(messageIDs, "erase-ev-3", "erase-ev-4")
		for _, subj := range []string{"Erinyes called", "Renewal for Erinyes"} {
			s.gql(t, tok, `mutation($id: ID!, $s: String) { logInteraction(input: {profileId: $id, kind: CALL, subject: $s}) { id } }`,
				map[string]any{"id": y.ID, "s": subj}).requireOK(t) // the merged-away id follows the merge
		}
		s.gql(t, tok, `mutation($s: ID!, $p: [ID!]) { addToStaticSegment(segmentId: $s, profileIds: $p) { id } }`, map[string]any{"s": vip.ID, "p": []string{x.ID}}).requireOK(t)
		// Consent through the API, by profile id and by identifier (the
		// proof holds an IP, personal data that erasure must not keep).
		for _, in := range []map[string]any{
			{"profileId": x.ID, "purpose": "marketing", "channel": "EMAIL", "status": "GRANTED", "source": "web-form", "proof": map[string]any{"ip": "203.0.113.77"}},
			{"identifier": map[string]any{"type": "email", "value": "erin.erased@example.com"}, "purpose": "analytics", "channel": "EMAIL", "status": "GRANTED", "source": "web-form", "proof": map[string]any{"ip": "203.0.113.77"}},
		} {
			s.gql(t, tok, `mutation($in: SetConsentInput!) { setConsent(input: $in) { status } }`, map[string]any{"in": in}).requireOK(t)
		}

		// Scope and bad input.
		readOnly := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeProfilesWrite, auth.ScopeEventsWrite)
		s.gql(t, readOnly, `query($id: ID!) { exportProfileData(profileId: $id) }`, map[string]any{"id": x.ID}).requireError(t, 200, "FORBIDDEN")
		s.gql(t, readOnly, `mutation($id: ID!) { eraseProfile(profileId: $id) { id } }`, map[string]any{"id": x.ID}).requireError(t, 200, "FORBIDDEN")
		s.gql(t, readOnly, `mutation { liftSuppression(identifier: {type: "email", value: "a@example.com"}) }`, nil).requireError(t, 200, "FORBIDDEN")
		s.gql(t, tok, `query { exportProfileData(profileId: "nope") }`, nil).requireError(t, 200, "NOT_FOUND")
		s.gql(t, tok, `mutation { eraseProfile(profileId: "nope") { id } }`, nil).requireError(t, 200, "NOT_FOUND")
		s.gql(t, tok, `mutation($id: ID!, $r: String) { eraseProfile(profileId: $id, reason: $r) { id } }`, map[string]any{"id": x.ID, "r": strings.Repeat("r", 501)}).requireError(t, 200, "BAD_USER_INPUT")
		s.gql(t, tok, `mutation { liftSuppression(identifier: {type: "nope", value: "x"}) }`, nil).requireError(t, 200, "BAD_USER_INPUT")
		s.gql(t, tok, `mutation { liftSuppression(identifier: {type: "email", value: "not an email"}) }`, nil).requireError(t, 200, "BAD_USER_INPUT")

		// Export round-trips every stored item (asked by the merged-away id).
		r := s.gql(t, tok, `query($id: ID!) { exportProfileData(profileId: $id) }`, map[string]any{"id": y.ID})
		r.requireOK(t)
		var exp struct {
			ExportProfileData struct {
				ProfileID        string           `json:"profileId"`
				MergedProfileIds []string         `json:"mergedProfileIds"`
				ExportedAt       time.Time        `json:"exportedAt"`
				Traits           map[string]any   `json:"traits"`
				Identifiers      []gqlIdentifier  `json:"identifiers"`
				Events           []map[string]any `json:"events"`
				Interactions     []map[string]any `json:"interactions"`
				ConsentLog       []map[string]any `json:"consentLog"`
				Memberships      []map[string]any `json:"memberships"`
				Merges           []map[string]any `json:"merges"`
				Counts           map[string]int   `json:"counts"`
			} `json:"exportProfileData"`
		}
		r.decode(t, &exp)
		ex := exp.ExportProfileData
		if ex.ProfileID != x.ID || len(ex.MergedProfileIds) != 1 || ex.MergedProfileIds[0] != y.ID || ex.Traits["firstName"] != "Erinyes" || ex.ExportedAt.IsZero() {
			t.Fatalf("export header: %s", r.Data)
		}
		var gotMsgs []string
		for _, ev := range ex.Events {
			gotMsgs = append(gotMsgs, ev["messageId"].(string))
			if _, err := time.Parse(time.RFC3339Nano, ev["occurredAt"].(string)); err != nil {
				t.Fatalf("occurredAt %v: %v", ev["occurredAt"], err)
			}
		}
		for _, m := range messageIDs {
			if !strings.Contains(strings.Join(gotMsgs, ","), m) {
				t.Fatalf("export events %v lack %s", gotMsgs, m)
			}
		}
		if len(ex.Events) != 5 || len(ex.Interactions) != 2 || len(ex.ConsentLog) != 2 || len(ex.Identifiers) != 2 || len(ex.Memberships) != 2 || len(ex.Merges) == 0 {
			t.Fatalf("export: %d events, %d interactions, %d consent, %d identifiers, %d memberships, %d merges",
				len(ex.Events), len(ex.Interactions), len(ex.ConsentLog), len(ex.Identifiers), len(ex.Memberships), len(ex.Merges))
		}
		if ex.Counts["events"] != 5 || ex.Counts["interactions"] != 2 || ex.Counts["consentLog"] != 2 {
			t.Fatalf("export counts %v", ex.Counts)
		}
		if ex.ConsentLog[0]["proof"] == nil {
			t.Fatalf("export consent entry without its proof: %v", ex.ConsentLog[0])
		}

		// Erase.
		r = s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id, reason: "customer request") { `+receiptFields+` } }`, map[string]any{"id": x.ID})
		r.requireOK(t)
		var er struct{ EraseProfile gqlReceipt }
		r.decode(t, &er)
		rc := er.EraseProfile
		if rc.ProfileID != x.ID || len(rc.ErasedProfileIds) != 2 || rc.TimelineItems != 7 || rc.Identifiers != 2 || rc.SuppressedIdentifiers != 2 ||
			rc.Memberships != 2 || rc.ConsentRecords != 2 || rc.Reason == nil || *rc.Reason != "customer request" || rc.ErasedAt.IsZero() {
			t.Fatalf("receipt %s", r.Data)
		}

		// The subscriber sees the person leave; the profile is gone (null).
		m, ok := recv(5 * time.Second)
		if !ok || m.Kind != "EXITED" || m.Cause != "erasure" || m.Segment.ID != pros.ID || m.Profile != nil {
			t.Fatalf("EXITED: %+v %v", m, ok)
		}

		// Nothing of the person is left in any collection.
		needles := []string{x.ID, y.ID, "erase-anon-1", "erin.erased@example.com", "Erin.Erased@Example.com", "Erinyes", "erinyes", "203.0.113.77", "sku-erase-42"}
		hits, read, err := privacytest.Leftovers(ctx, st, "acme", needles)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) > 0 || read < 20 {
			t.Fatalf("after erasure (%d documents of %d collections read):\n%s", read, len(app.Collections), strings.Join(hits, "\n"))
		}
		if n, _ := tn.C(consent.ConsentLog).Count(ctx, store.Query{Index: consent.ConsentByProfile}); n != 2 {
			t.Fatalf("anonymised consent entries kept: %d", n)
		}
		if p := getProfile(t, s, tok, map[string]any{"id": by.ID}); p == nil || p.EventCount != 1 {
			t.Fatalf("bystander: %+v", p)
		}

		// Later ingest with an identifier is refused and stores nothing.
		events, _ := tn.C(timeline.Events).Count(ctx, store.Query{Index: timeline.EventsByProfileTime})
		profiles, _ := tn.C(profile.Profiles).Count(ctx, store.Query{Index: profile.ProfilesByCreated})
		identities, _ := tn.C(identity.Identities).Count(ctx, store.Query{Index: identity.IdentitiesByValueAny})
		refused := []gqlResponse{
			s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { event { id } } }`, map[string]any{"in": map[string]any{
				"messageId": "after-1", "identifiers": ids("email", "ERIN.ERASED@example.com"), "name": "page_viewed"}}),
			s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": []any{
				// A fresh person first: the whole batch is refused before any
				// of it is written, so no profile or identity appears for them.
				map[string]any{"messageId": "after-2", "identifiers": ids("email", "fresh-in-batch@example.com"), "name": "page_viewed"},
				map[string]any{"messageId": "after-3", "identifiers": ids("anonymousId", "erase-anon-1"), "name": "page_viewed"},
			}}),
			s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{
				"identifiers": ids("anonymousId", "fresh-device", "email", "erin.erased@example.com")}}),
		}
		for i, r := range refused {
			r.requireError(t, 200, "SUPPRESSED")
			if strings.Contains(string(r.Body), "erin.erased") || strings.Contains(string(r.Body), "erase-anon-1") {
				t.Fatalf("refusal %d echoes the identifier: %s", i, r.Body)
			}
		}
		if n, _ := tn.C(timeline.Events).Count(ctx, store.Query{Index: timeline.EventsByProfileTime}); n != events {
			t.Fatalf("events %d after refused calls, want %d", n, events)
		}
		if n, _ := tn.C(profile.Profiles).Count(ctx, store.Query{Index: profile.ProfilesByCreated}); n != profiles {
			t.Fatalf("profiles %d after refused calls, want %d", n, profiles)
		}
		if n, _ := tn.C(identity.Identities).Count(ctx, store.Query{Index: identity.IdentitiesByValueAny}); n != identities {
			t.Fatalf("identities %d after refused calls, want %d", n, identities)
		}

		// Repeating the erasure returns the same receipt.
		r = s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id) { `+receiptFields+` } }`, map[string]any{"id": x.ID})
		r.requireOK(t)
		var again struct{ EraseProfile gqlReceipt }
		r.decode(t, &again)
		if again.EraseProfile.ID != rc.ID || again.EraseProfile.TimelineItems != 7 {
			t.Fatalf("repeat: %s", r.Data)
		}

		// The person comes back and asks to be known again, by email.
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
		back, _ := track(t, s, tok, "after-4", ids("email", "erin.erased@example.com"), "page_viewed", time.Now())
		if back == "" || back == x.ID || back == y.ID {
			t.Fatalf("back as %q", back)
		}
		s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { event { id } } }`, map[string]any{"in": map[string]any{
			"messageId": "after-5", "identifiers": ids("anonymousId", "erase-anon-1"), "name": "page_viewed"}}).requireError(t, 200, "SUPPRESSED")
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
