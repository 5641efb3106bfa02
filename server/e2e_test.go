package main

// End-to-end tests of the walking skeleton: the real HTTP server, the real
// domain and storage, once on the embedded SQLite store and once on the
// MongoDB engine (embedded FerretDB standing in for a MongoDB server).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// engine says how to point a server at one storage engine.
type engine struct {
	name string
	// env returns environment for a fresh, empty store; calling it again
	// gives another one.
	env func(t *testing.T) map[string]string
}

func engines(t *testing.T) []engine {
	sqlite := engine{name: "sqlite", env: func(*testing.T) map[string]string { return nil }}
	if testing.Short() {
		return []engine{sqlite}
	}
	// FerretDB in-process, or a real MongoDB when HALO_TEST_MONGODB_URI is set.
	mongo := engine{name: "mongodb", env: func(t *testing.T) map[string]string {
		return map[string]string{"MONGODB_URI": freshMongoDatabase(t)}
	}}
	return []engine{sqlite, mongo}
}

// forEachEngine runs test against a fresh server on every engine.
func forEachEngine(t *testing.T, test func(t *testing.T, e engine)) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) { test(t, e) })
	}
}

const profileFields = `id eventCount traits createdAt firstSeenAt lastSeenAt mergedFrom identifiers { type value }`

type gqlProfile struct {
	ID          string            `json:"id"`
	EventCount  int               `json:"eventCount"`
	Traits      map[string]any    `json:"traits"`
	MergedFrom  []string          `json:"mergedFrom"`
	Identifiers []gqlIdentifier   `json:"identifiers"`
	Timeline    *gqlTimelineConn  `json:"timeline"`
	Extra       map[string]string `json:"-"`
}

type gqlIdentifier struct{ Type, Value string }

type gqlTimelineConn struct {
	Edges []struct {
		Cursor string `json:"cursor"`
		Node   struct {
			ID         string         `json:"id"`
			Name       string         `json:"name"`
			Kind       string         `json:"kind"`
			MessageID  string         `json:"messageId"`
			OccurredAt time.Time      `json:"occurredAt"`
			Properties map[string]any `json:"properties"`
		} `json:"node"`
	} `json:"edges"`
	PageInfo struct {
		HasNextPage bool   `json:"hasNextPage"`
		EndCursor   string `json:"endCursor"`
	} `json:"pageInfo"`
}

func ids(pairs ...string) []map[string]any {
	var out []map[string]any
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, map[string]any{"type": pairs[i], "value": pairs[i+1]})
	}
	return out
}

func identify(t *testing.T, s *testServer, tok string, identifiers []map[string]any, traits map[string]any) (p gqlProfile, merged []string) {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: IdentifyInput!) { identify(input: $in) { created mergedProfileIds profile { `+profileFields+` } } }`,
		map[string]any{"in": map[string]any{"identifiers": identifiers, "traits": traits}})
	r.requireOK(t)
	var out struct {
		Identify struct {
			Profile          gqlProfile `json:"profile"`
			MergedProfileIds []string   `json:"mergedProfileIds"`
		} `json:"identify"`
	}
	r.decode(t, &out)
	return out.Identify.Profile, out.Identify.MergedProfileIds
}

func track(t *testing.T, s *testServer, tok, messageID string, identifiers []map[string]any, name string, at time.Time) (profileID string, duplicate bool) {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { duplicate profile { id } event { id messageId } } }`,
		map[string]any{"in": map[string]any{"messageId": messageID, "identifiers": identifiers, "name": name, "occurredAt": at.Format(time.RFC3339Nano), "properties": map[string]any{"n": 1}}})
	r.requireOK(t)
	var out struct {
		Track struct {
			Duplicate bool `json:"duplicate"`
			Profile   struct{ ID string }
		}
	}
	r.decode(t, &out)
	return out.Track.Profile.ID, out.Track.Duplicate
}

