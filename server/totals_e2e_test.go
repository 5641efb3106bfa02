package main

import (
	"fmt"
	"testing"
	"time"
)

// connectionAt walks the decoded answer along path (field names; the last
// is the connection) and returns the connection object.
func connectionAt(t *testing.T, data map[string]any, path []string) map[string]any {
	t.Helper()
	var cur any = data
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("no %q in %v", p, cur)
		}
		cur = m[p]
	}
	conn, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("path %v is %v, not a connection", path, cur)
	}
	return conn
}

// pageThrough pages the connection at path two items at a time, and
// returns how many nodes the pages held and the totalCount each page
// answered (the same on every page, or the test fails). query takes $first
// and $after, and selects totalCount, nodes { id } and pageInfo on the
// connection.
func pageThrough(t *testing.T, s *testServer, tok, query string, vars map[string]any, path ...string) (nodes, total int) {
	t.Helper()
	total = -1
	seen := map[string]bool{}
	var after any
	for page := 0; ; page++ {
		if page > 50 {
			t.Fatalf("%v: more than 50 pages", path)
		}
		v := map[string]any{"first": 2, "after": after}
		for k, x := range vars {
			v[k] = x
		}
		r := s.gql(t, tok, query, v)
		r.requireOK(t)
		var data map[string]any
		r.decode(t, &data)
		conn := connectionAt(t, data, path)
		n := int(conn["totalCount"].(float64))
		if total >= 0 && n != total {
			t.Fatalf("%v: totalCount %d on page %d, %d before", path, n, page, total)
		}
		total = n
		for _, node := range conn["nodes"].([]any) {
			id, _ := node.(map[string]any)["id"].(string)
			if id != "" && seen[id] {
				// The same node twice is not counted twice (a search can
				// return a profile again on a later page).
				continue
			}
			seen[id] = true
			nodes++
		}
		info := conn["pageInfo"].(map[string]any)
		if next, _ := info["hasNextPage"].(bool); !next {
			return nodes, total
		}
		after = info["endCursor"]
	}
}

