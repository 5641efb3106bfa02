package consent_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// TestConsentExportNeverLeaks: 1,000 profiles with random consent for
// marketing on ANY and EMAIL (some expiring), one segment holding all of
// them; Export(marketing, EMAIL) must return exactly the people allowed
// (the channel's live record, else ANY's, else no), page by page.
func TestConsentExportNeverLeaks(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)

	start := env.Clock.Now()
	statuses := []string{"GRANTED", "DENIED", "WITHDRAWN"}
	type rec struct {
		status  string
		expires time.Time // zero: never
	}
	type person struct {
		email     string
		any, mail *rec
	}
	people := make([]person, 1000)
	var inputs []ingest.TrackInput
	for i := range people {
		p := person{email: fmt.Sprintf("p%04d@example.com", i)}
		var choices []consent.Choice
		for _, ch := range []string{"ANY", "EMAIL"} {
			if rng.IntN(3) == 0 {
				continue // no record
			}
			r := &rec{status: statuses[rng.IntN(3)]}
			c := consent.Choice{Purpose: "marketing", Channel: ch, Status: r.status, Source: "import"}
			if rng.IntN(3) == 0 {
				r.expires = start.Add(time.Duration(1+rng.IntN(4)) * time.Hour) // half expire before the export
				c.ExpiresAt = &r.expires
			}
			choices = append(choices, c)
			if ch == "ANY" {
				p.any = r
			} else {
				p.mail = r
			}
		}
		people[i] = p
		inputs = append(inputs, ingest.TrackInput{TrackInput: timeline.TrackInput{
			MessageID: fmt.Sprintf("signup-%d", i), Name: "signup",
			Identifiers: []identity.Identifier{{Type: "email", Value: p.email}, {Type: "anonymousId", Value: fmt.Sprintf("anon-%d", i)}},
			Traits:      map[string]any{"firstName": fmt.Sprintf("P%d", i), "plan": "free"},
		}, Consent: choices})
	}
	for i := 0; i < len(inputs); i += 500 {
		if _, err := env.Services.Ingest.Track(env.Ctx, env.Tenant, ingest.Caller{Subject: "test", ConsentWrite: true}, "inputs", inputs[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	seg := segmentOn(t, env, "signed up", rule.Rule{Event: &rule.EventCond{Name: "signup"}})
	if n := size(t, env, seg.ID); n != 1000 {
		t.Fatalf("segment has %d members", n)
	}

	env.Clock.Set(start.Add(150 * time.Minute))
	now := env.Clock.Now()
	live := func(r *rec) bool { return r != nil && (r.expires.IsZero() || now.Before(r.expires)) }
	want := map[string]bool{}
	for _, p := range people {
		switch {
		case live(p.mail):
			want[p.email] = p.mail.status == "GRANTED"
		case live(p.any):
			want[p.email] = p.any.status == "GRANTED"
		}
	}

	got := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("export does not end")
		}
		first := 1 + rng.IntN(150)
		page, err := env.Services.Consent.Export(env.Ctx, env.Tenant, consent.ExportInput{
			SegmentID: seg.ID, Purpose: "marketing", Channel: "EMAIL", First: first, After: after,
			IdentifierTypes: []string{"email"}, Traits: []string{"plan"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Members) > first {
			t.Fatalf("page of %d for first %d", len(page.Members), first)
		}
		for _, m := range page.Members {
			if len(m.Identifiers) != 1 || m.Identifiers[0].Type != "email" || len(m.Traits) != 1 || m.Traits["plan"] != "free" {
				t.Fatalf("exported %+v", m)
			}
			email := m.Identifiers[0].Value
			if !want[email] {
				t.Fatalf("exported %s without consent for marketing on EMAIL (seed %d)", email, seed)
			}
			if got[email] {
				t.Fatalf("exported %s twice", email)
			}
			got[email] = true
		}
		if !page.HasNext {
			break
		}
		after = page.EndCursor
	}
	allowed := 0
	for email, ok := range want {
		if ok {
			allowed++
			if !got[email] {
				t.Fatalf("%s has consent but was not exported (seed %d)", email, seed)
			}
		}
	}
	if allowed < 100 || allowed > 900 {
		t.Fatalf("degenerate: %d allowed", allowed)
	}
	t.Logf("%d of 1000 exported", allowed)
}
