package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const funnelQuery = `query($steps: [EventFilter!]!, $w: RelativeWindowInput, $seg: ID, $by: String) {
  funnel(steps: $steps, within: $w, since: "2026-10-24T00:00:00Z", until: "2026-10-27T00:00:00Z", segmentId: $seg, breakdownTrait: $by) {
    steps { name people conversion conversionFromFirst medianSecondsFromPrevious p90SecondsFromPrevious }
    breakdown { value other people } } }`

const retentionQuery = `query($z: String) {
  retention(start: {name: "visit"}, returning: {name: "order"}, since: "2026-10-24T00:00:00Z", until: "2026-10-27T00:00:00Z", interval: DAY, timeZone: $z, periods: 2) {
    timeZone periods cohorts { start end people returned rates } } }`

type gqlFunnel struct {
	Steps []struct {
		Name                                              string
		People                                            int
		Conversion, ConversionFromFirst                   float64
		MedianSecondsFromPrevious, P90SecondsFromPrevious *float64
	}
	Breakdown []struct {
		Value  any
		Other  bool
		People []int
	}
}

// Funnels, retention grids and top values through GraphQL on every
// engine, over events at known instants around the end of summer time in
// Lisbon: the people reaching each step within the window (and within a
// wider one), their median and p90 times, a segment's members only, a
// breakdown by plan; the cohort grid by local day in Lisbon (E's first
// visit, 00:30 on the 25th there, is still the 24th in UTC, so her order
// returns in period 0 there and period 1 in UTC); top values of a
// property; a PII property refused without pii:read.
func TestE2EFunnelRetentionTopValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		n := 0
		send := func(who, name, at string, props map[string]any) string {
			t.Helper()
			n++
			when, err := time.Parse(time.RFC3339, at)
			if err != nil {
				t.Fatal(err)
			}
			return trackEventAt(t, s, tok, fmt.Sprintf("p-%d", n), ids("anonymousId", who), name, when, props)
		}
		a := send("a", "visit", "2026-10-24T22:00:00Z", map[string]any{"page": "/home"})
		send("a", "cart", "2026-10-24T23:30:00Z", nil)
		send("a", "order", "2026-10-25T10:00:00Z", map[string]any{"amount": 30})
		send("b", "visit", "2026-10-25T09:00:00Z", map[string]any{"page": "/home"})
		send("b", "cart", "2026-10-27T09:00:00Z", nil) // two days after
		c := send("c", "visit", "2026-10-26T00:30:00Z", map[string]any{"page": "/pricing"})
		send("c", "order", "2026-10-26T01:00:00Z", map[string]any{"amount": 30})
		send("d", "cart", "2026-10-25T00:00:00Z", nil)
		send("e", "visit", "2026-10-24T23:30:00Z", nil)
		send("e", "order", "2026-10-25T23:30:00Z", map[string]any{"amount": 12.5, "email": "e@example.com"})
		identify(t, s, tok, ids("anonymousId", "a"), map[string]any{"plan": "pro"})
		identify(t, s, tok, ids("anonymousId", "b"), map[string]any{"plan": "free"})

		steps := []map[string]any{{"name": "visit"}, {"name": "cart"}, {"name": "order"}}
		funnel := func(vars map[string]any) gqlFunnel {
			t.Helper()
			vars["steps"] = steps
			r := s.gql(t, tok, funnelQuery, vars)
			r.requireOK(t)
			var out struct{ Funnel gqlFunnel }
			r.decode(t, &out)
			return out.Funnel
		}
		people := func(f gqlFunnel) string {
			var p []string
			for _, st := range f.Steps {
				p = append(p, fmt.Sprint(st.People))
			}
			return strings.Join(p, " ")
		}
		// Within a day: only a goes on to cart (1.5 h) and order (10.5 h).
		f := funnel(map[string]any{"w": map[string]any{"amount": 1, "unit": "DAYS"}})
		if people(f) != "4 1 1" || f.Steps[1].Conversion != 0.25 || f.Steps[2].Conversion != 1 || f.Steps[2].ConversionFromFirst != 0.25 || f.Steps[0].MedianSecondsFromPrevious != nil {
			t.Fatalf("funnel within a day: %+v", f)
		}
		if *f.Steps[1].MedianSecondsFromPrevious != 5400 || *f.Steps[2].MedianSecondsFromPrevious != 37800 {
			t.Fatalf("times: %v, %v", *f.Steps[1].MedianSecondsFromPrevious, *f.Steps[2].MedianSecondsFromPrevious)
		}
		// Within 3 days (the default is 14): b's cart counts too.
		f = funnel(map[string]any{"w": map[string]any{"amount": 3, "unit": "DAYS"}})
		if people(f) != "4 2 1" || *f.Steps[1].MedianSecondsFromPrevious != 5400 || *f.Steps[1].P90SecondsFromPrevious != 172800 {
			t.Fatalf("funnel within 3 days: %+v", f)
		}
		if f = funnel(map[string]any{}); people(f) != "4 2 1" {
			t.Fatalf("funnel with the default window: %+v", f)
		}
		// A segment's members only.
		seg := createSegment(t, s, tok, map[string]any{"name": "ac", "kind": "STATIC"})
		s.gql(t, tok, `mutation($s: ID!, $p: [ID!]!) { addToStaticSegment(segmentId: $s, profileIds: $p) { id } }`, map[string]any{"s": seg.ID, "p": []string{a, c}}).requireOK(t)
		if f = funnel(map[string]any{"seg": seg.ID, "w": map[string]any{"amount": 1, "unit": "DAYS"}}); people(f) != "2 1 1" {
			t.Fatalf("funnel of the segment: %+v", f)
		}
		// By plan: the profiles without one first (2 at the first step),
		// then free and pro.
		f = funnel(map[string]any{"by": "plan", "w": map[string]any{"amount": 1, "unit": "DAYS"}})
		got := fmt.Sprint(f.Breakdown)
		if got != "[{<nil> false [2 0 0]} {free false [1 0 0]} {pro false [1 1 1]}]" {
			t.Fatalf("breakdown: %s", got)
		}

		// Retention by local day in Lisbon, and in UTC.
		grid := func(zone string) string {
			t.Helper()
			r := s.gql(t, tok, retentionQuery, map[string]any{"z": zone})
			r.requireOK(t)
			var out struct {
				Retention struct {
					Cohorts []struct {
						People   int
						Returned []int
					}
				}
			}
			r.decode(t, &out)
			return fmt.Sprint(out.Retention.Cohorts)
		}
		if g := grid("Europe/Lisbon"); g != "[{1 [0 1 0]} {2 [1 0 0]} {1 [1 0 0]}]" {
			t.Fatalf("Lisbon cohorts (people, returned by period): %s", g)
		}
		if g := grid("UTC"); g != "[{2 [0 2 0]} {1 [0 0 0]} {1 [1 0 0]}]" {
			t.Fatalf("UTC cohorts: %s", g)
		}

		// Top values.
		const top = `query($e: String!, $p: String!, $l: Int) { topValues(event: $e, property: $p, limit: $l, since: "2026-10-01T00:00:00Z", until: "2026-11-01T00:00:00Z") { events missing distinct other values { value count } } }`
		r := s.gql(t, tok, top, map[string]any{"e": "visit", "p": "page"})
		r.requireOK(t)
		if want := `{"topValues":{"events":4,"missing":1,"distinct":2,"other":0,"values":[{"value":"/home","count":2},{"value":"/pricing","count":1}]}}`; string(r.Data) != want {
			t.Fatalf("top pages: %s, want %s", r.Data, want)
		}
		r = s.gql(t, tok, top, map[string]any{"e": "order", "p": "amount", "l": 1})
		r.requireOK(t)
		if want := `{"topValues":{"events":3,"missing":0,"distinct":2,"other":1,"values":[{"value":30,"count":2}]}}`; string(r.Data) != want {
			t.Fatalf("top amounts: %s, want %s", r.Data, want)
		}

		// Event volume by a property's value: read from the stored
		// events; the visit without a page is the null group (ties by
		// key: it sorts first).
		const byProperty = `query($p: String, $g: EventVolumeGroupBy, $n: [String!]) { eventVolume(since: "2026-10-01T00:00:00Z", until: "2026-11-01T00:00:00Z", interval: MONTH, names: $n, groupBy: $g, property: $p) { total groups { key value other total } buckets { counts } } }`
		r = s.gql(t, tok, byProperty, map[string]any{"p": "page", "g": "PROPERTY", "n": []string{"visit"}})
		r.requireOK(t)
		if want := `{"eventVolume":{"total":4,"groups":[{"key":"/home","value":"/home","other":false,"total":2},{"key":null,"value":null,"other":false,"total":1},{"key":"/pricing","value":"/pricing","other":false,"total":1}],"buckets":[{"counts":[2,1,1]}]}}`; string(r.Data) != want {
			t.Fatalf("visits by page: %s, want %s", r.Data, want)
		}
		r = s.gql(t, tok, byProperty, map[string]any{"p": "amount", "g": "PROPERTY", "n": []string{"order"}})
		r.requireOK(t)
		if want := `{"eventVolume":{"total":3,"groups":[{"key":"30","value":30,"other":false,"total":2},`; !strings.HasPrefix(string(r.Data), want) {
			t.Fatalf("orders by amount: %s, want it to begin %s", r.Data, want)
		}
		for _, c := range []struct {
			name string
			vars map[string]any
		}{
			{"PROPERTY without a property", map[string]any{"g": "PROPERTY"}},
			{"a property without PROPERTY", map[string]any{"p": "page", "g": "NAME"}},
			{"a property that is no path", map[string]any{"p": "a..b", "g": "PROPERTY"}},
		} {
			r := s.gql(t, tok, byProperty, c.vars)
			r.requireError(t, 0, "BAD_USER_INPUT")
			if !strings.Contains(string(r.Body), `"field":"property"`) {
				t.Fatalf("%s: %s", c.name, r.Body)
			}
		}

		// Personal data: refused without pii:read, answered with it.
		var scopes []string
		for _, sc := range auth.AllScopes {
			if sc != auth.ScopePIIRead {
				scopes = append(scopes, sc)
			}
		}
		noPII := s.token(t, "acme", scopes...)
		s.gql(t, noPII, top, map[string]any{"e": "order", "p": "email"}).requireError(t, 0, "FORBIDDEN")
		s.gql(t, tok, top, map[string]any{"e": "order", "p": "email"}).requireOK(t)
		r = s.gql(t, noPII, funnelQuery, map[string]any{"steps": []map[string]any{{"name": "order", "where": []map[string]any{{"key": "email", "op": "EXISTS"}}}}})
		r.requireError(t, 0, "FORBIDDEN")
		s.gql(t, noPII, funnelQuery, map[string]any{"steps": steps, "by": "firstName"}).requireError(t, 0, "FORBIDDEN")
		s.gql(t, noPII, byProperty, map[string]any{"p": "email", "g": "PROPERTY"}).requireError(t, 0, "FORBIDDEN")

		// analytics:read alone: counts yes, stored values no.
		counts := s.token(t, "acme", auth.ScopeAnalyticsRead)
		if f = func() gqlFunnel {
			r := s.gql(t, counts, funnelQuery, map[string]any{"steps": steps})
			r.requireOK(t)
			var out struct{ Funnel gqlFunnel }
			r.decode(t, &out)
			return out.Funnel
		}(); people(f) != "4 2 1" {
			t.Fatalf("funnel with analytics:read alone: %+v", f)
		}
		s.gql(t, counts, funnelQuery, map[string]any{"steps": steps, "by": "plan"}).requireError(t, 0, "FORBIDDEN")
		s.gql(t, counts, top, map[string]any{"e": "visit", "p": "page"}).requireError(t, 0, "FORBIDDEN")
		s.gql(t, counts, byProperty, map[string]any{"p": "page", "g": "PROPERTY"}).requireError(t, 0, "FORBIDDEN")

		// Until the year 9999: every event, not none.
		r = s.gql(t, tok, `query($s: [EventFilter!]!) { funnel(steps: $s, since: "0001-01-01T00:00:00Z", until: "9999-12-31T00:00:00Z") { steps { people } } }`, map[string]any{"s": steps})
		r.requireOK(t)
		var all struct{ Funnel gqlFunnel }
		r.decode(t, &all)
		if people(all.Funnel) != "4 2 1" {
			t.Fatalf("funnel over all time: %+v", all.Funnel)
		}
	})
}

