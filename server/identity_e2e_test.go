package main

// End-to-end tests of identity resolution (issue 5) through GraphQL, on
// both engines.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
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

func ownerOf(t *testing.T, s *testServer, tok, typ, value string) string {
	t.Helper()
	p := getProfile(t, s, tok, map[string]any{"identifier": map[string]any{"type": typ, "value": value}})
	if p == nil {
		return ""
	}
	return p.ID
}

// snapshot is what a person looks like from the API.
type snapshot struct {
	Identifiers []string
	Traits      map[string]any
	EventCount  int
	Messages    []string
}

func snap(t *testing.T, s *testServer, tok, id string) snapshot {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID) { profile(id: $id) { id eventCount traits identifiers { type value } timeline(first: 100) { nodes { messageId } pageInfo { hasNextPage } } } }`, map[string]any{"id": id})
	r.requireOK(t)
	var out struct {
		Profile struct {
			EventCount  int
			Traits      map[string]any
			Identifiers []gqlIdentifier
			Timeline    struct {
				Nodes    []struct{ MessageID string }
				PageInfo struct{ HasNextPage bool }
			}
		}
	}
	r.decode(t, &out)
	var sn snapshot
	for _, i := range out.Profile.Identifiers {
		sn.Identifiers = append(sn.Identifiers, i.Type+":"+i.Value)
	}
	for _, n := range out.Profile.Timeline.Nodes {
		sn.Messages = append(sn.Messages, n.MessageID)
	}
	slices.Sort(sn.Identifiers)
	slices.Sort(sn.Messages)
	sn.Traits, sn.EventCount = out.Profile.Traits, out.Profile.EventCount
	return sn
}

func TestE2ESharedDeviceIsNotMerged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		a := identifyAll(t, s, tok, ids("anonymousId", "family-tablet", "userId", "alice"), map[string]any{"firstName": "Alice"})
		track(t, s, tok, "tab-1", ids("anonymousId", "family-tablet", "userId", "alice"), "page_viewed", time.Now().Add(-time.Hour))
		b := identifyAll(t, s, tok, ids("anonymousId", "family-tablet", "userId", "bob"), map[string]any{"firstName": "Bob"})
		if b.Profile.ID == a.Profile.ID {
			t.Fatal("Bob's login went to Alice's profile")
		}
		if len(b.MergedProfileIds) != 0 {
			t.Fatalf("merged %v", b.MergedProfileIds)
		}
		if len(b.Conflicts) != 1 || b.Conflicts[0].Type != "userId" || !reflect.DeepEqual(slices.Sorted(slices.Values(b.Conflicts[0].Values)), []string{"alice", "bob"}) {
			t.Fatalf("conflicts = %+v", b.Conflicts)
		}
		if !slices.Contains(b.Conflicts[0].ProfileIds, a.Profile.ID) || !slices.Contains(b.Conflicts[0].ProfileIds, b.Profile.ID) {
			t.Fatalf("conflict profiles %v, want %s and %s", b.Conflicts[0].ProfileIds, a.Profile.ID, b.Profile.ID)
		}
		// Bob's traits are Bob's; the tablet stays with Alice.
		if got := snap(t, s, tok, b.Profile.ID); got.Traits["firstName"] != "Bob" || strings.Join(got.Identifiers, ",") != "userId:bob" {
			t.Fatalf("Bob = %+v", got)
		}
		if got := snap(t, s, tok, a.Profile.ID); got.Traits["firstName"] != "Alice" || got.EventCount != 1 {
			t.Fatalf("Alice = %+v", got)
		}
		if ownerOf(t, s, tok, "anonymousId", "family-tablet") != a.Profile.ID {
			t.Fatal("the tablet moved")
		}
		// A track from the tablet as Bob goes to Bob.
		pid, _ := track(t, s, tok, "tab-2", ids("anonymousId", "family-tablet", "userId", "bob"), "page_viewed", time.Now().Add(-time.Minute))
		if pid != b.Profile.ID {
			t.Fatalf("Bob's event went to %s", pid)
		}
		// The conflict is in both histories.
		for _, id := range []string{a.Profile.ID, b.Profile.ID} {
			r := s.gql(t, tok, `query($id: ID) { profile(id: $id) { merges { kind conflicts { type values } } } }`, map[string]any{"id": id})
			r.requireOK(t)
			if !strings.Contains(string(r.Data), `"kind":"CONFLICT"`) || !strings.Contains(string(r.Data), `"userId"`) {
				t.Fatalf("history of %s lacks the conflict: %s", id, r.Data)
			}
		}
	})
}

func TestE2EClassicStitch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		base := time.Now().Add(-3 * time.Hour)
		// Anonymous browsing on the laptop.
		for i := 0; i < 3; i++ {
			track(t, s, tok, fmt.Sprintf("laptop-%d", i), ids("anonymousId", "laptop-anon"), "page_viewed", base.Add(time.Duration(i)*time.Minute))
		}
		// Sign-up with email (and the account's userId).
		signup := identifyAll(t, s, tok, ids("anonymousId", "laptop-anon", "email", "Sam@Example.COM ", "userId", "sam-1"), map[string]any{"firstName": "Sam"})
		// Browsing on the phone, then logging in there.
		for i := 0; i < 2; i++ {
			track(t, s, tok, fmt.Sprintf("phone-%d", i), ids("anonymousId", "phone-anon"), "product_viewed", base.Add(time.Hour+time.Duration(i)*time.Minute))
		}
		login := identifyAll(t, s, tok, ids("anonymousId", "phone-anon", "userId", "sam-1"), nil)
		if login.Profile.ID != signup.Profile.ID || len(login.MergedProfileIds) != 1 {
			t.Fatalf("login resolved to %s merging %v, want %s absorbing the phone", login.Profile.ID, login.MergedProfileIds, signup.Profile.ID)
		}
		track(t, s, tok, "after-login", ids("userId", "sam-1"), "order_completed", base.Add(2*time.Hour))
		got := snap(t, s, tok, signup.Profile.ID)
		want := []string{"after-login", "laptop-0", "laptop-1", "laptop-2", "phone-0", "phone-1"}
		if !reflect.DeepEqual(got.Messages, want) || got.EventCount != 6 {
			t.Fatalf("timeline %v (count %d), want %v", got.Messages, got.EventCount, want)
		}
		if want := []string{"anonymousId:laptop-anon", "anonymousId:phone-anon", "email:sam@example.com", "userId:sam-1"}; !reflect.DeepEqual(got.Identifiers, want) {
			t.Fatalf("identifiers %v, want %v", got.Identifiers, want)
		}
		// The phone's anonymous profile id still resolves to Sam.
		if p := getProfile(t, s, tok, map[string]any{"id": login.MergedProfileIds[0]}); p == nil || p.ID != signup.Profile.ID || !slices.Contains(p.MergedFrom, login.MergedProfileIds[0]) {
			t.Fatalf("merged-away id resolves to %+v", p)
		}
	})
}

func TestE2ENormalisationAndLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		a := identifyAll(t, s, tok, ids("email", "Ann@Example.COM "), nil)
		b := identifyAll(t, s, tok, ids("email", "ann@example.com"), nil)
		if a.Profile.ID != b.Profile.ID || b.Created {
			t.Fatal("two spellings of one email made two profiles")
		}
		p := identifyAll(t, s, tok, ids("email", "ann@example.com", "phone", "(415) 555-2671"), nil)
		if got := snap(t, s, tok, p.Profile.ID); !slices.Contains(got.Identifiers, "phone:+14155552671") {
			t.Fatalf("phone not in E.164: %v", got.Identifiers)
		}
		if ownerOf(t, s, tok, "phone", "+1 415-555-2671") != a.Profile.ID {
			t.Fatal("another format of the phone does not find the profile")
		}
		// Blocked values are refused with BAD_USER_INPUT.
		for _, v := range []string{"undefined", "NULL", "00000000-0000-0000-0000-000000000000"} {
			r := s.gql(t, tok, identifyFull, map[string]any{"in": map[string]any{"identifiers": ids("anonymousId", v)}})
			r.requireError(t, 0, "BAD_USER_INPUT")
		}
		// Per-type limits: deviceId at most 2 per profile; the oldest drops off.
		s.gql(t, tok, `mutation { setIdentifierType(input: {name: "deviceId", maxPerProfile: 2}) { maxPerProfile } }`, nil).requireOK(t)
		for i := 1; i <= 3; i++ {
			identifyAll(t, s, tok, ids("email", "ann@example.com", "deviceId", fmt.Sprintf("dev-%d", i)), nil)
		}
		got := snap(t, s, tok, a.Profile.ID)
		var devices []string
		for _, id := range got.Identifiers {
			if strings.HasPrefix(id, "deviceId:") {
				devices = append(devices, id)
			}
		}
		if !reflect.DeepEqual(devices, []string{"deviceId:dev-2", "deviceId:dev-3"}) {
			t.Fatalf("devices %v, want the newest two", devices)
		}
		if ownerOf(t, s, tok, "deviceId", "dev-1") != "" {
			t.Fatal("the dropped device still resolves")
		}
		// A unique type conflicts instead of dropping: a second userId.
		identifyAll(t, s, tok, ids("email", "ann@example.com", "userId", "ann-1"), nil)
		c := identifyAll(t, s, tok, ids("email", "ann@example.com", "userId", "ann-2"), nil)
		if len(c.Conflicts) != 1 || c.Conflicts[0].Type != "userId" {
			t.Fatalf("second userId: conflicts %+v", c.Conflicts)
		}
		if owner := ownerOf(t, s, tok, "userId", "ann-2"); owner == a.Profile.ID || owner == "" {
			t.Fatalf("ann-2 belongs to %q", owner)
		}
		if got := snap(t, s, tok, a.Profile.ID); slices.Contains(got.Identifiers, "userId:ann-2") {
			t.Fatal("profile holds two userIds")
		}
	})
}

func TestE2EManualMergeThenUnmerge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		at := time.Now().Add(-2 * time.Hour)
		a := identifyAll(t, s, tok, ids("email", "pat@example.com", "anonymousId", "pat-anon"), map[string]any{"firstName": "Pat", "plan": "free", "city": "Oslo"})
		track(t, s, tok, "pat-1", ids("email", "pat@example.com"), "page_viewed", at)
		track(t, s, tok, "pat-2", ids("anonymousId", "pat-anon"), "page_viewed", at.Add(time.Minute))
		time.Sleep(5 * time.Millisecond)
		b := identifyAll(t, s, tok, ids("email", "kai@example.com", "deviceId", "kai-phone"), map[string]any{"firstName": "Kai", "plan": "pro"})
		track(t, s, tok, "kai-1", ids("deviceId", "kai-phone"), "order_completed", at.Add(2*time.Minute))
		s.gql(t, tok, `mutation($id: ID!) { logInteraction(input: {profileId: $id, kind: CALL, subject: "hi", messageId: "kai-call"}) { id } }`, map[string]any{"id": b.Profile.ID}).requireOK(t)
		beforeA, beforeB := snap(t, s, tok, a.Profile.ID), snap(t, s, tok, b.Profile.ID)

		r := s.gql(t, tok, `mutation($s: ID!, $t: ID!) { mergeProfiles(sourceId: $s, targetId: $t, reason: "same person, agent confirmed") { id eventCount traits mergedFrom merges { id kind actor reason sourceId targetId identifiers { type value } traits { key winner } } } }`,
			map[string]any{"s": a.Profile.ID, "t": b.Profile.ID})
		r.requireOK(t)
		var m struct {
			MergeProfiles struct {
				ID         string
				EventCount int
				Traits     map[string]any
				MergedFrom []string
				Merges     []struct {
					ID, Kind, Actor, Reason, SourceID, TargetID string
					Identifiers                                 []gqlIdentifier
				}
			}
		}
		r.decode(t, &m)
		mp := m.MergeProfiles
		// The older profile (a) survives even though it was named source.
		if mp.ID != a.Profile.ID || mp.EventCount != 4 || !slices.Contains(mp.MergedFrom, b.Profile.ID) {
			t.Fatalf("merge result %+v", mp)
		}
		// Later writes win per key: b's plan and firstName were written last.
		if mp.Traits["plan"] != "pro" || mp.Traits["firstName"] != "Kai" || mp.Traits["city"] != "Oslo" {
			t.Fatalf("merged traits %v", mp.Traits)
		}
		if len(mp.Merges) == 0 || mp.Merges[0].Kind != "MERGE" || mp.Merges[0].Actor != "test" || mp.Merges[0].Reason != "same person, agent confirmed" || len(mp.Merges[0].Identifiers) != 2 {
			t.Fatalf("history %+v", mp.Merges)
		}
		if p := getProfile(t, s, tok, map[string]any{"id": b.Profile.ID}); p == nil || p.ID != a.Profile.ID {
			t.Fatalf("merged-away id resolves to %+v", p)
		}

		r = s.gql(t, tok, `mutation($m: ID!) { unmergeProfile(mergeId: $m) { restored { id } survivor { id } record { kind status mergeId } } }`, map[string]any{"m": mp.Merges[0].ID})
		r.requireOK(t)
		var u struct {
			UnmergeProfile struct {
				Restored, Survivor struct{ ID string }
				Record             struct{ Kind, Status, MergeID string }
			}
		}
		r.decode(t, &u)
		if u.UnmergeProfile.Restored.ID != b.Profile.ID || u.UnmergeProfile.Survivor.ID != a.Profile.ID || u.UnmergeProfile.Record.Kind != "UNMERGE" {
			t.Fatalf("unmerge = %+v", u.UnmergeProfile)
		}
		afterA, afterB := snap(t, s, tok, a.Profile.ID), snap(t, s, tok, b.Profile.ID)
		if !reflect.DeepEqual(afterA, beforeA) {
			t.Fatalf("survivor after unmerge:\n got  %+v\n want %+v", afterA, beforeA)
		}
		if !reflect.DeepEqual(afterB, beforeB) {
			t.Fatalf("restored after unmerge:\n got  %+v\n want %+v", afterB, beforeB)
		}
		// The history keeps both records; the merge is marked undone.
		r = s.gql(t, tok, `query($id: ID) { profile(id: $id) { merges { kind status undoneAt } } }`, map[string]any{"id": a.Profile.ID})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"kind":"UNMERGE"`) || !strings.Contains(string(r.Data), `"status":"undone"`) {
			t.Fatalf("history after unmerge: %s", r.Data)
		}
		// Unmerging again changes nothing and answers the same record.
		s.gql(t, tok, `mutation($m: ID!) { unmergeProfile(mergeId: $m) { record { kind } } }`, map[string]any{"m": mp.Merges[0].ID}).requireOK(t)
		if got := snap(t, s, tok, b.Profile.ID); !reflect.DeepEqual(got, beforeB) {
			t.Fatalf("second unmerge changed b: %+v", got)
		}
		// Bad input.
		s.gql(t, tok, `mutation { unmergeProfile(mergeId: "nope") { record { id } } }`, nil).requireError(t, 0, "NOT_FOUND")
		s.gql(t, tok, `mutation($a: ID!) { mergeProfiles(sourceId: $a, targetId: $a) { id } }`, map[string]any{"a": a.Profile.ID}).requireError(t, 0, "BAD_USER_INPUT")
		s.gql(t, tok, `mutation($a: ID!) { mergeProfiles(sourceId: $a, targetId: "nope") { id } }`, map[string]any{"a": a.Profile.ID}).requireError(t, 0, "NOT_FOUND")
		ro := s.token(t, "acme", "profiles:read")
		s.gql(t, ro, `mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { id } }`, map[string]any{"a": a.Profile.ID, "b": b.Profile.ID}).requireError(t, 0, "FORBIDDEN")
	})
}

