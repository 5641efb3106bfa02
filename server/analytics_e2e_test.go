package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/store"
)

const eventVolumeQuery = `query($s: Time!, $u: Time!, $i: Interval!, $z: String, $g: EventVolumeGroupBy, $n: [String!], $c: [String!], $top: Int) {
  eventVolume(since: $s, until: $u, interval: $i, timeZone: $z, groupBy: $g, names: $n, channels: $c, top: $top) {
    timeZone total groups { key other total } buckets { start end total counts } } }`

// dashboardQuery is the one in docs/analytics.md ("A dashboard in one
// query").
const dashboardQuery = `query Dashboard($since: Time!, $until: Time!, $vip: ID!) {
  people: profiles(first: 0) { totalCount }
  vip: segment(id: $vip) { name members(first: 0) { totalCount } }
  orders: eventVolume(since: $since, until: $until, interval: DAY,
                      timeZone: "Europe/Lisbon", names: ["order_completed"]) {
    total buckets { start total }
  }
  traffic: eventVolume(since: $since, until: $until, interval: DAY,
                       timeZone: "Europe/Lisbon", groupBy: CHANNEL, top: 3) {
    groups { key other total } buckets { start counts }
  }
}`

type gqlVolume struct {
	TimeZone string
	Total    int
	Groups   []struct {
		Key   *string
		Other bool
		Total int
	}
	Buckets []struct {
		Start, End time.Time
		Total      int
		Counts     []int
	}
}

func eventVolume(t *testing.T, s *testServer, tok string, vars map[string]any) gqlVolume {
	t.Helper()
	r := s.gql(t, tok, eventVolumeQuery, vars)
	r.requireOK(t)
	var out struct{ EventVolume gqlVolume }
	r.decode(t, &out)
	return out.EventVolume
}

