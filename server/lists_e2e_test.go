package main

import (
	"testing"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

type listPage struct {
	Profiles struct {
		TotalCount int
		Nodes      []struct {
			ID     string
			Traits map[string]any
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

const adHocList = `query($f: SegmentRuleInput, $s: ProfileSortInput, $first: Int, $after: String) {
  profiles(filter: $f, sortBy: $s, first: $first, after: $after) { totalCount nodes { id traits } pageInfo { hasNextPage endCursor } } }`

// TestE2EAdHocListsAndIdentifierNodes drives the CRM list view and the
// identifier rule node through GraphQL on every engine: "known people
// with an email" (emails are identifiers, not traits) sorted by a trait
// and paged with totalCount; the same node in a saved segment, which a
// new email enters at once; and the refusals.
func TestE2EAdHocListsAndIdentifierNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		// Three known people with seats 5, 20, 12; two anonymous visitors,
		// one with more seats than anyone.
		ann, _ := identify(t, s, tok, ids("email", "ann@acme.test"), map[string]any{"seats": 5})
		bob, _ := identify(t, s, tok, ids("email", "bob@acme.test"), map[string]any{"seats": 20})
		cid, _ := identify(t, s, tok, ids("email", "cid@acme.test"), map[string]any{"seats": 12, "plan": "pro"})
		visitor, _ := identify(t, s, tok, ids("anonymousId", "v-1"), map[string]any{"seats": 99})
		identify(t, s, tok, ids("anonymousId", "v-2"), nil)

		email := map[string]any{"identifier": map[string]any{"type": "email"}}
		bySeats := map[string]any{"by": "TRAIT", "trait": "seats", "direction": "DESC"}
		var got []string
		var after any
		for {
			r := s.gql(t, tok, adHocList, map[string]any{"f": email, "s": bySeats, "first": 2, "after": after})
			r.requireOK(t)
			var page listPage
			r.decode(t, &page)
			if page.Profiles.TotalCount != 3 {
				t.Fatalf("totalCount %d, want the 3 people with an email: %s", page.Profiles.TotalCount, r.Body)
			}
			for _, n := range page.Profiles.Nodes {
				got = append(got, n.ID)
			}
			if !page.Profiles.PageInfo.HasNextPage {
				break
			}
			after = *page.Profiles.PageInfo.EndCursor
		}
		if want := []string{bob.ID, cid.ID, ann.ID}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("known people by seats: %v, want %v", got, want)
		}
		// A trait node on email finds no one: that is what the identifier
		// node is for.
		r := s.gql(t, tok, `{ traitNode: segmentPreview(rule: {trait: {key: "email", op: EXISTS}}) { count }
		  identifierNode: segmentPreview(rule: {identifier: {type: "email"}}) { count }
		  anonymous: profiles(filter: {identifier: {type: "email", exists: false}}, sortBy: {by: TRAIT, trait: "seats", direction: ASC}) { totalCount nodes { id } } }`, nil)
		r.requireOK(t)
		var pv struct {
			TraitNode, IdentifierNode struct{ Count int }
			Anonymous                 struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
		}
		r.decode(t, &pv)
		if pv.TraitNode.Count != 0 || pv.IdentifierNode.Count != 3 || pv.Anonymous.TotalCount != 2 || pv.Anonymous.Nodes[0].ID != visitor.ID {
			t.Fatalf("previews and the anonymous list (seats ascending, the one without seats last): %s", r.Body)
		}

		// Saved, the node is kept up to date: the visitor who gives an
		// email enters at once.
		seg := createSegment(t, s, tok, map[string]any{"name": "known with email", "rule": email})
		if seg.Size != 3 {
			t.Fatalf("segment size %d, want 3", seg.Size)
		}
		identify(t, s, tok, append(ids("anonymousId", "v-1"), ids("email", "vi@acme.test")...), nil)
		r = s.gql(t, tok, `query($id: ID!) { segment(id: $id) { size history { nodes { kind profile { id } } } } }`, map[string]any{"id": seg.ID})
		r.requireOK(t)
		var sg struct {
			Segment struct {
				Size    int
				History struct {
					Nodes []struct {
						Kind    string
						Profile struct{ ID string }
					}
				}
			}
		}
		r.decode(t, &sg)
		if sg.Segment.Size != 4 || sg.Segment.History.Nodes[0].Kind != "ENTERED" || sg.Segment.History.Nodes[0].Profile.ID != visitor.ID {
			t.Fatalf("after the visitor's email: %s", r.Body)
		}

		// Plain fields, and a filter sorted by orderBy.
		r = s.gql(t, tok, `{ byCount: profiles(sortBy: {by: EVENT_COUNT}, first: 1) { totalCount }
		  oldest: profiles(filter: {trait: {key: "plan", op: EQ, value: "pro"}}, orderBy: CREATED_AT_ASC) { totalCount nodes { id } } }`, nil)
		r.requireOK(t)
		var pl struct {
			ByCount struct{ TotalCount int }
			Oldest  struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
		}
		r.decode(t, &pl)
		if pl.ByCount.TotalCount != 5 || pl.Oldest.TotalCount != 1 || pl.Oldest.Nodes[0].ID != cid.ID {
			t.Fatalf("sortBy alone and filter with orderBy: %s", r.Body)
		}
	})
}

