package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
)

const historySeriesQuery = `query($seg: ID!, $s: Time!, $u: Time!, $i: Interval!, $z: String) {
  pros: segmentSize(segmentId: $seg, since: $s, until: $u, interval: $i, timeZone: $z) {
    segmentId timeZone buckets { start end size entered exited } }
  growth: profileGrowth(since: $s, until: $u, interval: $i, timeZone: $z) {
    timeZone profiles
    totals { newProfiles newlyKnown merges unmerges erasures erasedProfiles }
    buckets { start end profiles figures { newProfiles newlyKnown erasures } } }
  email: consentRates(purpose: "marketing", channel: EMAIL, since: $s, until: $u, interval: $i, timeZone: $z) {
    purpose channel allowedWithoutRecord buckets { start granted denied withdrawn expired profiles contactable contactableShare } }
  any: consentRates(purpose: "marketing", since: $s, until: $u, interval: $i, timeZone: $z) {
    channel buckets { granted expired contactable } }
}`

type gqlHistorySeries struct {
	Pros struct {
		SegmentID, TimeZone string
		Buckets             []struct {
			Start, End            time.Time
			Size, Entered, Exited int
		}
	}
	Growth struct {
		TimeZone string
		Profiles int
		Totals   struct{ NewProfiles, NewlyKnown, Merges, Unmerges, Erasures, ErasedProfiles int }
		Buckets  []struct {
			Start, End time.Time
			Profiles   int
			Figures    struct{ NewProfiles, NewlyKnown, Erasures int }
		}
	}
	Email struct {
		Purpose, Channel     string
		AllowedWithoutRecord bool
		Buckets              []struct {
			Start                                                      time.Time
			Granted, Denied, Withdrawn, Expired, Profiles, Contactable int
			ContactableShare                                           float64
		}
	}
	Any struct {
		Channel string
		Buckets []struct{ Granted, Expired, Contactable int }
	}
}