// Every connection's totalCount equals what paging through it returns,
// under each of its arguments, on every engine: the plain, searched and
// score-filtered profile lists, a timeline with and without filters,
// segments, a segment's members and history, and a consent log.
func TestE2ETotalCounts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		// Another workspace's data counts nowhere.
		other := s.token(t, "other")
		identify(t, s, other, ids("email", "ana@other.example"), map[string]any{"firstName": "Ana"})

		// Ana matches the search "an" by two terms (email and first
		// name): she counts once. Anton by one, Bea by none.
		ana, _ := identify(t, s, tok, ids("email", "ana@example.com"), map[string]any{"firstName": "Ana", "plan": "pro"})
		identify(t, s, tok, ids("email", "anton@example.com"), map[string]any{"plan": "pro"})
		identify(t, s, tok, ids("email", "bea@example.com"), map[string]any{"plan": "free"})
		now := time.Now().UTC().Add(-time.Hour)
		for i := range 5 {
			name := "page_viewed"
			if i%2 == 1 {
				name = "order_completed"
			}
			track(t, s, tok, fmt.Sprintf("m%d", i), ids("email", "ana@example.com"), name, now.Add(time.Duration(i)*time.Minute))
		}
		for i := range 3 {
			track(t, s, tok, fmt.Sprintf("b%d", i), ids("email", "bea@example.com"), "order_completed", now)
		}
		s.gql(t, tok, `mutation($id: ID!) { logInteraction(input: {profileId: $id, kind: NOTE, subject: "x"}) { id } }`, map[string]any{"id": ana.ID}).requireOK(t)
		for _, status := range []string{"GRANTED", "DENIED", "GRANTED"} {
			setConsent(t, s, tok, "ana@example.com", map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": status})
		}
		pro := createSegment(t, s, tok, map[string]any{"name": "pro", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}})
		buyers := createSegment(t, s, tok, map[string]any{"name": "buyers", "rule": map[string]any{"event": map[string]any{"name": "order_completed", "count": map[string]any{"op": "GTE", "value": 1}}}})
		waitSegmentReady(t, s, tok, pro.ID)
		waitSegmentReady(t, s, tok, buyers.ID)
		identify(t, s, tok, ids("email", "anton@example.com"), map[string]any{"plan": "free"}) // Anton leaves "pro"

		const profiles = `query($first: Int, $after: String, $q: String, $f: [ScoreRangeInput!], $o: ProfileOrder) {
			profiles(first: $first, after: $after, search: $q, scoreFilter: $f, orderBy: $o) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }`
		const timeline = `query($first: Int, $after: String, $id: ID!, $k: [TimelineKind!], $n: [String!], $since: Time) {
			profile(id: $id) { timeline(first: $first, after: $after, kinds: $k, names: $n, since: $since) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }`
		const segment = `query($first: Int, $after: String, $id: ID!) {
			segment(id: $id) { members(first: $first, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }`
		const history = `query($first: Int, $after: String, $id: ID!) {
			segment(id: $id) { history(first: $first, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }`
		const segments = `query($first: Int, $after: String) { segments(first: $first, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }`
		const consentLog = `query($first: Int, $after: String, $id: ID!) {
			profile(id: $id) { consentHistory(first: $first, after: $after) { totalCount nodes { recordedAt } pageInfo { hasNextPage endCursor } } } }`

		for _, c := range []struct {
			name  string
			query string
			vars  map[string]any
			path  []string
			want  int
		}{
			{"profiles", profiles, nil, []string{"profiles"}, 3},
			{"profiles by last seen", profiles, map[string]any{"o": "LAST_SEEN_AT_DESC"}, []string{"profiles"}, 3},
			{"profiles searched: distinct people", profiles, map[string]any{"q": "an"}, []string{"profiles"}, 2},
			{"profiles searched: none", profiles, map[string]any{"q": "zz"}, []string{"profiles"}, 0},
			{"profiles by score range", profiles, map[string]any{"f": []any{map[string]any{"score": "ORDERS", "min": 2}}}, []string{"profiles"}, 2},
			{"timeline", timeline, map[string]any{"id": ana.ID}, []string{"profile", "timeline"}, 6},
			{"timeline by name", timeline, map[string]any{"id": ana.ID, "n": []string{"order_completed"}}, []string{"profile", "timeline"}, 2},
			{"timeline by kind", timeline, map[string]any{"id": ana.ID, "k": []string{"INTERACTION"}}, []string{"profile", "timeline"}, 1},
			{"timeline by name and time", timeline, map[string]any{"id": ana.ID, "n": []string{"page_viewed"}, "since": now.Add(90 * time.Second).Format(time.RFC3339Nano)}, []string{"profile", "timeline"}, 2},
			{"timeline by time", timeline, map[string]any{"id": ana.ID, "since": now.Add(90 * time.Second).Format(time.RFC3339Nano)}, []string{"profile", "timeline"}, 4},
			{"segments", segments, nil, []string{"segments"}, 2},
			{"segment members", segment, map[string]any{"id": pro.ID}, []string{"segment", "members"}, 1},
			{"segment history", history, map[string]any{"id": pro.ID}, []string{"segment", "history"}, 3},
			{"consent log", consentLog, map[string]any{"id": ana.ID}, []string{"profile", "consentHistory"}, 3},
		} {
			t.Run(c.name, func(t *testing.T) {
				nodes, total := pageThrough(t, s, tok, c.query, c.vars, c.path...)
				if total != c.want {
					t.Fatalf("totalCount %d, want %d", total, c.want)
				}
				if nodes != total {
					t.Fatalf("paging returned %d, totalCount %d", nodes, total)
				}
			})
		}
	})
}

// waitSegmentReady waits until the segment's build is READY.
func waitSegmentReady(t *testing.T, s *testServer, tok, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.gql(t, tok, `query($id: ID!) { segment(id: $id) { build { status } } }`, map[string]any{"id": id})
		r.requireOK(t)
		var got struct {
			Segment struct{ Build struct{ Status string } }
		}
		r.decode(t, &got)
		if got.Segment.Build.Status == "READY" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s still %s after 30 s", id, got.Segment.Build.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