func getProfile(t *testing.T, s *testServer, tok string, vars map[string]any) *gqlProfile {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID, $identifier: IdentifierInput) { profile(id: $id, identifier: $identifier) { `+profileFields+` } }`, vars)
	r.requireOK(t)
	var out struct{ Profile *gqlProfile }
	r.decode(t, &out)
	return out.Profile
}

// identify and profile(id:)/profile(identifier:)/profiles(search:)
// through GraphQL: traits as JSON, identifiers as a client spells them,
// null for nobody. Normalisation, trait patches and search terms are
// tested in internal/identity.
func TestE2EIdentifyAndReadBack(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		p, _ := identify(t, s, tok, ids("email", "  Ana.Costa@Example.COM ", "userId", "u-1", "phone", "+1 (555) 010-0000"),
			map[string]any{"firstName": "Ana", "plan": "pro", "address": map[string]any{"city": "Lisbon"}})
		if p.ID == "" || p.Traits["plan"] != "pro" || len(p.Identifiers) != 3 {
			t.Fatalf("identify returned %+v", p)
		}
		for _, v := range []map[string]any{
			{"id": p.ID},
			{"identifier": map[string]any{"type": "email", "value": "ANA.COSTA@example.com "}},
		} {
			got := getProfile(t, s, tok, v)
			if got == nil || got.ID != p.ID {
				t.Fatalf("profile(%v) = %+v, want %s", v, got, p.ID)
			}
			if len(got.Identifiers) != 3 || got.Traits["address"].(map[string]any)["city"] != "Lisbon" {
				t.Fatalf("profile(%v) = %+v", v, got)
			}
		}
		if got := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": "email", "value": "nobody@example.com"}}); got != nil {
			t.Fatalf("unknown identifier resolved to %+v", got)
		}
		r := s.gql(t, tok, `query($q: String) { profiles(search: $q) { nodes { id } } }`, map[string]any{"q": "ana.co"})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), p.ID) {
			t.Fatalf("search did not find the profile: %s", r.Data)
		}
	})
}

// track's and trackBatch's payloads say which inputs were duplicates
// (the rule is tested in internal/ingest and internal/timeline).
func TestE2EDuplicateMessageIDStoredOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		at := time.Now().Add(-time.Minute).UTC()
		pid, dup := track(t, s, tok, "same", ids("userId", "u9"), "page_viewed", at)
		if dup {
			t.Fatal("first track reported duplicate")
		}
		if pid2, dup := track(t, s, tok, "same", ids("userId", "u9"), "page_viewed", at); !dup || pid2 != pid {
			t.Fatalf("second track: duplicate=%v profile=%s", dup, pid2)
		}
		in := func(id string) map[string]any {
			return map[string]any{"messageId": id, "identifiers": ids("userId", "u9"), "name": "click"}
		}
		r := s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted duplicates results { messageId profileId duplicate } } }`,
			map[string]any{"in": []any{in("same"), in("b1"), in("b1"), in("b2")}})
		r.requireOK(t)
		var out struct {
			TrackBatch struct {
				Accepted, Duplicates int
				Results              []struct {
					MessageID, ProfileID string
					Duplicate            bool
				}
			}
		}
		r.decode(t, &out)
		tb := out.TrackBatch
		if tb.Accepted != 2 || tb.Duplicates != 2 || len(tb.Results) != 4 {
			t.Fatalf("batch = %s", r.Data)
		}
		for i, want := range []bool{true, false, true, false} {
			if res := tb.Results[i]; res.Duplicate != want || res.ProfileID != pid {
				t.Fatalf("result %d = %+v, want duplicate %v on %s", i, res, want, pid)
			}
		}
	})
}

