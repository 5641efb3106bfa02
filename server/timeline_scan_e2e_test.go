package main

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// A filtered timeline read scans a bounded number of stored items per page
// (5,000). Over a longer run of non-matching items a page can come back
// short or even empty with hasNextPage: true; its endCursor must then say
// where to continue, so a client following endCursor reaches every
// matching item (issue 15.2).
//
// SQLite only: the scan cap is domain code above the store, and keyset
// paging on the MongoDB engine is covered by TestE2ETimelinePagination,
// while writing the 5,100 items to one profile on the embedded FerretDB
// takes many minutes (20 s and more per batch of 500, growing).
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
	// walk follows endCursor from after while hasNextPage; it returns
	// the items seen and the endCursor of an empty page, if any.
	walk := func(after any) (got []string, emptyCursor string) {
		for pages := 1; ; pages++ {
			if pages > 20 {
				t.Fatalf("pagination does not end; got %v", got)
			}
			pg := read(after)
			got = append(got, pg.ids...)
			if !pg.hasNext {
				return got, emptyCursor
			}
			if pg.endCursor == "" {
				t.Fatalf("page %d (%d edges) says hasNextPage but has no endCursor; got %v so far, want %v",
					pages, len(pg.ids), got, want)
			}
			if pg.endCursor == after {
				t.Fatalf("page %d does not move: endCursor %q is its after", pages, after)
			}
			if len(pg.ids) == 0 {
				emptyCursor = pg.endCursor
			}
			after = pg.endCursor
		}
	}

	// From the top, following endCursor.
	if got, _ := walk(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("followed endCursor to\n %v\nwant %v", got, want)
	}
	// From the last edge of the first page (any edge cursor is a valid
	// after): the next page scans only noise, so it is empty, and its
	// endCursor carries the client past the noise.
	first := read(nil)
	if !reflect.DeepEqual(first.ids, want[:2]) || !first.hasNext {
		t.Fatalf("first page %v hasNextPage %v, want %v and true", first.ids, first.hasNext, want[:2])
	}
	got, emptyCursor := walk(first.edgeCursors[1])
	if !reflect.DeepEqual(got, want[2:]) {
		t.Fatalf("followed endCursor from %s to\n %v\nwant %v", want[1], got, want[2:])
	}
	if emptyCursor == "" {
		t.Fatal("setup: no page was empty, so the run of noise did not reach past the scan cap")
	}
	// The resume cursor is a timeline cursor like any other: another
	// list refuses it.
	r := s.gql(t, tok, `query($after: String) { profiles(first: 1, after: $after) { nodes { id } } }`, map[string]any{"after": emptyCursor})
	r.requireError(t, 0, "BAD_USER_INPUT")
}