// Bad input is BAD_USER_INPUT naming the argument; another workspace's
// segment is NOT_FOUND.
func TestE2EFunnelRetentionTopValuesBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	other := createSegment(t, s, s.token(t, "globex"), map[string]any{"name": "theirs", "kind": "STATIC"})
	step := map[string]any{"name": "visit"}
	eleven := make([]map[string]any, 11)
	for i := range eleven {
		eleven[i] = step
	}
	const top = `query($p: String!, $l: Int) { topValues(event: "visit", property: $p, limit: $l, since: "2026-10-01T00:00:00Z", until: "2026-11-01T00:00:00Z") { events } }`
	const grid = `query($p: Int, $s: EventFilter!) { retention(start: $s, returning: {name: "order"}, since: "2026-10-01T00:00:00Z", until: "2026-10-05T00:00:00Z", interval: DAY, periods: $p) { periods } }`
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"an empty funnel", funnelQuery, map[string]any{"steps": []map[string]any{}}, "BAD_USER_INPUT", "steps"},
		{"more than 10 steps", funnelQuery, map[string]any{"steps": eleven}, "BAD_USER_INPUT", "steps"},
		{"a step's property path", funnelQuery, map[string]any{"steps": []map[string]any{{"name": "visit", "where": []map[string]any{{"key": "a..b", "op": "EXISTS"}}}}}, "BAD_USER_INPUT", "steps[0].where[0].key"},
		{"an empty step name", funnelQuery, map[string]any{"steps": []map[string]any{{"name": ""}}}, "BAD_USER_INPUT", "steps[0].name"},
		{"a window too long to hold", funnelQuery, map[string]any{"steps": []map[string]any{step}, "w": map[string]any{"amount": 213504, "unit": "DAYS"}}, "BAD_USER_INPUT", "within.amount"},
		{"a window of 367 days", funnelQuery, map[string]any{"steps": []map[string]any{step}, "w": map[string]any{"amount": 367, "unit": "DAYS"}}, "BAD_USER_INPUT", "within.amount"},
		{"an empty top-values event", `query { topValues(event: "", property: "x", since: "2026-10-01T00:00:00Z", until: "2026-11-01T00:00:00Z") { events } }`, nil, "BAD_USER_INPUT", "event"},
		{"a window of 0", funnelQuery, map[string]any{"steps": []map[string]any{step}, "w": map[string]any{"amount": 0, "unit": "DAYS"}}, "BAD_USER_INPUT", "within.amount"},
		{"a breakdown path", funnelQuery, map[string]any{"steps": []map[string]any{step}, "by": "$where"}, "BAD_USER_INPUT", "breakdownTrait"},
		{"a funnel of another workspace's segment", funnelQuery, map[string]any{"steps": []map[string]any{step}, "seg": other.ID}, "NOT_FOUND", ""},
		{"retention of 0 periods", grid, map[string]any{"p": 0, "s": step}, "BAD_USER_INPUT", "periods"},
		{"retention of 101 periods", grid, map[string]any{"p": 101, "s": step}, "BAD_USER_INPUT", "periods"},
		{"retention's start property path", grid, map[string]any{"s": map[string]any{"name": "visit", "where": []map[string]any{{"key": ".x", "op": "EXISTS"}}}}, "BAD_USER_INPUT", "start.where[0].key"},
		{"top values of a bad path", top, map[string]any{"p": "page."}, "BAD_USER_INPUT", "property"},
		{"top values limit 0", top, map[string]any{"p": "page", "l": 0}, "BAD_USER_INPUT", "limit"},
		{"top values limit 101", top, map[string]any{"p": "page", "l": 101}, "BAD_USER_INPUT", "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, c.vars)
			r.requireError(t, 0, c.code)
			if len(r.Data) > 0 && string(r.Data) != "null" {
				t.Fatalf("data with the error: %s", r.Data)
			}
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
}
