package identity_test

// Identity resolution as the write path runs it (ingest's identify and
// track normalise with the workspace's types, then Resolve): these were
// end-to-end tests in server and need no HTTP to state their rules.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// caller is the API's test token: merges record its subject as actor.
var caller = ingest.Caller{Subject: "test"}

// identify is the identify mutation: raw identifiers, normalised by the
// write path as a client sends them.
func (e *env) identify(t *testing.T, traits map[string]any, pairs ...string) identity.Result {
	t.Helper()
	res, err := e.identifyErr(e.tn, traits, pairs...)
	if err != nil {
		t.Fatalf("identify %v: %v", pairs, err)
	}
	return res
}

func (e *env) identifyErr(tn store.Tenant, traits map[string]any, pairs ...string) (identity.Result, error) {
	in := ingest.IdentifyInput{Identifiers: ids(pairs...)}
	if traits != nil {
		in.Traits = traits
	}
	return e.svc.Ingest.Identify(e.ctx, tn, caller, in)
}

// trackEvent is the track mutation; it returns the event's profile.
func (e *env) trackEvent(t *testing.T, messageID, name string, at time.Time, pairs ...string) string {
	t.Helper()
	res, err := e.svc.Ingest.Track(e.ctx, e.tn, caller, "input", []ingest.TrackInput{{TrackInput: timeline.TrackInput{
		MessageID: messageID, Identifiers: ids(pairs...), Name: name, OccurredAt: &at, Properties: map[string]any{"n": 1},
	}}})
	if err != nil {
		t.Fatalf("track %s: %v", messageID, err)
	}
	return res[0].Profile.ID
}

// owner is query profile(identifier:): the live profile holding the
// identifier as a client spells it, or "".
func (e *env) owner(t *testing.T, typ, value string) string {
	t.Helper()
	found, err := identity.FindEach(e.ctx, e.tn, ids(typ, value), func(int) string { return "identifier" })
	if err != nil {
		t.Fatalf("find %s %q: %v", typ, value, err)
	}
	if found[0] == "" {
		return ""
	}
	return e.live(t, found[0]).ID
}

// live is query profile(id:): merged-away ids follow their redirects.
func (e *env) live(t *testing.T, id string) *profile.Profile {
	t.Helper()
	p, err := profile.Resolve(e.ctx, e.tn, id, e.svc.Identity.Redirect)
	if err != nil {
		t.Fatalf("profile %s: %v", id, err)
	}
	return p
}

// snapshot is what a person looks like to a reader of the profile.
type snapshot struct {
	Identifiers []string
	Traits      map[string]any
	EventCount  int64
	Messages    []string
}

