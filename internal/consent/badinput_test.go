package consent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Every refused call names the code and the field the API reports, and
// nothing of it is stored: bob is never created, ana's log keeps one
// record.
func TestConsentBadInput(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env := apptest.New(t, start)
	cs := env.Services.Consent
	ctx, tn, other := env.Ctx, env.Tenant, env.Store.Tenant("ws2")
	st := set(t, env, consent.Subject{Identifier: email("ana@example.com")}, consent.Choice{Purpose: "marketing", Status: "GRANTED"})
	ana := st.ProfileID
	seg := segmentOn(t, env, "all", rule.Rule{Profile: &rule.ProfileCond{Field: rule.EventCount, Op: rule.GTE, Value: 0}})
	bob := email("bob@example.com")
	future, past := start.Add(72*time.Hour), start.Add(-72*time.Hour)
	expired := start.Add(-time.Hour)
	nope := "nope"

	setOne := func(who consent.Subject, c consent.Choice) func() error {
		return func() error {
			_, err := cs.Set(ctx, tn, "input", who, "", []consent.Choice{c}, "test")
			return err
		}
	}
	setMany := func(choices ...consent.Choice) func() error {
		return func() error {
			_, err := cs.Set(ctx, tn, "input", consent.Subject{Identifier: bob}, "input.choices", choices, "test")
			return err
		}
	}
	grant := consent.Choice{Purpose: "marketing", Status: "GRANTED"}
	with := func(f func(*consent.Choice)) consent.Choice { c := grant; f(&c); return c }
	export := func(ws store.Tenant, f func(*consent.ExportInput)) func() error {
		return func() error {
			e := consent.ExportInput{SegmentID: seg.ID, Purpose: "marketing", Channel: "EMAIL", First: consent.DefaultExportSize}
			f(&e)
			_, err := cs.Export(ctx, ws, e)
			return err
		}
	}
	byBob := consent.Subject{Identifier: bob}
	for _, c := range []struct {
		name  string
		call  func() error
		code  apperr.Code
		field string
	}{
		{"no person", setOne(consent.Subject{}, grant), apperr.BadUserInput, "input"},
		{"both persons", setOne(consent.Subject{ProfileID: &ana, Identifier: bob}, grant), apperr.BadUserInput, "input"},
		{"unknown purpose", setOne(byBob, with(func(c *consent.Choice) { c.Purpose = "spam" })), apperr.BadUserInput, "input.purpose"},
		{"expires before captured", setOne(byBob, with(func(c *consent.Choice) { c.CapturedAt, c.ExpiresAt = &past, &past })), apperr.BadUserInput, "input.expiresAt"},
		{"already expired", setOne(byBob, with(func(c *consent.Choice) { c.CapturedAt, c.ExpiresAt = &past, &expired })), apperr.BadUserInput, "input.expiresAt"},
		{"captured in the future", setOne(byBob, with(func(c *consent.Choice) { c.CapturedAt = &future })), apperr.BadUserInput, "input.capturedAt"},
		{"long source", setOne(byBob, with(func(c *consent.Choice) { c.Source = strings.Repeat("x", 201) })), apperr.BadUserInput, "input.source"},
		{"proof not an object", setOne(byBob, with(func(c *consent.Choice) { c.Proof = []any{1} })), apperr.BadUserInput, "input.proof"},
		{"proof injection", setOne(byBob, with(func(c *consent.Choice) { c.Proof = map[string]any{"$where": 1} })), apperr.BadUserInput, "input.proof"},
		{"unknown profile", setOne(consent.Subject{ProfileID: &nope}, grant), apperr.NotFound, ""},
		{"other workspace's profile", func() error {
			_, err := cs.Set(ctx, other, "input", consent.Subject{ProfileID: &ana}, "", []consent.Choice{grant}, "test")
			return err
		}, apperr.NotFound, ""},
		{"batch: second choice bad", setMany(grant, with(func(c *consent.Choice) { c.Purpose = "nope" })), apperr.BadUserInput, "input.choices[1].purpose"},
		{"batch: empty", setMany(), apperr.BadUserInput, "input.choices"},
		{"identify: bad consent", func() error {
			_, err := env.Services.Ingest.Identify(ctx, tn, ingest.Caller{Subject: "test", ConsentWrite: true}, ingest.IdentifyInput{
				Identifiers: []identity.Identifier{*bob}, Consent: []consent.Choice{{Purpose: "nope", Status: "GRANTED"}},
			})
			return err
		}, apperr.BadUserInput, "input.consent[0].purpose"},
		{"track: bad consent", func() error {
			_, err := env.Services.Ingest.Track(ctx, tn, ingest.Caller{Subject: "test", ConsentWrite: true}, "input", []ingest.TrackInput{{
				TrackInput: timeline.TrackInput{MessageID: "m-bad", Identifiers: []identity.Identifier{*bob}, Name: "x"},
				Consent:    []consent.Choice{with(func(c *consent.Choice) { c.Source = strings.Repeat("x", 300) })},
			}})
			return err
		}, apperr.BadUserInput, "input.consent[0].source"},
		{"define: bad key", func() error {
			_, err := cs.DefinePurpose(ctx, tn, consent.PurposeInput{Key: "Bad Key"})
			return err
		}, apperr.BadUserInput, "input.key"},
		{"define: built-in", func() error {
			_, err := cs.DefinePurpose(ctx, tn, consent.PurposeInput{Key: "marketing", LawfulBasis: consent.BasisContract})
			return err
		}, apperr.BadUserInput, "input.key"},
		{"canContact: unknown purpose", func() error {
			_, err := cs.CanContact(ctx, tn, env.Profile(t, ana), "nope", "EMAIL")
			return err
		}, apperr.BadUserInput, "purpose"},
		{"history: bad cursor", func() error {
			_, _, _, err := cs.History(ctx, tn, ana, 10, "x")
			return err
		}, apperr.BadUserInput, "after"},
		{"export: unknown segment", export(tn, func(in *consent.ExportInput) { in.SegmentID = "nope" }), apperr.NotFound, ""},
		{"export: unknown purpose", export(tn, func(in *consent.ExportInput) { in.Purpose = "nope" }), apperr.BadUserInput, "purpose"},
		{"export: first 0", export(tn, func(in *consent.ExportInput) { in.First = 0 }), apperr.BadUserInput, "first"},
		{"export: first 1001", export(tn, func(in *consent.ExportInput) { in.First = 1001 }), apperr.BadUserInput, "first"},
		{"export: bad cursor", export(tn, func(in *consent.ExportInput) { in.After = "x" }), apperr.BadUserInput, "after"},
		{"export: other workspace", export(other, func(*consent.ExportInput) {}), apperr.NotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("want %s, got %v", c.code, err)
			}
			if e.Code != c.code {
				t.Fatalf("code %s, want %s: %v", e.Code, c.code, err)
			}
			if c.field != "" && e.Field != c.field {
				t.Fatalf("field %q, want %q: %v", e.Field, c.field, err)
			}
		})
	}
	if found, err := identity.FindEach(ctx, tn, []identity.Identifier{*bob}, func(int) string { return "identifier" }); err != nil || found[0] != "" {
		t.Fatalf("a refused call created bob: %v %v", found, err)
	}
	if recs, err := consent.Log(ctx, tn, ana); err != nil || len(recs) != 1 {
		t.Fatalf("ana's log: %+v %v", recs, err)
	}
}
