package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const segmentFields = `id name kind status rule size version`

type gqlSegment struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	Status  string         `json:"status"`
	Rule    map[string]any `json:"rule"`
	Size    int            `json:"size"`
	Version int            `json:"version"`
}

func createSegment(t *testing.T, s *testServer, tok string, in map[string]any) gqlSegment {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { `+segmentFields+` } }`, map[string]any{"in": in})
	r.requireOK(t)
	var out struct{ CreateSegment gqlSegment }
	r.decode(t, &out)
	return out.CreateSegment
}

// The segment mutations and queries over HTTP on every engine: each is
// wired, maps its input and output, pages its connections and answers
// GraphQL error codes. What they do to memberships (previews, nested
// segments, trait changes, static lists, archiving, refusals) is tested
// in internal/segment.
func TestE2ESegments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		now := time.Now().UTC()
		// Two orders for a, one for b.
		a, _ := track(t, s, tok, "o1", ids("anonymousId", "a"), "order", now.Add(-time.Minute))
		track(t, s, tok, "o2", ids("anonymousId", "a"), "order", now)
		b, _ := track(t, s, tok, "o3", ids("anonymousId", "b"), "order", now)

		rule := map[string]any{"event": map[string]any{"name": "order", "count": map[string]any{"op": "GTE", "value": 2}, "window": map[string]any{"last": map[string]any{"amount": 7, "unit": "DAYS"}}}}
		// Preview saves nothing.
		r := s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count sample { id } } }`, map[string]any{"r": rule})
		r.requireOK(t)
		var pv struct {
			SegmentPreview struct {
				Count  int
				Sample []struct{ ID string }
			}
		}
		r.decode(t, &pv)
		if pv.SegmentPreview.Count != 1 || len(pv.SegmentPreview.Sample) != 1 || pv.SegmentPreview.Sample[0].ID != a {
			t.Fatalf("preview %+v, want only %s", pv.SegmentPreview, a)
		}

		seg := createSegment(t, s, tok, map[string]any{"name": "repeat buyers", "rule": rule})
		if seg.Kind != "DYNAMIC" || seg.Status != "ACTIVE" || seg.Size != 1 || seg.Version != 1 || seg.Rule["event"] == nil {
			t.Fatalf("created %+v", seg)
		}
		// b's second order: b enters while the track is ingested.
		track(t, s, tok, "o4", ids("anonymousId", "b"), "order", now)
		r = s.gql(t, tok, `query($id: ID!) { segment(id: $id) { size members(first: 1) { edges { cursor enteredAt node { id } } pageInfo { hasNextPage endCursor } }
			history { nodes { kind cause profile { id } segment { name } } } } }`, map[string]any{"id": seg.ID})
		r.requireOK(t)
		var got struct {
			Segment struct {
				Size    int
				Members struct {
					Edges []struct {
						Cursor string
						Node   struct{ ID string }
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
				History struct {
					Nodes []struct {
						Kind, Cause string
						Profile     struct{ ID string }
						Segment     struct{ Name string }
					}
				}
			}
		}
		r.decode(t, &got)
		sg := got.Segment
		if sg.Size != 2 || len(sg.Members.Edges) != 1 || !sg.Members.PageInfo.HasNextPage || sg.Members.Edges[0].Node.ID != b {
			t.Fatalf("segment after track: %s", r.Data)
		}
		if len(sg.History.Nodes) != 2 || sg.History.Nodes[0].Kind != "ENTERED" || sg.History.Nodes[0].Cause != "track" ||
			sg.History.Nodes[0].Profile.ID != b || sg.History.Nodes[1].Cause != "segment.created" || sg.History.Nodes[0].Segment.Name != "repeat buyers" {
			t.Fatalf("history: %s", r.Data)
		}
		// Second page of members.
		r = s.gql(t, tok, `query($id: ID!, $after: String) { segment(id: $id) { members(first: 5, after: $after) { nodes { id } pageInfo { hasNextPage } } } }`,
			map[string]any{"id": seg.ID, "after": sg.Members.PageInfo.EndCursor})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), a) || strings.Contains(string(r.Data), b) {
			t.Fatalf("second page: %s", r.Data)
		}
		// Profile.segments.
		r = s.gql(t, tok, `query($id: ID) { profile(id: $id) { segments { enteredAt segment { id name } } } }`, map[string]any{"id": a})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"name":"repeat buyers"`) {
			t.Fatalf("profile segments: %s", r.Data)
		}

		// Static segment, archive, list.
		r = s.gql(t, tok, `mutation { createSegment(input: {name: "vips", kind: STATIC}) { id } }`, nil)
		r.requireOK(t)
		var st struct{ CreateSegment struct{ ID string } }
		r.decode(t, &st)
		r = s.gql(t, tok, `mutation($s: ID!, $p: [ID!]!) { addToStaticSegment(segmentId: $s, profileIds: $p) { size } }`, map[string]any{"s": st.CreateSegment.ID, "p": []string{a, b}})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"size":2`) {
			t.Fatalf("static add: %s", r.Data)
		}
		r = s.gql(t, tok, `mutation($s: ID!, $p: [ID!]!) { removeFromStaticSegment(segmentId: $s, profileIds: $p) { size } }`, map[string]any{"s": st.CreateSegment.ID, "p": []string{a}})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"size":1`) {
			t.Fatalf("static remove: %s", r.Data)
		}
		// By identifier: an unknown one refuses the whole call.
		const byIdent = `mutation($s: ID!, $i: [IdentifierInput!]) { addToStaticSegment(segmentId: $s, identifiers: $i) { size } }`
		s.gql(t, tok, byIdent, map[string]any{"s": st.CreateSegment.ID, "i": append(ids("anonymousId", "a"), ids("email", "nobody@example.com")...)}).requireError(t, 0, "NOT_FOUND")
		r = s.gql(t, tok, byIdent, map[string]any{"s": st.CreateSegment.ID, "i": ids("anonymousId", "a")})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"size":2`) {
			t.Fatalf("static add by identifier: %s", r.Data)
		}
		r = s.gql(t, tok, `mutation($s: ID!, $i: [IdentifierInput!]) { removeFromStaticSegment(segmentId: $s, identifiers: $i) { size } }`,
			map[string]any{"s": st.CreateSegment.ID, "i": ids("anonymousId", "a")})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"size":1`) {
			t.Fatalf("static remove by identifier: %s", r.Data)
		}
		s.gql(t, tok, `mutation($s: ID!) { addToStaticSegment(segmentId: $s) { size } }`, map[string]any{"s": st.CreateSegment.ID}).requireError(t, 0, "BAD_USER_INPUT")
		r = s.gql(t, tok, `mutation($id: ID!) { archiveSegment(id: $id) { status } }`, map[string]any{"id": seg.ID})
		r.requireOK(t)
		r = s.gql(t, tok, `query($id: ID!) { segment(id: $id) { status size } segments(first: 10) { nodes { name } } }`, map[string]any{"id": seg.ID})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"status":"ARCHIVED","size":2`) || !strings.Contains(string(r.Data), `"vips"`) {
			t.Fatalf("archived: %s", r.Data)
		}
	})
}

