package main

// Identity resolution (issue 5) through GraphQL, on both engines: that
// identify's payload, mergeProfiles, unmergeProfile and Profile.merges
// carry what the domain decided, and their errors' codes. The rules
// themselves (stitching, conflicts, limits, merge and unmerge outcomes,
// the merge cap) are tested in internal/identity.

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

const identifyFull = `mutation($in: IdentifyInput!) { identify(input: $in) { created mergedProfileIds conflicts { type values profileIds } profile { id } } }`

type identifyResult struct {
	Created          bool
	MergedProfileIds []string
	Conflicts        []struct {
		Type       string
		Values     []string
		ProfileIds []string
	}
	Profile struct{ ID string }
}

func identifyAll(t *testing.T, s *testServer, tok string, identifiers []map[string]any, traits map[string]any) identifyResult {
	t.Helper()
	r := s.gql(t, tok, identifyFull, map[string]any{"in": map[string]any{"identifiers": identifiers, "traits": traits}})
	r.requireOK(t)
	var out struct{ Identify identifyResult }
	r.decode(t, &out)
	return out.Identify
}

// A refused merge comes back in identify's conflicts, and in both
// profiles' merges as a CONFLICT record.
func TestE2EIdentifyReportsConflicts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		a := identifyAll(t, s, tok, ids("anonymousId", "family-tablet", "userId", "alice"), map[string]any{"firstName": "Alice"})
		if !a.Created || a.MergedProfileIds == nil || len(a.MergedProfileIds) != 0 || a.Conflicts == nil {
			t.Fatalf("first identify = %+v, want created with empty lists", a)
		}
		b := identifyAll(t, s, tok, ids("anonymousId", "family-tablet", "userId", "bob"), map[string]any{"firstName": "Bob"})
		if b.Profile.ID == a.Profile.ID || len(b.MergedProfileIds) != 0 {
			t.Fatalf("second identify = %+v", b)
		}
		if len(b.Conflicts) != 1 || b.Conflicts[0].Type != "userId" || !reflect.DeepEqual(slices.Sorted(slices.Values(b.Conflicts[0].Values)), []string{"alice", "bob"}) {
			t.Fatalf("conflicts = %+v", b.Conflicts)
		}
		if !slices.Contains(b.Conflicts[0].ProfileIds, a.Profile.ID) || !slices.Contains(b.Conflicts[0].ProfileIds, b.Profile.ID) {
			t.Fatalf("conflict profiles %v, want %s and %s", b.Conflicts[0].ProfileIds, a.Profile.ID, b.Profile.ID)
		}
		for _, id := range []string{a.Profile.ID, b.Profile.ID} {
			r := s.gql(t, tok, `query($id: ID) { profile(id: $id) { merges { kind conflicts { type values } } } }`, map[string]any{"id": id})
			r.requireOK(t)
			if !strings.Contains(string(r.Data), `"kind":"CONFLICT"`) || !strings.Contains(string(r.Data), `"userId"`) {
				t.Fatalf("history of %s lacks the conflict: %s", id, r.Data)
			}
		}
	})
}