// TestE2EAdHocListRefusals: bad arguments name their field; a PII sort,
// and an inSegment filter, need their scopes.
func TestE2EAdHocListRefusals(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	identify(t, s, tok, ids("email", "ann@acme.test"), map[string]any{"seats": 5, "email": "ann@acme.test"})
	identify(t, s, tok, ids("email", "bob@acme.test"), map[string]any{"seats": 7})
	r := s.gql(t, tok, `{ profiles(sortBy: {by: TRAIT, trait: "seats"}, first: 1) { pageInfo { endCursor } } }`, nil)
	r.requireOK(t)
	var first struct {
		Profiles struct{ PageInfo struct{ EndCursor string } }
	}
	r.decode(t, &first)
	cursor := first.Profiles.PageInfo.EndCursor

	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"search and filter", `{ profiles(search: "ann", filter: {identifier: {type: "email"}}) { totalCount } }`, nil, "BAD_USER_INPUT", "search"},
		{"byScore and sortBy", `{ profiles(byScore: {score: ENGAGEMENT}, sortBy: {by: CREATED_AT}) { totalCount } }`, nil, "BAD_USER_INPUT", "byScore"},
		{"scoreFilter and filter", `{ profiles(scoreFilter: [{score: ORDERS, min: 1}], filter: {identifier: {type: "email"}}) { totalCount } }`, nil, "BAD_USER_INPUT", "scoreFilter"},
		{"trait sort without a trait", `{ profiles(sortBy: {by: TRAIT}) { totalCount } }`, nil, "BAD_USER_INPUT", "sortBy.trait"},
		{"score sort without a score", `{ profiles(sortBy: {by: SCORE}) { totalCount } }`, nil, "BAD_USER_INPUT", "sortBy.score"},
		{"a trait for another field", `{ profiles(sortBy: {by: EVENT_COUNT, trait: "seats"}) { totalCount } }`, nil, "BAD_USER_INPUT", "sortBy.trait"},
		{"not a path", `{ profiles(sortBy: {by: TRAIT, trait: "a..b"}) { totalCount } }`, nil, "BAD_USER_INPUT", "sortBy.trait"},
		{"unknown identifier type", `{ profiles(filter: {identifier: {type: "fax"}}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.identifier.type"},
		{"two kinds in a node", `{ profiles(filter: {identifier: {type: "email"}, trait: {key: "a", op: EXISTS}}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter"},
		{"an empty node", `{ profiles(filter: {}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter"},
		{"a cursor of another order", `query($a: String) { profiles(sortBy: {by: TRAIT, trait: "seats", direction: ASC}, after: $a) { totalCount } }`, map[string]any{"a": cursor}, "BAD_USER_INPUT", "after"},
		{"a cursor of the plain list", `query($a: String) { profiles(after: $a) { totalCount } }`, map[string]any{"a": cursor}, "BAD_USER_INPUT", "after"},
		{"a forged cursor", `{ profiles(sortBy: {by: TRAIT, trait: "seats"}, after: "aTRAIT-seats.x~q!!") { totalCount } }`, nil, "BAD_USER_INPUT", "after"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, c.vars)
			r.requireError(t, 0, c.code)
			if f, _ := r.Errors[0].Extensions["field"].(string); f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}

	// Without pii:read: sorting or filtering on a PII trait is refused
	// (its order would reveal the values); the identifier node is not
	// (it reads which types are held, never a value).
	masked := s.token(t, "acme", allBut(auth.ScopePIIRead)...)
	r = s.gql(t, masked, `{ profiles(sortBy: {by: TRAIT, trait: "email"}) { totalCount } }`, nil)
	r.requireError(t, 0, "FORBIDDEN")
	r = s.gql(t, masked, `{ profiles(filter: {trait: {key: "email", op: STARTS_WITH, value: "a"}}) { totalCount } }`, nil)
	r.requireError(t, 0, "FORBIDDEN")
	r = s.gql(t, masked, `{ profiles(filter: {identifier: {type: "email"}}, sortBy: {by: TRAIT, trait: "seats"}) { totalCount } }`, nil)
	r.requireOK(t)
	// Without segments:read, membership is not readable through a filter.
	seg := createSegment(t, s, tok, map[string]any{"name": "all", "kind": "STATIC"})
	noSeg := s.token(t, "acme", allBut(auth.ScopeSegmentsRead)...)
	r = s.gql(t, noSeg, `query($s: ID!) { profiles(filter: {inSegment: $s}) { totalCount } }`, map[string]any{"s": seg.ID})
	r.requireError(t, 0, "FORBIDDEN")
}