func TestE2ESegmentBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	field := func(r gqlResponse) string {
		for _, e := range r.Errors {
			if f, ok := e.Extensions["field"].(string); ok {
				return f
			}
		}
		return ""
	}
	create := `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id } }`
	// The rule tree's shape is checked in GraphQL terms (one field per
	// node); the domain's refusals (TestCreateRefusals in internal/segment)
	// answer with their field too, as the last case shows.
	cases := []struct {
		in    map[string]any
		field string
	}{
		{map[string]any{"name": "x", "rule": map[string]any{}}, "input.rule"},
		{map[string]any{"name": "x", "rule": map[string]any{"and": []any{map[string]any{"trait": map[string]any{"key": "a", "op": "EQ", "value": 1}, "inSegment": "s"}}}}, "input.rule.and[0]"},
		{map[string]any{"name": "x", "rule": map[string]any{"event": map[string]any{"name": "o", "window": map[string]any{"last": map[string]any{"amount": 0, "unit": "DAYS"}}}}}, "input.rule.event.window"},
	}
	for _, c := range cases {
		r := s.gql(t, tok, create, map[string]any{"in": c.in})
		r.requireError(t, 0, "BAD_USER_INPUT")
		if f := field(r); !strings.HasPrefix(f, c.field) {
			t.Errorf("%v: field %q, want %q…: %s", c.in, f, c.field, r.Body)
		}
	}
	r := s.gql(t, tok, `query { segmentPreview(rule: {}) { count } }`, nil)
	r.requireError(t, 0, "BAD_USER_INPUT")
	if f := field(r); f != "rule" {
		t.Errorf("preview field %q", f)
	}
	// Writes need segments:write; reads need segments:read.
	ro := s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeSegmentsRead)
	r = s.gql(t, ro, `mutation { createSegment(input: {name: "x", kind: STATIC}) { id } }`, nil)
	r.requireError(t, 0, "FORBIDDEN")
	r = s.gql(t, ro, `query { segments { nodes { id } } }`, nil)
	r.requireOK(t)
	// Unique names.
	createSegment(t, s, tok, map[string]any{"name": "dup", "kind": "STATIC"})
	r = s.gql(t, tok, `mutation { createSegment(input: {name: "dup", kind: STATIC}) { id } }`, nil)
	r.requireError(t, 0, "CONFLICT")
}

