package main

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// A filtered timeline read scans a bounded number of stored items per page
// (5,000), so a page can come back empty with hasNextPage: true (issue
// 15.2). Its endCursor is then where the scan stopped, past the last edge
// (the resolver's timelineEndCursor): following it reaches the matching
// items beyond, and it is a timeline cursor, which other lists refuse.
// Paging past the cap itself is tested in internal/timeline.
//
// SQLite only: writing the 5,100 items to one profile on the embedded
// FerretDB takes many minutes, and keyset paging on the MongoDB engine is
// covered by TestE2ETimelinePagination.
func TestE2ETimelineFilterPastScanCap(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	top := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	// Newest first: 2 "wanted", 5,100 "noise", 3 "wanted".
	runs := []struct {
		name string
		n    int
	}{{"wanted", 2}, {"noise", 5100}, {"wanted", 3}}
	var batch []any
	var want []string
	i := 0
	for _, r := range runs {
		for range r.n {
			msg := fmt.Sprintf("gap-%04d", i)
			if r.name == "wanted" {
				want = append(want, msg)
			}
			batch = append(batch, map[string]any{"messageId": msg, "identifiers": ids("userId", "gappy"), "name": r.name,
				"occurredAt": top.Add(-time.Duration(i) * time.Second).Format(time.RFC3339)})
			i++
		}
	}
	for i := 0; i < len(batch); i += 500 {
		s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`,
			map[string]any{"in": batch[i:min(i+500, len(batch))]}).requireOK(t)
	}
	p := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": "userId", "value": "gappy"}})

	type page struct {
		ids         []string
		edgeCursors []string
		hasNext     bool
		endCursor   string
	}
	read := func(after any) page {
		r := s.gql(t, tok, `query($id: ID, $after: String) { profile(id: $id) { timeline(first: 10, after: $after, names: ["wanted"]) { edges { cursor node { messageId } } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"id": p.ID, "after": after})
		r.requireOK(t)
		var out struct{ Profile gqlProfile }
		r.decode(t, &out)
		tl := out.Profile.Timeline
		pg := page{hasNext: tl.PageInfo.HasNextPage, endCursor: tl.PageInfo.EndCursor}
		for _, e := range tl.Edges {
			pg.ids = append(pg.ids, e.Node.MessageID)
			pg.edgeCursors = append(pg.edgeCursors, e.Cursor)
		}
		return pg
	}

	// The first page is cut short: its endCursor is past its last edge.
	first := read(nil)
	if !reflect.DeepEqual(first.ids, want[:2]) || !first.hasNext || first.endCursor == "" || first.endCursor == first.edgeCursors[1] {
		t.Fatalf("first page %v hasNextPage %v endCursor %q, want %v, true and a position past its last edge",
			first.ids, first.hasNext, first.endCursor, want[:2])
	}
	// From its last edge (any edge cursor is a valid after), the next
	// page scans only noise: empty, yet it says where to continue.
	empty := read(first.edgeCursors[1])
	if len(empty.ids) != 0 || !empty.hasNext || empty.endCursor == "" {
		t.Fatalf("page over the noise: %v hasNextPage %v endCursor %q; want none, true and a position", empty.ids, empty.hasNext, empty.endCursor)
	}
	rest := read(empty.endCursor)
	if !reflect.DeepEqual(rest.ids, want[2:]) || rest.hasNext {
		t.Fatalf("after the empty page: %v hasNextPage %v, want %v and false", rest.ids, rest.hasNext, want[2:])
	}
	// The resume cursor is a timeline cursor like any other: another
	// list refuses it.
	r := s.gql(t, tok, `query($after: String) { profiles(first: 1, after: $after) { nodes { id } } }`, map[string]any{"after": empty.endCursor})
	r.requireError(t, 0, "BAD_USER_INPUT")
}