func (e *env) snap(t *testing.T, id string) snapshot {
	t.Helper()
	p := e.live(t, id)
	held, err := identity.Identifiers(e.ctx, e.tn, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := timeline.Read(e.ctx, e.tn, p.ID, 100, "", timeline.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	sn := snapshot{Traits: p.Traits, EventCount: p.EventCount}
	for _, h := range held {
		sn.Identifiers = append(sn.Identifiers, h.Type+":"+h.Value)
	}
	for _, ev := range page.Items {
		sn.Messages = append(sn.Messages, ev.MessageID)
	}
	slices.Sort(sn.Identifiers)
	slices.Sort(sn.Messages)
	return sn
}

// newWriteEnv is an env whose clock moves on every reading, as a real one
// does between calls: createdAt decides which profile survives a merge,
// and a trait's write time which value wins.
func newWriteEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.clock.SetTick(time.Millisecond)
	return e
}

func TestIdentifyNormalisesAndReadsBack(t *testing.T) {
	e := newWriteEnv(t)
	p := e.identify(t, map[string]any{"firstName": "Ana", "plan": "pro", "address": map[string]any{"city": "Lisbon"}},
		"email", "  Ana.Costa@Example.COM ", "userId", "u-1", "phone", "+1 (555) 010-0000").Profile
	if p.ID == "" || p.Traits["plan"] != "pro" {
		t.Fatalf("identify returned %+v", p)
	}
	found := map[string]string{"id": e.live(t, p.ID).ID}
	for _, v := range [][2]string{
		{"email", "ana.costa@example.com"}, {"email", "ANA.COSTA@example.com "}, {"userId", "u-1"}, {"phone", "+15550100000"},
	} {
		found[v[0]+" "+v[1]] = e.owner(t, v[0], v[1])
	}
	for how, id := range found {
		if id != p.ID {
			t.Fatalf("profile by %s = %q, want %s", how, id, p.ID)
		}
		got := e.snap(t, id)
		if len(got.Identifiers) != 3 || got.Traits["address"].(map[string]any)["city"] != "Lisbon" {
			t.Fatalf("profile by %s = %+v", how, got)
		}
	}
	// A null trait removes it; other traits stay.
	p2 := e.identify(t, map[string]any{"plan": nil, "lastName": "Costa"}, "userId", "u-1").Profile
	if _, ok := p2.Traits["plan"]; p2.ID != p.ID || ok || p2.Traits["firstName"] != "Ana" || p2.Traits["lastName"] != "Costa" {
		t.Fatalf("trait patch gave %+v", p2.Traits)
	}
	if got := e.owner(t, "email", "nobody@example.com"); got != "" {
		t.Fatalf("unknown identifier resolved to %s", got)
	}
	// Search by email prefix and by name.
	for _, q := range []string{"ana.co", "costa", "ANA"} {
		page, err := profile.Search(e.ctx, e.tn, q, 20, "")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(page.Profiles, func(x *profile.Profile) bool { return x.ID == p.ID }) {
			t.Fatalf("search %q did not find the profile", q)
		}
	}
}

func TestAnonymousThenKnownIsOneProfile(t *testing.T) {
	e := newWriteEnv(t)
	base := t0.Add(-time.Hour)
	first := e.trackEvent(t, "m1", "page_viewed", base, "anonymousId", "a-77")
	second := e.trackEvent(t, "m2", "product_viewed", base.Add(time.Minute), "anonymousId", "a-77")
	if first != second {
		t.Fatalf("anonymous events went to two profiles: %s, %s", first, second)
	}
	res := e.identify(t, map[string]any{"firstName": "Zoe"}, "anonymousId", "a-77", "email", "zoe@example.com")
	if res.Profile.ID != first || len(res.Merged) != 0 {
		t.Fatalf("identify made %s (merged %v), want anonymous profile %s", res.Profile.ID, res.Merged, first)
	}
	if third := e.trackEvent(t, "m3", "order_completed", base.Add(2*time.Minute), "email", "zoe@example.com"); third != first {
		t.Fatalf("known event went to %s, want %s", third, first)
	}
	if got := e.live(t, e.owner(t, "email", "zoe@example.com")); got.EventCount != 3 {
		t.Fatalf("eventCount = %d, want 3", got.EventCount)
	}
	page, err := timeline.Read(e.ctx, e.tn, first, 10, "", timeline.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range page.Items {
		names = append(names, ev.Name)
	}
	if strings.Join(names, ",") != "order_completed,product_viewed,page_viewed" {
		t.Fatalf("timeline = %v", names)
	}
}

func TestIdentifyMergesTwoProfiles(t *testing.T) {
	e := newWriteEnv(t)
	at := t0.Add(-time.Hour)
	older := e.trackEvent(t, "d1", "page_viewed", at, "deviceId", "tablet-1")
	e.identify(t, map[string]any{"city": "Berlin", "plan": "free"}, "deviceId", "tablet-1")
	newer := e.trackEvent(t, "d2", "order_completed", at.Add(time.Minute), "email", "kim@example.com")
	e.identify(t, map[string]any{"plan": "pro"}, "email", "kim@example.com")
	if older == newer {
		t.Fatal("setup: expected two profiles")
	}
	res := e.identify(t, nil, "deviceId", "tablet-1", "email", "kim@example.com")
	p := res.Profile
	if p.ID != older || !slices.Equal(res.Merged, []string{newer}) {
		t.Fatalf("merge kept %s merged %v; want older %s to absorb %s", p.ID, res.Merged, older, newer)
	}
	if held := e.heldSet(t, p.ID); p.EventCount != 2 || len(held) != 2 || p.Traits["city"] != "Berlin" || p.Traits["plan"] != "pro" {
		t.Fatalf("merged profile = %+v, identifiers %v", p, held)
	}
	if !slices.Equal(p.MergedFrom, []string{newer}) {
		t.Fatalf("mergedFrom = %v", p.MergedFrom)
	}
	// The merged-away id still resolves, to the survivor.
	if got := e.live(t, newer); got.ID != older {
		t.Fatalf("profile(merged id) = %s, want %s", got.ID, older)
	}
	if got := e.snap(t, older).Messages; !slices.Equal(got, []string{"d1", "d2"}) {
		t.Fatalf("merged timeline = %v, want d1 and d2", got)
	}
	page, err := profile.List(e.ctx, e.tn, profile.CreatedDesc, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range page.Profiles {
		if x.ID == newer {
			t.Fatal("merged-away profile still listed")
		}
	}
}

func TestSharedDeviceIsNotMerged(t *testing.T) {
	e := newWriteEnv(t)
	a := e.identify(t, map[string]any{"firstName": "Alice"}, "anonymousId", "family-tablet", "userId", "alice")
	e.trackEvent(t, "tab-1", "page_viewed", t0.Add(-time.Hour), "anonymousId", "family-tablet", "userId", "alice")
	b := e.identify(t, map[string]any{"firstName": "Bob"}, "anonymousId", "family-tablet", "userId", "bob")
	if b.Profile.ID == a.Profile.ID {
		t.Fatal("Bob's login went to Alice's profile")
	}
	if len(b.Merged) != 0 {
		t.Fatalf("merged %v", b.Merged)
	}
	if len(b.Conflicts) != 1 || b.Conflicts[0].Type != "userId" || !reflect.DeepEqual(slices.Sorted(slices.Values(b.Conflicts[0].Values)), []string{"alice", "bob"}) {
		t.Fatalf("conflicts = %+v", b.Conflicts)
	}
	if !slices.Contains(b.Conflicts[0].ProfileIDs, a.Profile.ID) || !slices.Contains(b.Conflicts[0].ProfileIDs, b.Profile.ID) {
		t.Fatalf("conflict profiles %v, want %s and %s", b.Conflicts[0].ProfileIDs, a.Profile.ID, b.Profile.ID)
	}
	// Bob's traits are Bob's; the tablet stays with Alice.
	if got := e.snap(t, b.Profile.ID); got.Traits["firstName"] != "Bob" || strings.Join(got.Identifiers, ",") != "userId:bob" {
		t.Fatalf("Bob = %+v", got)
	}
	if got := e.snap(t, a.Profile.ID); got.Traits["firstName"] != "Alice" || got.EventCount != 1 {
		t.Fatalf("Alice = %+v", got)
	}
	if e.owner(t, "anonymousId", "family-tablet") != a.Profile.ID {
		t.Fatal("the tablet moved")
	}
	// A track from the tablet as Bob goes to Bob.
	if pid := e.trackEvent(t, "tab-2", "page_viewed", t0.Add(-time.Minute), "anonymousId", "family-tablet", "userId", "bob"); pid != b.Profile.ID {
		t.Fatalf("Bob's event went to %s", pid)
	}
	// The conflict is in both histories.
	for _, id := range []string{a.Profile.ID, b.Profile.ID} {
		hist, err := identity.History(e.ctx, e.tn, id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(hist, func(r identity.Record) bool {
			return r.Kind == identity.KindConflict && slices.ContainsFunc(r.Conflicts, func(c identity.Conflict) bool { return c.Type == "userId" })
		}) {
			t.Fatalf("history of %s lacks the conflict: %+v", id, hist)
		}
	}
}

func TestClassicStitch(t *testing.T) {
	e := newWriteEnv(t)
	base := t0.Add(-3 * time.Hour)
	// Anonymous browsing on the laptop.
	for i := 0; i < 3; i++ {
		e.trackEvent(t, fmt.Sprintf("laptop-%d", i), "page_viewed", base.Add(time.Duration(i)*time.Minute), "anonymousId", "laptop-anon")
	}
	// Sign-up with email (and the account's userId).
	signup := e.identify(t, map[string]any{"firstName": "Sam"}, "anonymousId", "laptop-anon", "email", "Sam@Example.COM ", "userId", "sam-1")
	// Browsing on the phone, then logging in there.
	for i := 0; i < 2; i++ {
		e.trackEvent(t, fmt.Sprintf("phone-%d", i), "product_viewed", base.Add(time.Hour+time.Duration(i)*time.Minute), "anonymousId", "phone-anon")
	}
	login := e.identify(t, nil, "anonymousId", "phone-anon", "userId", "sam-1")
	if login.Profile.ID != signup.Profile.ID || len(login.Merged) != 1 {
		t.Fatalf("login resolved to %s merging %v, want %s absorbing the phone", login.Profile.ID, login.Merged, signup.Profile.ID)
	}
	e.trackEvent(t, "after-login", "order_completed", base.Add(2*time.Hour), "userId", "sam-1")
	got := e.snap(t, signup.Profile.ID)
	want := []string{"after-login", "laptop-0", "laptop-1", "laptop-2", "phone-0", "phone-1"}
	if !reflect.DeepEqual(got.Messages, want) || got.EventCount != 6 {
		t.Fatalf("timeline %v (count %d), want %v", got.Messages, got.EventCount, want)
	}
	if want := []string{"anonymousId:laptop-anon", "anonymousId:phone-anon", "email:sam@example.com", "userId:sam-1"}; !reflect.DeepEqual(got.Identifiers, want) {
		t.Fatalf("identifiers %v, want %v", got.Identifiers, want)
	}
	// The phone's anonymous profile id still resolves to Sam.
	if p := e.live(t, login.Merged[0]); p.ID != signup.Profile.ID || !slices.Contains(p.MergedFrom, login.Merged[0]) {
		t.Fatalf("merged-away id resolves to %+v", p)
	}
}

func TestNormalisationAndLimits(t *testing.T) {
	e := newWriteEnv(t)
	a := e.identify(t, nil, "email", "Ann@Example.COM ")
	b := e.identify(t, nil, "email", "ann@example.com")
	if a.Profile.ID != b.Profile.ID || b.Created {
		t.Fatal("two spellings of one email made two profiles")
	}
	p := e.identify(t, nil, "email", "ann@example.com", "phone", "(415) 555-2671")
	if got := e.snap(t, p.Profile.ID); !slices.Contains(got.Identifiers, "phone:+14155552671") {
		t.Fatalf("phone not in E.164: %v", got.Identifiers)
	}
	if e.owner(t, "phone", "+1 415-555-2671") != a.Profile.ID {
		t.Fatal("another format of the phone does not find the profile")
	}
	// Blocked values are refused as bad input.
	for _, v := range []string{"undefined", "NULL", "00000000-0000-0000-0000-000000000000"} {
		if _, err := e.identifyErr(e.tn, nil, "anonymousId", v); apperr.CodeOf(err) != apperr.BadUserInput {
			t.Fatalf("anonymousId %q: %v, want BAD_USER_INPUT", v, err)
		}
	}
	// Per-type limits: deviceId at most 2 per profile; the oldest drops off.
	if _, err := identity.PatchType(e.ctx, e.tn, "deviceId", identity.TypePatch{MaxPerProfile: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		e.identify(t, nil, "email", "ann@example.com", "deviceId", fmt.Sprintf("dev-%d", i))
	}
	var devices []string
	for _, id := range e.snap(t, a.Profile.ID).Identifiers {
		if strings.HasPrefix(id, "deviceId:") {
			devices = append(devices, id)
		}
	}
	if !reflect.DeepEqual(devices, []string{"deviceId:dev-2", "deviceId:dev-3"}) {
		t.Fatalf("devices %v, want the newest two", devices)
	}
	if e.owner(t, "deviceId", "dev-1") != "" {
		t.Fatal("the dropped device still resolves")
	}
	// A unique type conflicts instead of dropping: a second userId.
	e.identify(t, nil, "email", "ann@example.com", "userId", "ann-1")
	c := e.identify(t, nil, "email", "ann@example.com", "userId", "ann-2")
	if len(c.Conflicts) != 1 || c.Conflicts[0].Type != "userId" {
		t.Fatalf("second userId: conflicts %+v", c.Conflicts)
	}
	if owner := e.owner(t, "userId", "ann-2"); owner == a.Profile.ID || owner == "" {
		t.Fatalf("ann-2 belongs to %q", owner)
	}
	if got := e.snap(t, a.Profile.ID); slices.Contains(got.Identifiers, "userId:ann-2") {
		t.Fatal("profile holds two userIds")
	}
}

func TestMergeCap(t *testing.T) {
	e := newWriteEnv(t)
	hub := e.identify(t, nil, "email", "hub@example.com").Profile.ID
	for i := 0; i <= identity.MaxMergesInto; i++ {
		other := e.identify(t, nil, "email", fmt.Sprintf("spoke%d@example.com", i)).Profile.ID
		_, err := e.svc.Identity.Merge(e.ctx, e.tn, other, hub, "manual", "test")
		if i < identity.MaxMergesInto {
			if err != nil {
				t.Fatalf("merge %d: %v", i, err)
			}
			continue
		}
		if apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("merge over the cap: %v, want CONFLICT", err)
		}
		if got := e.live(t, other); got.ID != other {
			t.Fatalf("refused merge changed the profile: %+v", got)
		}
	}
	if p := e.live(t, hub); len(p.MergedFrom) != identity.MaxMergesInto {
		t.Fatalf("hub absorbed %d", len(p.MergedFrom))
	}
	// Automatic merges hit the cap too: reported, not merged.
	res := e.identify(t, nil, "email", "hub@example.com", "email", fmt.Sprintf("spoke%d@example.com", identity.MaxMergesInto))
	if len(res.Merged) != 0 || len(res.Conflicts) != 1 || res.Conflicts[0].Type != "mergeLimit" {
		t.Fatalf("identify over the cap: %+v", res)
	}
}