// mergeProfiles and unmergeProfile: their payloads, the history fields,
// and the codes of their errors (the scope included).
func TestE2EManualMergeThenUnmerge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		a := identifyAll(t, s, tok, ids("email", "pat@example.com", "anonymousId", "pat-anon"), map[string]any{"plan": "free"})
		b := identifyAll(t, s, tok, ids("email", "kai@example.com", "deviceId", "kai-phone"), map[string]any{"plan": "pro"})

		r := s.gql(t, tok, `mutation($s: ID!, $t: ID!) { mergeProfiles(sourceId: $s, targetId: $t, reason: " same person, agent confirmed ") { id traits mergedFrom merges { id kind actor reason sourceId targetId identifiers { type value } traits { key winner } } } }`,
			map[string]any{"s": a.Profile.ID, "t": b.Profile.ID})
		r.requireOK(t)
		var m struct {
			MergeProfiles struct {
				ID         string
				Traits     map[string]any
				MergedFrom []string
				Merges     []struct {
					ID, Kind, Actor, Reason, SourceID, TargetID string
					Identifiers                                 []gqlIdentifier
					Traits                                      []struct{ Key, Winner string }
				}
			}
		}
		r.decode(t, &m)
		mp := m.MergeProfiles
		if mp.ID != a.Profile.ID || !slices.Contains(mp.MergedFrom, b.Profile.ID) || mp.Traits["plan"] != "pro" {
			t.Fatalf("merge result %+v", mp)
		}
		if len(mp.Merges) == 0 || mp.Merges[0].Kind != "MERGE" || mp.Merges[0].Actor != "test" || mp.Merges[0].Reason != "same person, agent confirmed" ||
			mp.Merges[0].SourceID != b.Profile.ID || mp.Merges[0].TargetID != a.Profile.ID || len(mp.Merges[0].Identifiers) != 2 || len(mp.Merges[0].Traits) == 0 {
			t.Fatalf("history %+v", mp.Merges)
		}
		if p := getProfile(t, s, tok, map[string]any{"id": b.Profile.ID}); p == nil || p.ID != a.Profile.ID {
			t.Fatalf("merged-away id resolves to %+v", p)
		}

		const unmerge = `mutation($m: ID!) { unmergeProfile(mergeId: $m) { restored { id } survivor { id } record { id kind status mergeId } } }`
		r = s.gql(t, tok, unmerge, map[string]any{"m": mp.Merges[0].ID})
		r.requireOK(t)
		var u struct {
			UnmergeProfile struct {
				Restored, Survivor struct{ ID string }
				Record             struct{ ID, Kind, Status, MergeID string }
			}
		}
		r.decode(t, &u)
		if got := u.UnmergeProfile; got.Restored.ID != b.Profile.ID || got.Survivor.ID != a.Profile.ID || got.Record.Kind != "UNMERGE" || got.Record.MergeID != mp.Merges[0].ID {
			t.Fatalf("unmerge = %+v", got)
		}
		r = s.gql(t, tok, `query($id: ID) { profile(id: $id) { merges { kind status undoneAt } } }`, map[string]any{"id": a.Profile.ID})
		r.requireOK(t)
		var h struct {
			Profile struct {
				Merges []struct {
					Kind, Status string
					UndoneAt     *string
				}
			}
		}
		r.decode(t, &h)
		kinds := map[string]bool{}
		for _, rec := range h.Profile.Merges {
			kinds[rec.Kind] = true
			if rec.Kind == "MERGE" && (rec.Status != "undone" || rec.UndoneAt == nil) {
				t.Fatalf("the merge after its unmerge: %s", r.Data)
			}
		}
		if !kinds["MERGE"] || !kinds["UNMERGE"] {
			t.Fatalf("history after unmerge: %s", r.Data)
		}
		// Bad input.
		s.gql(t, tok, `mutation { unmergeProfile(mergeId: "nope") { record { id } } }`, nil).requireError(t, 0, "NOT_FOUND")
		s.gql(t, tok, `mutation($a: ID!) { mergeProfiles(sourceId: $a, targetId: $a) { id } }`, map[string]any{"a": a.Profile.ID}).requireError(t, 0, "BAD_USER_INPUT")
		s.gql(t, tok, `mutation($a: ID!) { mergeProfiles(sourceId: $a, targetId: "nope") { id } }`, map[string]any{"a": a.Profile.ID}).requireError(t, 0, "NOT_FOUND")
		ro := s.token(t, "acme", "profiles:read")
		s.gql(t, ro, `mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { id } }`, map[string]any{"a": a.Profile.ID, "b": b.Profile.ID}).requireError(t, 0, "FORBIDDEN")
	})
}
