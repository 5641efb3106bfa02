package main

import (
	"fmt"
	"testing"
	"time"
)

const activeQuery = `query($s: Time!, $u: Time!, $i: Interval!, $z: String) {
  activeProfiles(since: $s, until: $u, interval: $i, timeZone: $z) { timeZone total buckets { start end active } }
}`

type gqlActive struct {
	ActiveProfiles struct {
		TimeZone string
		Total    int
		Buckets  []struct {
			Start, End time.Time
			Active     int
		}
	}
}

// activeProfiles through GraphQL on every engine, across the end of
// summer time in Lisbon (25 October 2026 lasts 25 hours): a person seen
// in two browsers counts twice until the profiles merge, once after,
// twice again after the unmerge; an erased person leaves the figures; a
// CRM interaction is not activity. Daily in Lisbon, daily in UTC (an
// event at 00:30 in Lisbon is still the day before in UTC), weekly.
func TestE2EActiveProfilesAcrossDST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		at := func(v string) time.Time { return instant(t, v) }
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		// Ana's laptop at 00:30 on the 25th in Lisbon (23:30 UTC on the
		// 24th); Ben on the 25th and 26th; Ana's phone at 23:30 on the
		// 25th (Lisbon is on UTC again).
		ana, _ := track(t, s, tok, "act-1", ids("anonymousId", "ana-laptop"), "page_viewed", at("2026-10-24T23:30:00Z"))
		ben, _ := track(t, s, tok, "act-2", ids("anonymousId", "ben-laptop"), "page_viewed", at("2026-10-25T12:00:00Z"))
		track(t, s, tok, "act-3", ids("anonymousId", "ben-laptop"), "order_completed", at("2026-10-26T10:00:00Z"))
		phone, _ := track(t, s, tok, "act-4", ids("anonymousId", "ana-phone"), "page_viewed", at("2026-10-25T23:30:00Z"))
		// A call with Ana on the 24th (UTC and Lisbon): not activity.
		s.gql(t, tok, `mutation($in: LogInteractionInput!) { logInteraction(input: $in) { id } }`, map[string]any{"in": map[string]any{
			"profileId": ana, "kind": "CALL", "occurredAt": "2026-10-24T10:00:00Z"}}).requireOK(t)

		ask := func(interval, zone string) gqlActive {
			t.Helper()
			r := s.gql(t, tok, activeQuery, map[string]any{"s": "2026-10-24T00:00:00Z", "u": "2026-10-26T12:00:00Z", "i": interval, "z": zone})
			r.requireOK(t)
			var out gqlActive
			r.decode(t, &out)
			return out
		}
		figures := func(v gqlActive) string {
			out := fmt.Sprint(v.ActiveProfiles.Total, ":")
			for _, b := range v.ActiveProfiles.Buckets {
				out += fmt.Sprint(" ", b.Active)
			}
			return out
		}
		check := func(when string, lisbonDays, utcDays, lisbonWeeks string) {
			t.Helper()
			v := ask("DAY", "Europe/Lisbon")
			if got := figures(v); got != lisbonDays {
				t.Fatalf("%s: Lisbon days (total: 24th 25th 26th) %s, want %s", when, got, lisbonDays)
			}
			if b := v.ActiveProfiles.Buckets; len(b) != 3 || b[1].End.Sub(b[1].Start) != 25*time.Hour || !b[0].Start.Equal(at("2026-10-23T23:00:00Z")) || v.ActiveProfiles.TimeZone != "Europe/Lisbon" {
				t.Fatalf("%s: Lisbon buckets %+v", when, v.ActiveProfiles)
			}
			if got := figures(ask("DAY", "UTC")); got != utcDays {
				t.Fatalf("%s: UTC days %s, want %s", when, got, utcDays)
			}
			if got := figures(ask("WEEK", "Europe/Lisbon")); got != lisbonWeeks {
				t.Fatalf("%s: Lisbon weeks (from Monday 19th, 26th) %s, want %s", when, got, lisbonWeeks)
			}
		}
		check("two browsers", "3: 0 3 1", "3: 1 2 1", "3: 3 1")

		// The phone merges into Ana's profile: she is one person.
		r := s.gql(t, tok, `mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { id merges { id kind } } }`, map[string]any{"a": phone, "b": ana})
		r.requireOK(t)
		var merged struct {
			MergeProfiles struct {
				ID     string
				Merges []struct{ ID, Kind string }
			}
		}
		r.decode(t, &merged)
		check("merged", "2: 0 2 1", "2: 1 2 1", "2: 2 1")

		// Undone: two again.
		var mergeID string
		for _, m := range merged.MergeProfiles.Merges {
			if m.Kind == "MERGE" {
				mergeID = m.ID
			}
		}
		s.gql(t, tok, `mutation($m: ID!) { unmergeProfile(mergeId: $m) { restored { id } } }`, map[string]any{"m": mergeID}).requireOK(t)
		check("unmerged", "3: 0 3 1", "3: 1 2 1", "3: 3 1")

		// Ben is erased: his days are empty.
		s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id, reason: "request") { id } }`, map[string]any{"id": ben}).requireOK(t)
		check("Ben erased", "2: 0 2 0", "2: 1 1 0", "2: 2 0")
	})
}

// revenue through GraphQL on every engine, across the end of summer time
// in Lisbon: orders land on their local day, a value that is not a
// number is an order worth 0, a page view with a revenue property is not
// an order until the score settings say it is, and an erased buyer's
// orders leave the figures.
func TestE2ERevenueAcrossDST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		at := func(v string) time.Time { return instant(t, v) }
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		// 00:30 on the 25th in Lisbon (23:30 UTC on the 24th): 19.99.
		ana := trackEventAt(t, s, tok, "rev-1", ids("email", "ana@example.com"), "order_completed", at("2026-10-24T23:30:00Z"), map[string]any{"revenue": 19.99})
		trackEventAt(t, s, tok, "rev-2", ids("email", "ben@example.com"), "order_completed", at("2026-10-25T12:00:00Z"), map[string]any{"revenue": 100})
		trackEventAt(t, s, tok, "rev-3", ids("email", "ben@example.com"), "order_completed", at("2026-10-26T10:00:00Z"), map[string]any{"revenue": "n/a"})
		trackEventAt(t, s, tok, "rev-4", ids("email", "ben@example.com"), "page_viewed", at("2026-10-25T09:00:00Z"), map[string]any{"revenue": 5})

		type bucket struct {
			Start             time.Time
			Orders            int
			Revenue           float64
			AverageOrderValue float64
		}
		var got struct {
			Revenue struct {
				TimeZone, OrderEvent, RevenueProperty string
				Orders                                int
				Revenue, AverageOrderValue            float64
				Buckets                               []bucket
			}
		}
		ask := func(zone string) string {
			t.Helper()
			r := s.gql(t, tok, `query($z: String) { revenue(since: "2026-10-24T00:00:00Z", until: "2026-10-26T12:00:00Z", interval: DAY, timeZone: $z) {
			  timeZone orderEvent revenueProperty orders revenue averageOrderValue buckets { start orders revenue averageOrderValue } } }`, map[string]any{"z": zone})
			r.requireOK(t)
			r.decode(t, &got)
			v := got.Revenue
			out := fmt.Sprint(v.OrderEvent, " ", v.Orders, " ", v.Revenue, " ", v.AverageOrderValue, ":")
			for _, b := range v.Buckets {
				out += fmt.Sprint(" ", b.Orders, "/", b.Revenue, "/", b.AverageOrderValue)
			}
			return out
		}
		for _, c := range []struct{ zone, want string }{
			{"Europe/Lisbon", "order_completed 3 119.99 39.996667: 0/0/0 2/119.99/59.995 1/0/0"},
			{"UTC", "order_completed 3 119.99 39.996667: 1/19.99/19.99 1/100/100 1/0/0"},
		} {
			if v := ask(c.zone); v != c.want {
				t.Fatalf("%s: %s, want %s", c.zone, v, c.want)
			}
		}
		if got.Revenue.TimeZone != "UTC" || got.Revenue.RevenueProperty != "revenue" || !got.Revenue.Buckets[1].Start.Equal(at("2026-10-25T00:00:00Z")) {
			t.Fatalf("revenue: %+v", got.Revenue)
		}

		// Page views are the orders now: every stored one counts.
		s.gql(t, tok, `mutation { setScoreSettings(input: {orderEvent: "page_viewed", revenueProperty: "revenue"}) { orderEvent } }`, nil).requireOK(t)
		if v, want := ask("Europe/Lisbon"), "page_viewed 1 5 5: 0/0/0 1/5/5 0/0/0"; v != want {
			t.Fatalf("page views as orders: %s, want %s", v, want)
		}
		s.gql(t, tok, `mutation { setScoreSettings(input: {orderEvent: "order_completed", revenueProperty: "revenue"}) { orderEvent } }`, nil).requireOK(t)
		// Ana is erased: her 19.99 goes.
		s.gql(t, tok, `mutation($id: ID!) { eraseProfile(profileId: $id, reason: "request") { id } }`, map[string]any{"id": ana}).requireOK(t)
		if v, want := ask("Europe/Lisbon"), "order_completed 2 100 50: 0/0/0 1/100/100 1/0/0"; v != want {
			t.Fatalf("after Ana's erasure: %s, want %s", v, want)
		}
	})
}