// The timeline connection on both engines: following endCursor walks
// every item once, newest first (ties broken by id), and the filter
// arguments reach the read. Paging itself is tested in internal/timeline.
func TestE2ETimelinePagination(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
		var batch []any
		for i := 0; i < 12; i++ {
			// Pairs share a timestamp so ties are broken by id, not lost.
			at := base.Add(time.Duration(i/2) * time.Minute)
			batch = append(batch, map[string]any{"messageId": fmt.Sprintf("ev-%03d", i), "identifiers": ids("userId", "pager"),
				"name": "page_viewed", "occurredAt": at.Format(time.RFC3339), "properties": map[string]any{"i": i}})
		}
		s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": batch}).requireOK(t)
		p := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": "userId", "value": "pager"}})
		seen := map[string]bool{}
		var last time.Time
		after := any(nil)
		pages := 0
		for {
			r := s.gql(t, tok, `query($id: ID, $after: String) { profile(id: $id) { timeline(first: 5, after: $after) { edges { cursor node { id messageId occurredAt } } pageInfo { hasNextPage endCursor } } } }`,
				map[string]any{"id": p.ID, "after": after})
			r.requireOK(t)
			var out struct{ Profile gqlProfile }
			r.decode(t, &out)
			tl := out.Profile.Timeline
			pages++
			for _, e := range tl.Edges {
				if seen[e.Node.MessageID] {
					t.Fatalf("page %d repeats %s", pages, e.Node.MessageID)
				}
				seen[e.Node.MessageID] = true
				if !last.IsZero() && e.Node.OccurredAt.After(last) {
					t.Fatalf("not newest first: %s after %s", e.Node.OccurredAt, last)
				}
				last = e.Node.OccurredAt
			}
			if !tl.PageInfo.HasNextPage {
				break
			}
			if len(tl.Edges) != 5 || tl.PageInfo.EndCursor != tl.Edges[4].Cursor {
				t.Fatalf("page %d has %d items, endCursor %q", pages, len(tl.Edges), tl.PageInfo.EndCursor)
			}
			after = tl.PageInfo.EndCursor
		}
		if len(seen) != 12 || pages != 3 {
			t.Fatalf("walked %d events in %d pages, want 12 in 3", len(seen), pages)
		}
		// since/until, names and kinds filters.
		r := s.gql(t, tok, `query($id: ID, $since: Time, $until: Time) { profile(id: $id) { timeline(first: 100, since: $since, until: $until, names: ["page_viewed"], kinds: [EVENT]) { edges { node { messageId } } } } }`,
			map[string]any{"id": p.ID, "since": base.Add(2 * time.Minute).Format(time.RFC3339), "until": base.Add(4 * time.Minute).Format(time.RFC3339)})
		r.requireOK(t)
		var out struct{ Profile gqlProfile }
		r.decode(t, &out)
		if n := len(out.Profile.Timeline.Edges); n != 4 {
			t.Fatalf("window [2m,4m) has %d events, want 4", n)
		}
		for _, q := range []string{`names: ["other"]`, `kinds: [INTERACTION]`} {
			r := s.gql(t, tok, `query($id: ID) { profile(id: $id) { timeline(first: 100, `+q+`) { edges { node { messageId } } } } }`, map[string]any{"id": p.ID})
			r.requireOK(t)
			var out struct{ Profile gqlProfile }
			r.decode(t, &out)
			if n := len(out.Profile.Timeline.Edges); n != 0 {
				t.Fatalf("timeline(%s) has %d events, want 0", q, n)
			}
		}
	})
}

func TestE2ERestartKeepsData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		env := e.env(t)
		dir := t.TempDir()
		s := startServer(t, serverOptions{DataDir: dir, Env: env})
		tok := s.token(t, "acme")
		p, _ := identify(t, s, tok, ids("email", "keep@example.com"), map[string]any{"firstName": "Kept"})
		track(t, s, tok, "keep-1", ids("email", "keep@example.com"), "page_viewed", time.Now().Add(-time.Minute))
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		s2 := startServer(t, serverOptions{DataDir: dir, Env: env})
		got := getProfile(t, s2, s2.token(t, "acme"), map[string]any{"identifier": map[string]any{"type": "email", "value": "keep@example.com"}})
		if got == nil || got.ID != p.ID || got.EventCount != 1 || got.Traits["firstName"] != "Kept" {
			t.Fatalf("after restart: %+v", got)
		}
	})
}