// The series replayed from histories (segmentSize, profileGrowth,
// consentRates), through GraphQL on every engine, over a story told on the
// server's clock across the end of summer time in Lisbon (25 October
// 2026 lasts 25 hours): a visitor who enters a segment, becomes known and
// leaves it again just after local midnight; a person who enters, grants
// consent and is erased; a consent that lapses. Daily in Lisbon every
// figure lands on its local day; in UTC the instant after midnight in
// Lisbon is still the day before.
func TestE2EHistorySeriesAcrossDST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		at := func(v string) time.Time { return instant(t, v) }
		clock := app.NewManualClock(at("2026-10-23T12:00:00Z"))
		s := startServer(t, serverOptions{Env: e.env(t), Clock: clock})
		tok := s.token(t, "acme")
		seg := createSegment(t, s, tok, map[string]any{"name": "pros", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}})
		identify := func(traits map[string]any, pairs ...string) string {
			t.Helper()
			r := s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{"identifiers": ids(pairs...), "traits": traits}})
			r.requireOK(t)
			var out struct {
				Identify struct{ Profile struct{ ID string } }
			}
			r.decode(t, &out)
			return out.Identify.Profile.ID
		}
		setConsent := func(in map[string]any) {
			t.Helper()
			s.gql(t, tok, `mutation($in: SetConsentInput!) { setConsent(input: $in) { status } }`, map[string]any{"in": in}).requireOK(t)
		}

		// Lisbon 24 Oct 11:00: a visitor, a pro.
		clock.Set(at("2026-10-24T10:00:00Z"))
		ana := identify(map[string]any{"plan": "pro"}, "anonymousId", "ana-browser")
		// Lisbon 25 Oct 00:30 (WEST), UTC still the 24th: known by her
		// email, and a pro no more; she grants marketing on every channel
		// until 06:00 UTC on the 26th.
		clock.Set(at("2026-10-24T23:30:00Z"))
		identify(map[string]any{"plan": "free"}, "anonymousId", "ana-browser", "email", "ana@example.com")
		setConsent(map[string]any{"profileId": ana, "purpose": "marketing", "status": "GRANTED", "expiresAt": "2026-10-26T06:00:00Z"})
		// Lisbon 25 Oct 13:00: Ben, known from the start, a pro, who
		// grants marketing by email and denies it by SMS.
		clock.Set(at("2026-10-25T12:00:00Z"))
		ben := identify(map[string]any{"plan": "pro"}, "email", "ben@example.com")
		setConsent(map[string]any{"profileId": ben, "purpose": "marketing", "channel": "EMAIL", "status": "GRANTED"})
		setConsent(map[string]any{"profileId": ben, "purpose": "marketing", "channel": "SMS", "status": "DENIED"})
		// Lisbon 26 Oct 09:00: Ben is erased.
		clock.Set(at("2026-10-26T09:00:00Z"))
		s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id, reason: "request") { id } }`, map[string]any{"id": ben}).requireOK(t)
		clock.Set(at("2026-10-26T12:00:00Z"))

		ask := func(zone string) gqlHistorySeries {
			t.Helper()
			r := s.gql(t, tok, historySeriesQuery, map[string]any{"seg": seg.ID, "s": "2026-10-24T00:00:00Z", "u": "2026-10-26T12:00:00Z", "i": "DAY", "z": zone})
			r.requireOK(t)
			var out gqlHistorySeries
			r.decode(t, &out)
			return out
		}
		v := ask("Europe/Lisbon")
		wantStart := []string{"2026-10-23T23:00:00Z", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z"}
		if len(v.Pros.Buckets) != 3 || v.Pros.SegmentID != seg.ID || v.Pros.TimeZone != "Europe/Lisbon" {
			t.Fatalf("segmentSize: %+v", v.Pros)
		}
		for i, b := range v.Pros.Buckets {
			if !b.Start.Equal(at(wantStart[i])) {
				t.Fatalf("bucket %d starts %s, want %s", i, b.Start, wantStart[i])
			}
		}
		if d := v.Pros.Buckets[1].End.Sub(v.Pros.Buckets[1].Start); d != 25*time.Hour {
			t.Fatalf("25 October lasts %s", d)
		}
		sizes := fmt.Sprint(v.Pros.Buckets[0].Size, v.Pros.Buckets[0].Entered, v.Pros.Buckets[0].Exited, " ",
			v.Pros.Buckets[1].Size, v.Pros.Buckets[1].Entered, v.Pros.Buckets[1].Exited, " ",
			v.Pros.Buckets[2].Size, v.Pros.Buckets[2].Entered, v.Pros.Buckets[2].Exited)
		// 24th: Ana enters. 25th: she leaves, Ben enters. 26th: Ben's
		// erasure takes him out.
		if sizes != "1 1 0 1 1 1 0 0 1" {
			t.Fatalf("size entered exited per day: %s, want 1 1 0 1 1 1 0 0 1", sizes)
		}

		g := v.Growth
		// Ben is erased: the stored profiles are Ana's alone, created on
		// the 24th and known on the 25th (local).
		if g.Profiles != 1 || g.Totals.NewProfiles != 1 || g.Totals.NewlyKnown != 1 || g.Totals.Erasures != 1 || g.Totals.ErasedProfiles != 1 || g.Totals.Merges != 0 {
			t.Fatalf("profileGrowth totals: %+v", g)
		}
		if b := g.Buckets; b[0].Figures.NewProfiles != 1 || b[1].Figures.NewlyKnown != 1 || b[2].Figures.Erasures != 1 || b[0].Profiles != 1 || b[2].Profiles != 1 {
			t.Fatalf("profileGrowth buckets: %+v", b)
		}

		em := v.Email
		if em.Purpose != "marketing" || em.Channel != "EMAIL" || em.AllowedWithoutRecord {
			t.Fatalf("consentRates: %+v", em)
		}
		// EMAIL: Ben's grant (kept, anonymised, after his erasure) counts
		// on the 25th; Ana may be contacted by email through her ANY
		// grant at the end of the 25th, no longer at the end of the 26th.
		got := fmt.Sprint(em.Buckets[1].Granted, em.Buckets[1].Denied, em.Buckets[1].Contactable, em.Buckets[1].Profiles, em.Buckets[1].ContactableShare, " ", em.Buckets[2].Contactable, em.Buckets[2].Expired)
		if got != "1 0 1 1 1 0 0" {
			t.Fatalf("EMAIL on the 25th (granted denied contactable profiles share) and the 26th (contactable expired): %s, want 1 0 1 1 1 0 0", got)
		}
		if b := v.Any.Buckets; v.Any.Channel != "ANY" || b[1].Granted != 1 || b[1].Contactable != 1 || b[2].Expired != 1 || b[2].Contactable != 0 {
			t.Fatalf("ANY: %+v", v.Any)
		}

		// In UTC Ana's exit, her becoming known and her grant fall on
		// the 24th.
		u := ask("UTC")
		if b := u.Pros.Buckets; len(b) != 3 || b[0].Entered != 1 || b[0].Exited != 1 || b[0].Size != 0 || b[1].Size != 1 {
			t.Fatalf("UTC segmentSize: %+v", u.Pros)
		}
		if b := u.Growth.Buckets; b[0].Figures.NewlyKnown != 1 || b[0].Figures.NewProfiles != 1 {
			t.Fatalf("UTC profileGrowth: %+v", b)
		}
		if b := u.Any.Buckets; b[0].Granted != 1 || b[0].Contactable != 1 {
			t.Fatalf("UTC ANY: %+v", b)
		}
	})
}

// Bad input is BAD_USER_INPUT naming the argument, and a segment of
// another workspace is NOT_FOUND, as everywhere.
func TestE2EHistorySeriesBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	other := createSegment(t, s, s.token(t, "globex"), map[string]any{"name": "theirs", "kind": "STATIC"})
	const size = `query($seg: ID!, $s: Time!, $u: Time!, $z: String) { segmentSize(segmentId: $seg, since: $s, until: $u, interval: DAY, timeZone: $z) { timeZone } }`
	const growth = `query($s: Time!, $u: Time!, $i: Interval!) { profileGrowth(since: $s, until: $u, interval: $i) { profiles } }`
	const rates = `query($p: String!, $c: ConsentChannel) { consentRates(purpose: $p, channel: $c, since: "2026-10-01T00:00:00Z", until: "2026-10-02T00:00:00Z", interval: DAY) { channel } }`
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"segmentSize since after until", size, map[string]any{"seg": other.ID, "s": "2026-10-03T00:00:00Z", "u": "2026-10-02T00:00:00Z"}, "BAD_USER_INPUT", "since"},
		{"segmentSize of another workspace", size, map[string]any{"seg": other.ID, "s": "2026-10-01T00:00:00Z", "u": "2026-10-02T00:00:00Z"}, "NOT_FOUND", ""},
		{"segmentSize unknown zone", size, map[string]any{"seg": other.ID, "s": "2026-10-01T00:00:00Z", "u": "2026-10-02T00:00:00Z", "z": "Mars/Olympus"}, "BAD_USER_INPUT", "timeZone"},
		{"profileGrowth more than 1,000 buckets", growth, map[string]any{"s": "2026-01-01T00:00:00Z", "u": "2026-03-01T00:00:00Z", "i": "HOUR"}, "BAD_USER_INPUT", "interval"},
		{"profileGrowth a malformed time", growth, map[string]any{"s": "soon", "u": "2026-03-01T00:00:00Z", "i": "DAY"}, "BAD_USER_INPUT", "s"},
		{"consentRates unknown purpose", rates, map[string]any{"p": "telepathy"}, "BAD_USER_INPUT", "purpose"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, c.vars)
			r.requireError(t, 0, c.code)
			if len(r.Data) > 0 && string(r.Data) != "null" {
				t.Fatalf("data with the error: %s", r.Data)
			}
			f, _ := r.Errors[0].Extensions["field"].(string)
			if f == "" {
				f = fmt.Sprint(r.Errors[0].Path...)
			}
			if c.field != "" && !strings.Contains(f+" "+r.Errors[0].Message, c.field) {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
}