func TestE2EUnmergeKeepsLaterItemsByIdentifier(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		a := identifyAll(t, s, tok, ids("email", "old@example.com"), nil)
		time.Sleep(5 * time.Millisecond)
		b := identifyAll(t, s, tok, ids("email", "new@example.com"), nil)
		r := s.gql(t, tok, `mutation($s: ID!, $t: ID!) { mergeProfiles(sourceId: $s, targetId: $t) { merges { id } } }`, map[string]any{"s": b.Profile.ID, "t": a.Profile.ID})
		r.requireOK(t)
		var m struct {
			MergeProfiles struct{ Merges []struct{ ID string } }
		}
		r.decode(t, &m)
		now := time.Now().Add(-time.Minute)
		track(t, s, tok, "to-b", ids("email", "new@example.com"), "page_viewed", now)
		track(t, s, tok, "to-a", ids("email", "old@example.com"), "page_viewed", now)
		s.gql(t, tok, `mutation($m: ID!) { unmergeProfile(mergeId: $m) { record { id } } }`, map[string]any{"m": m.MergeProfiles.Merges[0].ID}).requireOK(t)
		if got := snap(t, s, tok, b.Profile.ID); !reflect.DeepEqual(got.Messages, []string{"to-b"}) || got.EventCount != 1 {
			t.Fatalf("restored profile %+v, want the event carrying its email", got)
		}
		if got := snap(t, s, tok, a.Profile.ID); !reflect.DeepEqual(got.Messages, []string{"to-a"}) || got.EventCount != 1 {
			t.Fatalf("survivor %+v, want only its own later event", got)
		}
	})
}