// createSegment answers without waiting for the whole build
// (HALO_SEGMENT_BUILD_WAIT=0s here); segment.build reports its progress
// until READY, with every profile processed and the members complete.
func TestE2ESegmentBuildsInTheBackground(t *testing.T) {
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_SEGMENT_BUILD_WAIT": "0s"}})
	tok := s.token(t, "acme")
	const people = 300
	inputs := make([]map[string]any, 0, people)
	for i := 0; i < people; i++ {
		inputs = append(inputs, map[string]any{"messageId": "m" + strconv.Itoa(i), "identifiers": ids("anonymousId", "p"+strconv.Itoa(i)), "name": "order"})
	}
	s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": inputs[:100]}).requireOK(t)
	s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": inputs[100:200]}).requireOK(t)
	s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": inputs[200:]}).requireOK(t)

	type build struct {
		Status           string
		Processed, Total int
		FinishedAt       *time.Time
	}
	r := s.gql(t, tok, `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id build { status processed total finishedAt } } }`,
		map[string]any{"in": map[string]any{"name": "buyers", "rule": map[string]any{"event": map[string]any{"name": "order"}}}})
	r.requireOK(t)
	var created struct {
		CreateSegment struct {
			ID    string
			Build build
		}
	}
	r.decode(t, &created)
	if b := created.CreateSegment.Build; b.Status != "BUILDING" && b.Status != "READY" || b.Processed > b.Total || b.Total != people {
		t.Fatalf("createSegment answered build %+v, want BUILDING or READY over %d profiles", b, people)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.gql(t, tok, `query($id: ID!) { segment(id: $id) { size build { status processed total finishedAt } } }`, map[string]any{"id": created.CreateSegment.ID})
		r.requireOK(t)
		var got struct {
			Segment struct {
				Size  int
				Build build
			}
		}
		r.decode(t, &got)
		if b := got.Segment.Build; b.Status == "READY" {
			if b.Processed != people || b.Total != people || b.FinishedAt == nil || got.Segment.Size != people {
				t.Fatalf("ready build %+v, size %d, want %d of each", b, got.Segment.Size, people)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("build still %+v after 30 s", got.Segment.Build)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// segmentBuildProgress pushes a build's state over the websocket: at once
// (BUILDING), then its steps, then READY with every profile processed; an
// updateSegment's new build follows on the same subscription. Static
// lists and unknown or foreign segments are refused.
func TestE2ESegmentBuildProgressSubscription(t *testing.T) {
	// A build that counts a new feature first waits the settle (here 1 s,
	// as a server with other instances does): the subscription starts
	// while it is BUILDING.
	settle := time.Second
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_SEGMENT_BUILD_WAIT": "0s"}, Tune: func(c *Config) { c.segmentBuildSettle = &settle }})
	tok := s.token(t, "acme")
	const people = 700 // four pages of 200
	for i := 0; i < people; i += 100 {
		inputs := make([]map[string]any, 0, 100)
		for j := i; j < i+100; j++ {
			inputs = append(inputs, map[string]any{"messageId": "m" + strconv.Itoa(j), "identifiers": ids("anonymousId", "p"+strconv.Itoa(j)), "name": "order"})
		}
		s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { duplicates } }`, map[string]any{"in": inputs}).requireOK(t)
	}
	seg := createSegment(t, s, tok, map[string]any{"name": "buyers", "rule": map[string]any{"event": map[string]any{"name": "order"}}})
	c := connectWS(t, s, tok)
	const sub = `subscription($s: ID!) { segmentBuildProgress(segmentId: $s) { status processed total startedAt finishedAt } }`
	op := c.subscribe(t, sub, map[string]any{"s": seg.ID})
	type build struct {
		Status           string
		Processed, Total int
		StartedAt        time.Time
		FinishedAt       *time.Time
	}
	next := func() build {
		var got struct{ SegmentBuildProgress build }
		if err := json.Unmarshal(c.next(t, op, 30*time.Second), &got); err != nil {
			t.Fatal(err)
		}
		return got.SegmentBuildProgress
	}
	// untilReady reads states until a READY one of a build started after
	// after, and returns that build's start.
	untilReady := func(total int, after time.Time) time.Time {
		t.Helper()
		last := -1
		for {
			b := next()
			if !b.StartedAt.After(after) {
				continue // the previous build's last state, sent again
			}
			if b.Processed < last || b.Total < b.Processed {
				t.Fatalf("build went from %d processed to %+v", last, b)
			}
			last = b.Processed
			switch b.Status {
			case "BUILDING":
			case "READY":
				if b.Processed != total || b.Total != total || b.FinishedAt == nil {
					t.Fatalf("ready build %+v, want %d processed", b, total)
				}
				return b.StartedAt
			default:
				t.Fatalf("build %+v", b)
			}
		}
	}
	if first := next(); first.Status != "BUILDING" || first.Total != people {
		t.Fatalf("first state %+v, want BUILDING over %d profiles", first, people)
	}
	started := untilReady(people, time.Time{})

	// A new rule: its build (started later) comes on the same subscription.
	s.gql(t, tok, `mutation($id: ID!) { updateSegment(id: $id, input: {rule: {event: {name: "order", count: {op: GTE, value: 2}}}}) { id } }`,
		map[string]any{"id": seg.ID}).requireOK(t)
	untilReady(people, started)

	static := createSegment(t, s, tok, map[string]any{"name": "vip", "kind": "STATIC"})
	other := s.token(t, "globex")
	for _, tc := range []struct {
		name, tok, id, code string
	}{
		{"static list", tok, static.ID, "BAD_USER_INPUT"},
		{"unknown segment", tok, "no-such-segment", "NOT_FOUND"},
		{"other workspace's segment", other, seg.ID, "NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connectWS(t, s, tc.tok)
			c.subscribe(t, sub, map[string]any{"s": tc.id})
			if m := c.read(t, 5*time.Second); !opFailed(m, tc.code) {
				t.Fatalf("got %s %s, want %s", m.Type, m.Payload, tc.code)
			}
		})
	}
}