// Daily event volume in Lisbon across the end of summer time (25 October
// 2026: a 25-hour day), grouped by name, through GraphQL on every engine:
// events at known instants land in their local day, a replayed messageId
// counts once, an interaction not at all; the same series again once the
// roller has folded the events into rollups (before, they are counted
// from the stored events); and in UTC, where the days differ.
func TestE2EEventVolumeAcrossDST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		at := func(v string) time.Time { return instant(t, v) }
		send := func(msg, name, channel, when string) {
			t.Helper()
			in := map[string]any{"messageId": msg, "identifiers": ids("anonymousId", "v1"), "name": name, "occurredAt": when}
			if channel != "" {
				in["channel"] = channel
			}
			s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { duplicate } }`, map[string]any{"in": in}).requireOK(t)
		}
		send("e1", "signed_up", "web", "2026-10-24T23:30:00Z")   // Lisbon 25 Oct 00:30 (WEST)
		send("e2", "page_viewed", "web", "2026-10-25T23:30:00Z") // Lisbon 25 Oct 23:30 (WET)
		send("e2", "page_viewed", "web", "2026-10-25T23:30:00Z") // a replay
		send("e3", "page_viewed", "ios", "2026-10-26T00:10:00Z") // Lisbon 26 Oct 00:10
		send("e4", "page_viewed", "", "2026-10-23T22:59:00Z")    // Lisbon 23 Oct 23:59
		pid := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": "anonymousId", "value": "v1"}}).ID
		s.gql(t, tok, `mutation($id: ID!) { logInteraction(input: {profileId: $id, kind: CALL, occurredAt: "2026-10-25T12:00:00Z"}) { id } }`, map[string]any{"id": pid}).requireOK(t)

		lisbon := map[string]any{"s": "2026-10-23T12:00:00Z", "u": "2026-10-26T12:00:00Z", "i": "DAY", "z": "Europe/Lisbon", "g": "NAME"}
		check := func(when string) {
			t.Helper()
			v := eventVolume(t, s, tok, lisbon)
			if v.TimeZone != "Europe/Lisbon" || v.Total != 4 || len(v.Buckets) != 4 {
				t.Fatalf("%s: %+v", when, v)
			}
			wantStart := []string{"2026-10-22T23:00:00Z", "2026-10-23T23:00:00Z", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z"}
			wantTotal := []int{1, 0, 2, 1}
			for i, b := range v.Buckets {
				if !b.Start.Equal(at(wantStart[i])) || b.Total != wantTotal[i] {
					t.Fatalf("%s: bucket %d is %+v, want start %s and %d events", when, i, b, wantStart[i], wantTotal[i])
				}
			}
			if d := v.Buckets[2].End.Sub(v.Buckets[2].Start); d != 25*time.Hour {
				t.Fatalf("%s: the day summer time ends lasts %s, want 25h", when, d)
			}
			if len(v.Groups) != 2 || *v.Groups[0].Key != "page_viewed" || v.Groups[0].Total != 3 || *v.Groups[1].Key != "signed_up" || v.Groups[1].Total != 1 {
				t.Fatalf("%s: groups %+v", when, v.Groups)
			}
			if c := v.Buckets[2].Counts; len(c) != 2 || c[0] != 1 || c[1] != 1 {
				t.Fatalf("%s: 25 October by name %v, want page_viewed 1, signed_up 1", when, c)
			}
		}
		check("before the fold")

		// The roller folds what was stored a second ago: wait for the
		// four UTC days to have rollups, then ask again.
		st := secondStore(t, s)
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, err := st.Tenant("acme").C(analytics.Rollups).Count(t.Context(), store.Query{Index: analytics.RollupsByDay})
			if err != nil {
				t.Fatal(err)
			}
			if n == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d day rollups after 30 s, want 4", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		check("after the fold")

		// In UTC, signed_up falls on the 24th; by channel, the event sent
		// without one is its own group; top 1 leaves the rest as other.
		v := eventVolume(t, s, tok, map[string]any{"s": "2026-10-24T00:00:00Z", "u": "2026-10-26T00:00:00Z", "i": "DAY", "g": "CHANNEL", "top": 1})
		if v.Total != 2 || v.Buckets[0].Total != 1 || v.Buckets[1].Total != 1 {
			t.Fatalf("UTC days: %+v", v)
		}
		if len(v.Groups) != 1 || *v.Groups[0].Key != "web" || v.Groups[0].Total != 2 {
			t.Fatalf("UTC by channel: %+v", v.Groups)
		}
		v = eventVolume(t, s, tok, map[string]any{"s": "2026-10-23T00:00:00Z", "u": "2026-10-27T00:00:00Z", "i": "WEEK", "g": "CHANNEL", "top": 1, "n": []string{"page_viewed"}})
		if v.Total != 3 || len(v.Groups) != 2 || !v.Groups[1].Other || v.Groups[1].Key != nil || v.Groups[1].Total != 2 {
			t.Fatalf("page_viewed by channel, top 1: %+v", v)
		}

		// The dashboard query of docs/analytics.md, as written there.
		seg := createSegment(t, s, tok, map[string]any{"name": "vip", "kind": "STATIC"})
		r := s.gql(t, tok, dashboardQuery, map[string]any{"since": "2026-10-20T00:00:00Z", "until": "2026-10-27T00:00:00Z", "vip": seg.ID})
		r.requireOK(t)
		var d struct {
			People struct{ TotalCount int }
			Vip    struct {
				Members struct{ TotalCount int }
			}
			Orders  struct{ Total int }
			Traffic struct {
				Groups []struct {
					Key   *string
					Other bool
				}
			}
		}
		r.decode(t, &d)
		if d.People.TotalCount != 1 || d.Vip.Members.TotalCount != 0 || d.Orders.Total != 0 || len(d.Traffic.Groups) != 3 {
			t.Fatalf("dashboard: %s", r.Data)
		}
	})
}

// Bad input is BAD_USER_INPUT naming the argument; nothing else runs.
func TestE2EEventVolumeBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	base := func(over map[string]any) map[string]any {
		v := map[string]any{"s": "2026-10-01T00:00:00Z", "u": "2026-10-02T00:00:00Z", "i": "HOUR"}
		for k, x := range over {
			v[k] = x
		}
		return v
	}
	for _, c := range []struct {
		name  string
		vars  map[string]any
		field string
	}{
		{"since after until", base(map[string]any{"s": "2026-10-03T00:00:00Z"}), "since"},
		{"more than 1,000 buckets", base(map[string]any{"u": "2026-12-01T00:00:00Z"}), "interval"},
		{"unknown time zone", base(map[string]any{"z": "Europe/Atlantis"}), "timeZone"},
		{"top 0", base(map[string]any{"g": "NAME", "top": 0}), "top"},
		{"top 51", base(map[string]any{"g": "NAME", "top": 51}), "top"},
		{"a malformed time", base(map[string]any{"s": "yesterday"}), "since"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, eventVolumeQuery, c.vars)
			r.requireError(t, 0, "BAD_USER_INPUT")
			if len(r.Data) > 0 && string(r.Data) != "null" {
				t.Fatalf("data with the error: %s", r.Data)
			}
			// The argument is named by extensions.field, or by the path
			// for a scalar that could not be read.
			f, _ := r.Errors[0].Extensions["field"].(string)
			if f == "" {
				f = fmt.Sprint(r.Errors[0].Path...)
			}
			if !strings.Contains(f, c.field) {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
}