func TestE2EMergeCap(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		if e.name != "sqlite" && testing.Short() {
			t.Skip("MongoDB engine: 101 mergeProfiles round trips, too slow for -short (sqlite runs the cap in -short)")
		}
		s := startServer(t, serverOptions{Env: e.env(t)})
		tok := s.token(t, "acme")
		hub := identifyAll(t, s, tok, ids("email", "hub@example.com"), nil).Profile.ID
		const q = `mutation($s: ID!, $t: ID!) { mergeProfiles(sourceId: $s, targetId: $t) { id } }`
		for i := 0; i < 101; i++ {
			other := identifyAll(t, s, tok, ids("email", fmt.Sprintf("spoke%d@example.com", i)), nil).Profile.ID
			r := s.gql(t, tok, q, map[string]any{"s": other, "t": hub})
			if i < 100 {
				r.requireOK(t)
				continue
			}
			r.requireError(t, 0, "CONFLICT")
			if got := getProfile(t, s, tok, map[string]any{"id": other}); got == nil || got.ID != other {
				t.Fatalf("refused merge changed the profile: %+v", got)
			}
		}
		if p := getProfile(t, s, tok, map[string]any{"id": hub}); len(p.MergedFrom) != 100 {
			t.Fatalf("hub absorbed %d", len(p.MergedFrom))
		}
		// Automatic merges hit the cap too: reported, not merged.
		res := identifyAll(t, s, tok, ids("email", "hub@example.com", "email", "spoke100@example.com"), nil)
		if len(res.MergedProfileIds) != 0 || len(res.Conflicts) != 1 || res.Conflicts[0].Type != "mergeLimit" {
			t.Fatalf("identify over the cap: %+v", res)
		}
	})
}