func TestE2ETenantIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		a, b := s.token(t, "ws-a"), s.token(t, "ws-b")
		p, _ := identify(t, s, a, ids("email", "secret@example.com"), map[string]any{"name": "Secret Person"})
		track(t, s, a, "iso-1", ids("email", "secret@example.com"), "page_viewed", time.Now().Add(-time.Minute))
		if got := getProfile(t, s, b, map[string]any{"id": p.ID}); got != nil {
			t.Fatalf("workspace B read A's profile by id: %+v", got)
		}
		if got := getProfile(t, s, b, map[string]any{"identifier": map[string]any{"type": "email", "value": "secret@example.com"}}); got != nil {
			t.Fatalf("workspace B read A's profile by identifier: %+v", got)
		}
		r := s.gql(t, b, `{ profiles { nodes { id } } }`, nil)
		r.requireOK(t)
		if strings.Contains(string(r.Data), p.ID) {
			t.Fatalf("B lists A's profile: %s", r.Data)
		}
		r = s.gql(t, b, `query($q: String) { profiles(search: $q) { nodes { id } } }`, map[string]any{"q": "secret"})
		r.requireOK(t)
		if strings.Contains(string(r.Data), p.ID) {
			t.Fatalf("B finds A's profile by search: %s", r.Data)
		}
		r = s.gql(t, b, `mutation($id: ID!) { logInteraction(input: {profileId: $id, kind: NOTE, subject: "x"}) { id } }`, map[string]any{"id": p.ID})
		r.requireError(t, 0, "NOT_FOUND")
		// The same identifier in B is a different person.
		pb, _ := identify(t, s, b, ids("email", "secret@example.com"), nil)
		if pb.ID == p.ID {
			t.Fatal("workspace B's identify resolved to A's profile")
		}
		if got := getProfile(t, s, a, map[string]any{"id": p.ID}); got == nil || got.EventCount != 1 {
			t.Fatalf("A's profile changed: %+v", got)
		}
	})
}

func TestE2EConcurrentIdentifyConverges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		const n = 50
		got := make([]string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _ := json.Marshal(map[string]any{
					"query":     `mutation($in: IdentifyInput!) { identify(input: $in) { profile { id } } }`,
					"variables": map[string]any{"in": map[string]any{"identifiers": ids("email", "race@example.com", "anonymousId", fmt.Sprintf("anon-%d", i))}},
				})
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer res.Body.Close()
				var out struct {
					Data struct {
						Identify struct{ Profile struct{ ID string } }
					}
					Errors []any
				}
				if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
					t.Errorf("identify %d: %v %v", i, err, out.Errors)
					return
				}
				got[i] = out.Data.Identify.Profile.ID
			}()
		}
		wg.Wait()
		p := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": "email", "value": "race@example.com"}})
		if p == nil {
			t.Fatal("no profile for the email")
		}
		if len(p.Identifiers) != n+1 {
			t.Fatalf("profile holds %d identifiers, want %d", len(p.Identifiers), n+1)
		}
		r := s.gql(t, tok, `{ profiles(first: 100) { nodes { id } } }`, nil)
		r.requireOK(t)
		var out struct {
			Profiles struct{ Nodes []struct{ ID string } }
		}
		r.decode(t, &out)
		if len(out.Profiles.Nodes) != 1 || out.Profiles.Nodes[0].ID != p.ID {
			t.Fatalf("want exactly one profile, got %s", r.Data)
		}
		for i, id := range got {
			if id == "" {
				continue // already reported
			}
			if getProfile(t, s, tok, map[string]any{"id": id}).ID != p.ID {
				t.Fatalf("call %d returned %s which does not resolve to %s", i, id, p.ID)
			}
		}
	})
}

// instant parses an RFC 3339 time of a test's story.
func instant(t testing.TB, v string) time.Time {
	t.Helper()
	x, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
