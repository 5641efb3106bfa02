package privacy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy/privacytest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// The person is written the way the API writes (identify, track,
// trackBatch, logInteraction, setConsent): the export by a merged-away id
// holds every item; the erasure's receipt counts them, its subscribers
// are told the person left (under the pseudonym), nothing of the person
// is left in any collection but the anonymised consent entries, a
// bystander is untouched, later ingest with any identifier is refused
// without echoing it and stores nothing, a repeat returns the same
// receipt, and a lifted identifier comes back as a new person.
func TestPrivacyExportEraseSuppress(t *testing.T) {
	e := newEnv(t)
	ctx, tn := e.Ctx, e.Tenant
	out := &apptest.Recorder{}
	e.Services.Publish(out)
	caller := ingest.Caller{Subject: "tester", ConsentWrite: true}
	identify := func(ids []identity.Identifier, traits map[string]any) (identity.Result, error) {
		return e.Services.Ingest.Identify(ctx, tn, caller, ingest.IdentifyInput{Identifiers: ids, Traits: traits})
	}
	mustIdentify := func(ids []identity.Identifier, traits map[string]any) identity.Result {
		t.Helper()
		res, err := identify(ids, traits)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	track := func(field string, in ...timeline.TrackInput) ([]timeline.TrackResult, error) {
		return e.Services.Ingest.TrackEvents(ctx, tn, "tester", field, in)
	}

	pros, err := e.Services.Segments.Create(ctx, tn, segment.CreateInput{Name: "pros", Rule: &rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	vip, err := e.Services.Segments.Create(ctx, tn, segment.CreateInput{Name: "vip", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}

	by := mustIdentify(ids("email", "by@example.com"), map[string]any{"plan": "pro"}).Profile.ID
	if _, err := track("input", timeline.TrackInput{MessageID: "by-1", Identifiers: ids("email", "by@example.com"), Name: "page_viewed"}); err != nil {
		t.Fatal(err)
	}

	// The person: two profiles merged, events, interactions, consent,
	// two memberships, a link to their company's account (made by the
	// email's domain on the profile merged away, then moved).
	company, err := e.Services.Accounts.Create(ctx, tn, account.CreateInput{Name: "Example Co", Domains: []string{"example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	x := mustIdentify(ids("anonymousId", "erase-anon-1"), map[string]any{"firstName": "Erinyes", "plan": "pro"}).Profile.ID
	e.Clock.Set(e.Clock.Now().Add(time.Second))
	y := mustIdentify(ids("email", "Erin.Erased@Example.com"), nil).Profile.ID
	if res := mustIdentify(ids("anonymousId", "erase-anon-1", "email", "erin.erased@example.com"), nil); res.Profile.ID != x || !slices.Equal(res.Merged, []string{y}) {
		t.Fatalf("merge: %s %v", res.Profile.ID, res.Merged)
	}
	now := e.Clock.Now()
	var messageIDs []string
	for i := range 3 {
		at := now.Add(-time.Duration(i) * time.Minute)
		id := fmt.Sprintf("erase-ev-%d", i)
		messageIDs = append(messageIDs, id)
		if _, err := track("input", timeline.TrackInput{MessageID: id, Identifiers: ids("email", "erin.erased@example.com"), Name: "order_completed",
			OccurredAt: &at, Properties: map[string]any{"sku": "sku-erase-42"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := track("inputs",
		timeline.TrackInput{MessageID: "erase-ev-3", Identifiers: ids("anonymousId", "erase-anon-1"), Name: "page_viewed"},
		timeline.TrackInput{MessageID: "erase-ev-4", Identifiers: ids("anonymousId", "erase-anon-1"), Name: "page_viewed"},
	); err != nil {
		t.Fatal(err)
	}
	messageIDs = append(messageIDs, "erase-ev-3", "erase-ev-4")
	for _, subj := range []string{"Erinyes called", "Renewal for Erinyes"} {
		// The merged-away id follows the merge.
		if _, err := e.Services.Ingest.LogInteraction(ctx, tn, timeline.InteractionInput{ProfileID: y, Kind: "CALL", Subject: subj}); err != nil {
			t.Fatal(err)
		}
	}
	// A deal with the person (and another) as contacts.
	contract, err := e.Services.Deals.Create(ctx, tn, deal.CreateInput{Name: "Example Co renewal", Currency: "EUR", Amount: 500,
		AccountID: company.ID, ContactIDs: []string{x, by}})
	if err != nil {
		t.Fatal(err)
	}
	// A task about the person (theirs: erased with them) and one about
	// the company (kept).
	if _, err := e.Services.Tasks.Create(ctx, tn, task.CreateInput{Subject: "Call Erinyes about the renewal", ProfileID: x}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Services.Tasks.Create(ctx, tn, task.CreateInput{Subject: "Renewal terms", AccountID: company.ID}); err != nil {
		t.Fatal(err)
	}
	// A lifecycle stage, by hand, on the merged-away profile (its history
	// stays under it).
	if _, err := e.Services.Lifecycle.Set(ctx, tn, x, profile.Lead, "tester"); err != nil {
		t.Fatal(err)
	}
	// A ticket with the person's words and an agent's answer quoting them.
	tk, err := e.Services.Tickets.Open(ctx, tn, ticket.OpenInput{ProfileID: y, Subject: "Erinyes cannot log in", Body: "Write to erin.erased@example.com", Priority: ticket.High})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []ticket.CommentInput{
		{TicketID: tk.ID, Body: "Dear Erinyes, we reset it", Author: "agent"},
		{TicketID: tk.ID, Body: "Erinyes' card is on file", Author: "agent", Internal: true},
		{TicketID: tk.ID, Body: "Thanks! Erinyes", ByCustomer: true},
	} {
		if _, _, err := e.Services.Tickets.AddComment(ctx, tn, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Services.Segments.AddStatic(ctx, tn, vip.ID, []string{x}); err != nil {
		t.Fatal(err)
	}
	// By profile id and by identifier; the proof holds an IP, personal
	// data that erasure must not keep.
	proof := map[string]any{"ip": "203.0.113.77"}
	for _, c := range []struct {
		who     consent.Subject
		purpose string
	}{
		{consent.Subject{ProfileID: &x}, "marketing"},
		{consent.Subject{Identifier: &identity.Identifier{Type: "email", Value: "erin.erased@example.com"}}, "analytics"},
	} {
		if _, err := e.Services.Consent.Set(ctx, tn, "input", c.who, "", []consent.Choice{{Purpose: c.purpose, Channel: "EMAIL", Status: "GRANTED", Source: "web-form", Proof: proof}}, "tester"); err != nil {
			t.Fatal(err)
		}
	}

	ex, err := e.svc().Export(ctx, tn, y)
	if err != nil {
		t.Fatal(err)
	}
	exportedAt, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ex["exportedAt"]))
	if ex["profileId"] != x || !slices.Equal(ex["mergedProfileIds"].([]string), []string{y}) || ex["traits"].(map[string]any)["firstName"] != "Erinyes" || exportedAt.IsZero() {
		t.Fatalf("export header: profileId %v mergedProfileIds %v traits %v exportedAt %v", ex["profileId"], ex["mergedProfileIds"], ex["traits"], ex["exportedAt"])
	}
	list := func(key string) []any { return ex[key].([]any) }
	var gotMsgs []string
	for _, ev := range list("events") {
		doc := ev.(map[string]any)
		gotMsgs = append(gotMsgs, doc["messageId"].(string))
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(doc["occurredAt"])); err != nil {
			t.Fatalf("occurredAt %v: %v", doc["occurredAt"], err)
		}
	}
	for _, m := range messageIDs {
		if !slices.Contains(gotMsgs, m) {
			t.Fatalf("export events %v lack %s", gotMsgs, m)
		}
	}
	// Interactions: the two calls, and the CRM's items on the person's
	// timeline (the deal created, the task created, the ticket opened and
	// its three comments).
	if len(list("events")) != 5 || len(list("interactions")) != 8 || len(list("consentLog")) != 2 || len(list("identifiers")) != 2 || len(list("memberships")) != 2 || len(list("merges")) == 0 {
		t.Fatalf("export: %d events, %d interactions, %d consent, %d identifiers, %d memberships, %d merges",
			len(list("events")), len(list("interactions")), len(list("consentLog")), len(list("identifiers")), len(list("memberships")), len(list("merges")))
	}
	if links, _ := ex["accounts"].([]account.Exported); len(links) != 1 || links[0].AccountName != "Example Co" {
		t.Fatalf("export accounts: %#v", ex["accounts"])
	}
	if deals, _ := ex["deals"].([]deal.ExportedDeal); len(deals) != 1 || deals[0].DealID != contract.ID {
		t.Fatalf("export deals: %#v", ex["deals"])
	}
	if tasks, _ := ex["tasks"].([]task.Exported); len(tasks) != 1 || !strings.Contains(tasks[0].Subject, "Erinyes") {
		t.Fatalf("export tasks: %#v", ex["tasks"])
	}
	if tickets, _ := ex["tickets"].([]ticket.Exported); len(tickets) != 1 || tickets[0].TicketID != tk.ID || len(tickets[0].Comments) != 2 {
		t.Fatalf("export tickets (public comments only): %#v", ex["tickets"])
	}
	// The orders tracked above made a customer first.
	if h, _ := ex["lifecycleHistory"].([]map[string]any); len(h) != 2 || h[0]["cause"] != lifecycle.CauseOrder || h[1]["to"] != profile.Lead || ex["lifecycleStage"] != profile.Lead {
		t.Fatalf("export lifecycle: %v %#v", ex["lifecycleStage"], ex["lifecycleHistory"])
	}
	if counts := ex["counts"].(map[string]any); counts["events"] != 5 || counts["interactions"] != 8 || counts["consentLog"] != 2 {
		t.Fatalf("export counts %v", counts)
	}
	if list("consentLog")[0].(map[string]any)["proof"] == nil {
		t.Fatalf("export consent entry without its proof: %v", list("consentLog")[0])
	}

	rc, err := e.svc().Erase(ctx, tn, x, "customer request", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if rc.ProfileID != x || len(rc.ErasedProfileIDs) != 2 || rc.TimelineItems != 13 || rc.Identifiers != 2 || rc.SuppressedIdentifiers != 2 ||
		rc.Memberships != 2 || rc.ConsentRecords != 2 || rc.Reason != "customer request" || rc.ErasedAt.IsZero() {
		t.Fatalf("receipt %+v", rc)
	}

	// Subscribers see the person leave, under the pseudonym.
	var exits []realtime.Change
	for _, c := range out.Changes() {
		if c.Kind == realtime.MembershipChanged && c.SegmentID == pros.ID && c.Payload[realtime.PayloadKind] == segment.Exited {
			exits = append(exits, c)
		}
	}
	if len(exits) != 1 || exits[0].Payload[realtime.PayloadCause] != segment.CauseErasure || !strings.HasPrefix(exits[0].ProfileID, "erased-") {
		t.Fatalf("EXITED: %+v", exits)
	}

	hits, read, err := privacytest.Leftovers(ctx, e.Store, tn.Workspace(), append([]string{x, y}, needles...))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 || read < 20 {
		t.Fatalf("after erasure (%d documents of %d collections read):\n%s", read, len(app.Collections), strings.Join(hits, "\n"))
	}
	// The ticket stays for service reports, without the person.
	if got, err := e.Services.Tickets.Get(ctx, tn, tk.ID); err != nil || got.ProfileID != "" || got.Subject != ticket.ErasedSubject || got.Priority != ticket.High || got.FirstResponseAt.IsZero() {
		t.Fatalf("the ticket after the erasure: %+v %v", got, err)
	}
	// The company's task stays.
	if n, err := e.Services.Tasks.Count(ctx, tn, task.Filter{}); err != nil || n != 1 {
		t.Fatalf("tasks after the erasure: %d, %v (the company's one stays)", n, err)
	}
	// The deal stays, with its amount and its other contact.
	if d, err := e.Services.Deals.Deal(ctx, tn, contract.ID); err != nil || d.Amount != 50000 || len(d.ContactIDs) != 1 || d.ContactIDs[0] != by {
		t.Fatalf("the deal after the erasure: %+v %v", d, err)
	}
	// The account stays, with the other person at its domain.
	if n, err := e.Services.Accounts.CountContacts(ctx, tn, company.ID); err != nil || n != 1 {
		t.Fatalf("the account's contacts after the erasure: %d, %v", n, err)
	}
	if n := e.Count(t, consent.ConsentLog, consent.ConsentByProfile); n != 2 {
		t.Fatalf("anonymised consent entries kept: %d", n)
	}
	// The bystander keeps their event and the deal's item.
	if bp := e.Profile(t, by); bp.EventCount != 2 {
		t.Fatalf("bystander: %+v", bp)
	}

	// Later ingest with an identifier is refused and stores nothing.
	events := e.Count(t, timeline.Events, timeline.EventsByProfileTime)
	profiles := e.Count(t, profile.Profiles, profile.ProfilesByCreated)
	identities := e.Count(t, identity.Identities, identity.IdentitiesByValueAny)
	refused := []func() error{
		func() error {
			_, err := track("input", timeline.TrackInput{MessageID: "after-1", Identifiers: ids("email", "ERIN.ERASED@example.com"), Name: "page_viewed"})
			return err
		},
		func() error {
			// A fresh person first: the whole batch is refused before any
			// of it is written, so no profile or identity appears for them.
			_, err := track("inputs",
				timeline.TrackInput{MessageID: "after-2", Identifiers: ids("email", "fresh-in-batch@example.com"), Name: "page_viewed"},
				timeline.TrackInput{MessageID: "after-3", Identifiers: ids("anonymousId", "erase-anon-1"), Name: "page_viewed"},
			)
			return err
		},
		func() error {
			_, err := identify(ids("anonymousId", "fresh-device", "email", "erin.erased@example.com"), nil)
			return err
		},
	}
	for i, call := range refused {
		err := call()
		wantCode(t, err, apperr.Suppressed)
		if strings.Contains(err.Error(), "erin.erased") || strings.Contains(err.Error(), "erase-anon-1") {
			t.Fatalf("refusal %d echoes the identifier: %v", i, err)
		}
	}
	if n := e.Count(t, timeline.Events, timeline.EventsByProfileTime); n != events {
		t.Fatalf("events %d after refused calls, want %d", n, events)
	}
	if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != profiles {
		t.Fatalf("profiles %d after refused calls, want %d", n, profiles)
	}
	if n := e.Count(t, identity.Identities, identity.IdentitiesByValueAny); n != identities {
		t.Fatalf("identities %d after refused calls, want %d", n, identities)
	}

	again, err := e.svc().Erase(ctx, tn, x, "", "tester")
	if err != nil || again.ID != rc.ID || again.TimelineItems != 13 {
		t.Fatalf("repeat: %+v %v", again, err)
	}

	// The person comes back and asks to be known again, by email.
	lift := func(value string) bool {
		t.Helper()
		ok, err := e.svc().LiftSuppression(ctx, tn, identity.Identifier{Type: "email", Value: value})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lift(" Erin.Erased@EXAMPLE.com") || lift("erin.erased@example.com") {
		t.Fatal("lift: want true, then false")
	}
	res, err := track("input", timeline.TrackInput{MessageID: "after-4", Identifiers: ids("email", "erin.erased@example.com"), Name: "page_viewed"})
	if err != nil || res[0].Profile.ID == x || res[0].Profile.ID == y {
		t.Fatalf("back: %v", err)
	}
	_, err = track("input", timeline.TrackInput{MessageID: "after-5", Identifiers: ids("anonymousId", "erase-anon-1"), Name: "page_viewed"})
	wantCode(t, err, apperr.Suppressed)
}
