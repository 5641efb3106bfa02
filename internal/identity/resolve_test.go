package identity_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	ctx   context.Context
	st    *store.Store
	tn    store.Tenant
	svc   *app.Services
	clock *app.ManualClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	x := apptest.New(t, t0)
	return &env{Env: x, ctx: x.Ctx, st: x.Store, tn: x.Tenant, svc: x.Services, clock: x.Clock}
}

func ids(pairs ...string) []identity.Identifier {
	out := make([]identity.Identifier, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, identity.Identifier{Type: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func (e *env) resolve(t *testing.T, req identity.Request) identity.Result {
	t.Helper()
	res, err := e.svc.Identity.Resolve(e.ctx, e.tn, req)
	if err != nil {
		t.Fatalf("Resolve(%+v): %v", req.Identifiers, err)
	}
	if res.Profile == nil {
		t.Fatalf("Resolve(%+v) returned no profile", req.Identifiers)
	}
	return res
}

func (e *env) heldSet(t *testing.T, profileID string) []identity.Identifier {
	t.Helper()
	held, err := identity.Identifiers(e.ctx, e.tn, profileID)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]identity.Identifier, len(held))
	for i, h := range held {
		out[i] = h.Identifier
	}
	slices.SortFunc(out, func(a, b identity.Identifier) int {
		if a.Type != b.Type {
			if a.Type < b.Type {
				return -1
			}
			return 1
		}
		if a.Value < b.Value {
			return -1
		}
		if a.Value > b.Value {
			return 1
		}
		return 0
	})
	return out
}

func (e *env) track(t *testing.T, messageID string, at time.Time, traits map[string]any, idents ...identity.Identifier) timeline.TrackResult {
	t.Helper()
	in := timeline.TrackInput{MessageID: messageID, Identifiers: idents, Name: "page_viewed", OccurredAt: &at}
	if traits != nil {
		in.Traits = traits
	}
	res, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "input", []timeline.TrackInput{in})
	if err != nil {
		t.Fatalf("Track %s: %v", messageID, err)
	}
	return res[0]
}

func TestResolveCreatesFindsAndAttaches(t *testing.T) {
	e := newEnv(t)

	first := e.resolve(t, identity.Request{Identifiers: ids(identity.Email, "ann@example.com", identity.AnonymousID, "anon-1")})
	if !first.Created || len(first.Merged) != 0 {
		t.Fatalf("first resolve: Created=%v Merged=%v, want a new profile", first.Created, first.Merged)
	}
	pid := first.Profile.ID
	if !first.Profile.CreatedAt.Equal(t0) {
		t.Errorf("createdAt = %v, want %v", first.Profile.CreatedAt, t0)
	}
	want := ids(identity.AnonymousID, "anon-1", identity.Email, "ann@example.com")
	if got := e.heldSet(t, pid); !reflect.DeepEqual(got, want) {
		t.Fatalf("identifiers = %+v, want %+v", got, want)
	}

	e.clock.Set(t0.Add(time.Minute))
	again := e.resolve(t, identity.Request{Identifiers: ids(identity.Email, "ann@example.com")})
	if again.Created || again.Profile.ID != pid || len(again.Merged) != 0 {
		t.Fatalf("second resolve: id=%s Created=%v Merged=%v, want existing %s", again.Profile.ID, again.Created, again.Merged, pid)
	}
	// Found by the other identifier too.
	byAnon := e.resolve(t, identity.Request{Identifiers: ids(identity.AnonymousID, "anon-1")})
	if byAnon.Profile.ID != pid || byAnon.Created {
		t.Fatalf("resolve by anonymousId: %s Created=%v", byAnon.Profile.ID, byAnon.Created)
	}

	att := e.resolve(t, identity.Request{Identifiers: ids(identity.AnonymousID, "anon-1", identity.UserID, "u-1")})
	if att.Profile.ID != pid || att.Created || len(att.Merged) != 0 {
		t.Fatalf("attach: id=%s Created=%v Merged=%v", att.Profile.ID, att.Created, att.Merged)
	}
	want = ids(identity.AnonymousID, "anon-1", identity.Email, "ann@example.com", identity.UserID, "u-1")
	if got := e.heldSet(t, pid); !reflect.DeepEqual(got, want) {
		t.Fatalf("identifiers after attach = %+v, want %+v", got, want)
	}
	if got, err := identity.Lookup(e.ctx, e.tn, identity.Identifier{Type: identity.UserID, Value: "u-1"}); err != nil || got != pid {
		t.Fatalf("Lookup(userId u-1) = %q, %v; want %s", got, err, pid)
	}
	if _, err := identity.Lookup(e.ctx, e.tn, identity.Identifier{Type: identity.UserID, Value: "nobody"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(unknown) err = %v, want ErrNotFound", err)
	}
	if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}
	if n := e.Count(t, identity.Identities, identity.IdentitiesByValue); n != 3 {
		t.Fatalf("%d identities, want 3", n)
	}
}

func TestResolveAppliesTraitsAndActivity(t *testing.T) {
	e := newEnv(t)
	anon := ids(identity.AnonymousID, "anon-t")
	r := e.resolve(t, identity.Request{Identifiers: anon, Traits: map[string]any{"plan": "free", "age": int64(30)}})
	if !reflect.DeepEqual(r.Profile.Traits, map[string]any{"plan": "free", "age": int64(30)}) {
		t.Fatalf("traits = %#v", r.Profile.Traits)
	}

	e.clock.Set(t0.Add(time.Hour))
	seen := t0.Add(-24 * time.Hour)
	r = e.resolve(t, identity.Request{Identifiers: anon, Traits: map[string]any{"plan": "pro", "age": nil}, SeenAt: seen})
	p := e.Profile(t, r.Profile.ID)
	if !reflect.DeepEqual(p.Traits, map[string]any{"plan": "pro"}) {
		t.Fatalf("traits after patch = %#v", p.Traits)
	}
	if !p.FirstSeenAt.Equal(seen) || !p.LastSeenAt.Equal(t0) {
		t.Fatalf("seen span = %v..%v, want %v..%v", p.FirstSeenAt, p.LastSeenAt, seen, t0)
	}
	if !p.UpdatedAt.Equal(t0.Add(time.Hour)) || !p.CreatedAt.Equal(t0) {
		t.Fatalf("createdAt %v updatedAt %v", p.CreatedAt, p.UpdatedAt)
	}
}

func TestResolveIsPerWorkspace(t *testing.T) {
	e := newEnv(t)
	email := ids(identity.Email, "same@example.com")
	a := e.resolve(t, identity.Request{Identifiers: email})
	other := e.st.Tenant("ws2")
	b, err := e.svc.Identity.Resolve(e.ctx, other, identity.Request{Identifiers: email})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Created || b.Profile.ID == a.Profile.ID {
		t.Fatalf("second workspace reused profile %s (Created=%v)", b.Profile.ID, b.Created)
	}
	if _, err := profile.Get(e.ctx, other, a.Profile.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ws1's profile visible from ws2: err=%v", err)
	}
}

func TestMergeTwoProfiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		// touchOlder updates the older profile last, so its traits win.
		touchOlder bool
		wantPlan   string
	}{
		{"newer profile updated last wins", false, "pro"},
		{"older profile updated last wins", true, "enterprise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			anon := identity.Identifier{Type: identity.AnonymousID, Value: "anon-m"}
			email := identity.Identifier{Type: identity.Email, Value: "m@example.com"}

			// Older profile: anonymous visitor, two events.
			e.clock.Set(t0)
			old := e.track(t, "o1", t0.Add(-2*time.Hour), map[string]any{"plan": "free", "onlyOld": "x", "shared": "old"}, anon).Profile
			e.track(t, "o2", t0.Add(-time.Hour), nil, anon)

			// Newer profile: known by email, three events.
			e.clock.Set(t0.Add(time.Minute))
			young := e.track(t, "y1", t0.Add(time.Minute), map[string]any{"plan": "pro", "onlyYoung": "y", "shared": "young"}, email).Profile
			e.track(t, "y2", t0.Add(2*time.Minute), nil, email)
			e.track(t, "y3", t0.Add(3*time.Minute), nil, email)
			if old.ID == young.ID {
				t.Fatal("setup: both tracks landed on one profile")
			}

			if tc.touchOlder {
				e.clock.Set(t0.Add(2 * time.Minute))
				e.resolve(t, identity.Request{Identifiers: []identity.Identifier{anon}, Traits: map[string]any{"plan": "enterprise", "shared": "old2"}})
			}

			e.clock.Set(t0.Add(10 * time.Minute))
			res := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{email, anon}, Actor: "agent-7"})
			if res.Profile.ID != old.ID {
				t.Fatalf("survivor = %s, want the older profile %s", res.Profile.ID, old.ID)
			}
			if res.Created || !reflect.DeepEqual(res.Merged, []string{young.ID}) {
				t.Fatalf("Created=%v Merged=%v, want merged [%s]", res.Created, res.Merged, young.ID)
			}

			p := e.Profile(t, old.ID)
			wantTraits := map[string]any{"plan": tc.wantPlan, "onlyOld": "x", "onlyYoung": "y", "shared": "young"}
			if tc.touchOlder {
				wantTraits["shared"] = "old2"
			}
			if !reflect.DeepEqual(p.Traits, wantTraits) {
				t.Errorf("traits = %#v, want %#v", p.Traits, wantTraits)
			}
			if p.EventCount != 5 {
				t.Errorf("eventCount = %d, want 5 (2+3)", p.EventCount)
			}
			if !reflect.DeepEqual(p.MergedFrom, []string{young.ID}) {
				t.Errorf("mergedFrom = %v, want [%s]", p.MergedFrom, young.ID)
			}
			if !p.FirstSeenAt.Equal(t0.Add(-2*time.Hour)) || !p.LastSeenAt.Equal(t0.Add(3*time.Minute)) {
				t.Errorf("seen span %v..%v, want %v..%v", p.FirstSeenAt, p.LastSeenAt, t0.Add(-2*time.Hour), t0.Add(3*time.Minute))
			}
			if !p.CreatedAt.Equal(t0) {
				t.Errorf("createdAt = %v, want the survivor's %v", p.CreatedAt, t0)
			}

			// Identities moved.
			if got, want := e.heldSet(t, old.ID), []identity.Identifier{anon, email}; !reflect.DeepEqual(got, want) {
				t.Errorf("survivor's identifiers = %+v, want %+v", got, want)
			}
			if got := e.heldSet(t, young.ID); len(got) != 0 {
				t.Errorf("merged profile still holds %+v", got)
			}
			// Source retired, redirect recorded.
			if _, err := profile.Get(e.ctx, e.tn, young.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("merged profile still loads: err=%v", err)
			}
			if got, err := e.svc.Identity.Redirect(e.ctx, e.tn, young.ID); err != nil || got != old.ID {
				t.Errorf("Redirect(%s) = %q, %v; want %s", young.ID, got, err, old.ID)
			}
			if _, err := e.svc.Identity.Redirect(e.ctx, e.tn, old.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Redirect(survivor) err = %v, want ErrNotFound", err)
			}
			if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 1 {
				t.Errorf("%d profiles, want 1", n)
			}
			// profile.Resolve follows the merge.
			got, err := profile.Resolve(e.ctx, e.tn, young.ID, e.svc.Identity.Redirect)
			if err != nil || got.ID != old.ID {
				t.Errorf("profile.Resolve(merged id) = %v, %v; want %s", got, err, old.ID)
			}

			// Events moved with the merge.
			page, err := timeline.Read(e.ctx, e.tn, old.ID, 50, "", timeline.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, ev := range page.Items {
				msgs = append(msgs, ev.MessageID)
				if ev.ProfileID != old.ID {
					t.Errorf("event %s has profileId %s", ev.MessageID, ev.ProfileID)
				}
			}
			if want := []string{"y3", "y2", "y1", "o2", "o1"}; !reflect.DeepEqual(msgs, want) {
				t.Errorf("survivor's timeline = %v, want %v", msgs, want)
			}
			page, err = timeline.Read(e.ctx, e.tn, young.ID, 50, "", timeline.Filter{})
			if err != nil || len(page.Items) != 0 {
				t.Errorf("merged profile's timeline has %d items (err %v), want 0", len(page.Items), err)
			}

			// A later identify by the merged identifier lands on the survivor
			// without another merge.
			again := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{email}})
			if again.Profile.ID != old.ID || len(again.Merged) != 0 || again.Created {
				t.Errorf("after merge: %s Merged=%v Created=%v", again.Profile.ID, again.Merged, again.Created)
			}
		})
	}
}

func TestThreeWayMergeAtOnce(t *testing.T) {
	e := newEnv(t)
	a := identity.Identifier{Type: identity.AnonymousID, Value: "a"}
	em := identity.Identifier{Type: identity.Email, Value: "three@example.com"}
	u := identity.Identifier{Type: identity.UserID, Value: "u3"}

	var pids []string
	for i, id := range []identity.Identifier{a, em, u} {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		r := e.track(t, fmt.Sprintf("m%d", i), t0.Add(time.Duration(i)*time.Minute), map[string]any{fmt.Sprintf("k%d", i): int64(i)}, id)
		pids = append(pids, r.Profile.ID)
	}
	e.clock.Set(t0.Add(time.Hour))
	// The newest identifier first: the survivor is still the oldest profile.
	res := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{u, em, a}})
	if res.Profile.ID != pids[0] {
		t.Fatalf("survivor %s, want oldest %s", res.Profile.ID, pids[0])
	}
	merged := slices.Sorted(slices.Values(res.Merged))
	want := slices.Sorted(slices.Values(pids[1:]))
	if !reflect.DeepEqual(merged, want) {
		t.Fatalf("Merged = %v, want %v", merged, want)
	}
	p := e.Profile(t, pids[0])
	if got := slices.Sorted(slices.Values(p.MergedFrom)); !reflect.DeepEqual(got, want) {
		t.Fatalf("mergedFrom = %v, want %v", p.MergedFrom, want)
	}
	if p.EventCount != 3 {
		t.Fatalf("eventCount = %d, want 3", p.EventCount)
	}
	if !reflect.DeepEqual(p.Traits, map[string]any{"k0": int64(0), "k1": int64(1), "k2": int64(2)}) {
		t.Fatalf("traits = %#v", p.Traits)
	}
	if got := e.heldSet(t, pids[0]); len(got) != 3 {
		t.Fatalf("survivor holds %+v, want all three", got)
	}
	for _, src := range pids[1:] {
		if got, err := e.svc.Identity.Redirect(e.ctx, e.tn, src); err != nil || got != pids[0] {
			t.Errorf("Redirect(%s) = %q, %v", src, got, err)
		}
	}
	if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}
	if n := e.Count(t, timeline.Events, timeline.EventsByMessage); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
	page, err := timeline.Read(e.ctx, e.tn, pids[0], 10, "", timeline.Filter{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("survivor's timeline: %d items, err %v", len(page.Items), err)
	}
}

func TestChainedMergeFollowsRedirects(t *testing.T) {
	e := newEnv(t)
	a := identity.Identifier{Type: identity.AnonymousID, Value: "a"}
	em := identity.Identifier{Type: identity.Email, Value: "chain@example.com"}
	u := identity.Identifier{Type: identity.UserID, Value: "u"}

	e.clock.Set(t0)
	p1 := e.track(t, "e1", t0, nil, a).Profile.ID
	e.clock.Set(t0.Add(time.Minute))
	p2 := e.track(t, "e2", t0.Add(time.Minute), nil, em).Profile.ID
	e.clock.Set(t0.Add(2 * time.Minute))
	p3 := e.track(t, "e3", t0.Add(2*time.Minute), nil, u).Profile.ID

	// p3 into p2, then p2 (now holding p3's data) into p1.
	e.clock.Set(t0.Add(3 * time.Minute))
	if r := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{u, em}}); r.Profile.ID != p2 || !reflect.DeepEqual(r.Merged, []string{p3}) {
		t.Fatalf("first merge: %s Merged=%v", r.Profile.ID, r.Merged)
	}
	e.clock.Set(t0.Add(4 * time.Minute))
	if r := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{em, a}}); r.Profile.ID != p1 || !reflect.DeepEqual(r.Merged, []string{p2}) {
		t.Fatalf("second merge: %s Merged=%v", r.Profile.ID, r.Merged)
	}
	p := e.Profile(t, p1)
	if !reflect.DeepEqual(p.MergedFrom, []string{p2, p3}) {
		t.Fatalf("mergedFrom = %v, want [%s %s]", p.MergedFrom, p2, p3)
	}
	if p.EventCount != 3 {
		t.Fatalf("eventCount = %d, want 3", p.EventCount)
	}
	// p3 redirects to p2, which redirects to p1: Resolve follows both hops.
	got, err := profile.Resolve(e.ctx, e.tn, p3, e.svc.Identity.Redirect)
	if err != nil || got.ID != p1 {
		t.Fatalf("profile.Resolve(%s) = %v, %v; want %s", p3, got, err, p1)
	}
	if got, err := identity.Lookup(e.ctx, e.tn, u); err != nil || got != p1 {
		t.Fatalf("Lookup(u) = %q, %v; want %s", got, err, p1)
	}
	page, err := timeline.Read(e.ctx, e.tn, p1, 10, "", timeline.Filter{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("survivor's timeline: %d items, err %v", len(page.Items), err)
	}
}

func TestProfileResolveUnknownIsNotFound(t *testing.T) {
	e := newEnv(t)
	_, err := profile.Resolve(e.ctx, e.tn, "no-such-profile", e.svc.Identity.Redirect)
	if apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("err = %v, want NOT_FOUND", err)
	}
}

type identityDoc struct {
	Type      string `bson:"type"`
	Value     string `bson:"value"`
	ProfileID string `bson:"profileId"`
}

func TestConcurrentResolveConverges(t *testing.T) {
	e := newEnv(t)
	e.clock.SetTick(time.Millisecond) // distinct createdAt per profile
	const n = 20
	email := identity.Identifier{Type: identity.Email, Value: "crowd@example.com"}
	user := identity.Identifier{Type: identity.UserID, Value: "crowd-user"}

	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]identity.Result, n)
	start := make(chan struct{})
	for i := range n {
		anon := identity.Identifier{Type: identity.AnonymousID, Value: fmt.Sprintf("anon-%02d", i)}
		// Vary which identifier comes first: the first one is claimed for a
		// new profile, so several profiles get created and must then merge.
		var req []identity.Identifier
		switch i % 3 {
		case 0:
			req = []identity.Identifier{anon, email, user}
		case 1:
			req = []identity.Identifier{email, anon}
		default:
			req = []identity.Identifier{anon, email}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.svc.Identity.Resolve(e.ctx, e.tn, identity.Request{
				Identifiers: req, Traits: map[string]any{fmt.Sprintf("g%02d", i): int64(i)},
			})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
	}

	if c := e.Count(t, profile.Profiles, profile.ProfilesByCreated); c != 1 {
		t.Fatalf("%d profiles left, want exactly 1", c)
	}
	docs, err := e.tn.C(identity.Identities).Find(e.ctx, store.Query{Index: identity.IdentitiesByValue})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != n+2 {
		t.Fatalf("%d identities, want %d (%d anonymousIds, email, userId)", len(docs), n+2, n)
	}
	owners := map[string]bool{}
	for _, d := range docs {
		var doc identityDoc
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		owners[doc.ProfileID] = true
		if _, err := profile.Get(e.ctx, e.tn, doc.ProfileID); err != nil {
			to, rerr := e.svc.Identity.Redirect(e.ctx, e.tn, doc.ProfileID)
			t.Errorf("identity %s=%s points at profile %s: %v (redirect %s %v)", doc.Type, doc.Value, doc.ProfileID, err, to, rerr)
		}
	}
	if len(owners) != 1 {
		t.Fatalf("identities point at %d profiles, want 1", len(owners))
	}
	var survivor string
	for id := range owners {
		survivor = id
	}
	if got := e.heldSet(t, survivor); len(got) != n+2 {
		t.Fatalf("survivor holds %d identifiers, want %d", len(got), n+2)
	}
	// Every caller's profile leads to the survivor, and every caller's
	// traits made it there.
	p := e.Profile(t, survivor)
	for i, r := range results {
		got, err := profile.Resolve(e.ctx, e.tn, r.Profile.ID, e.svc.Identity.Redirect)
		if err != nil || got.ID != survivor {
			t.Errorf("goroutine %d's profile %s resolves to %v (err %v), want %s", i, r.Profile.ID, got, err, survivor)
		}
		if v := p.Traits[fmt.Sprintf("g%02d", i)]; v != int64(i) {
			t.Errorf("trait g%02d = %#v, want %d", i, v, i)
		}
	}
	for _, id := range p.MergedFrom {
		if to, err := e.svc.Identity.Redirect(e.ctx, e.tn, id); err != nil {
			t.Errorf("merged profile %s has no redirect: %v", id, err)
			// The records that name it, to tell which finisher lost it.
			docs, _ := e.tn.C(identity.Merges).Find(e.ctx, store.Query{Index: identity.MergesBySource, Eq: []any{id}})
			for _, d := range docs {
				var rec identity.Record
				_ = d.Decode(&rec)
				t.Logf("  record %s %s %s→%s at %s claimed=%v", rec.ID, rec.Status, rec.SourceID, rec.TargetID, rec.At.Format("15:04:05.000"), rec.Source != nil)
			}
		} else if got, err := profile.Resolve(e.ctx, e.tn, to, e.svc.Identity.Redirect); err != nil || got.ID != survivor {
			t.Errorf("redirect chain of %s ends at %v (err %v)", id, got, err)
		}
	}
}

// A claim can land on a profile just as it is merged away (the claimant
// read the owners before the merge, wrote after its identities moved).
// Such a stray identity must heal: resolving it reaches the survivor.
func TestStrayIdentityOfMergedProfileHeals(t *testing.T) {
	e := newEnv(t)
	a := identity.Identifier{Type: identity.AnonymousID, Value: "a"}
	em := identity.Identifier{Type: identity.Email, Value: "stray@example.com"}
	e.clock.Set(t0)
	p1 := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{a}}).Profile.ID
	e.clock.Set(t0.Add(time.Minute))
	p2 := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{em}}).Profile.ID
	e.clock.Set(t0.Add(2 * time.Minute))
	e.resolve(t, identity.Request{Identifiers: []identity.Identifier{a, em}})

	// The late claim, as Resolve writes it, onto the retired p2.
	late := struct {
		ID          string    `bson:"_id"`
		Type        string    `bson:"type"`
		Value       string    `bson:"value"`
		ProfileID   string    `bson:"profileId"`
		FirstSeenAt time.Time `bson:"firstSeenAt"`
		Version     int64     `bson:"version"`
	}{store.NewID(), identity.DeviceID, "dev-late", p2, t0, 0}
	if err := e.tn.C(identity.Identities).Insert(e.ctx, late); err != nil {
		t.Fatal(err)
	}

	dev := identity.Identifier{Type: identity.DeviceID, Value: "dev-late"}
	for _, req := range [][]identity.Identifier{{dev}, {dev, a}} {
		res, err := e.svc.Identity.Resolve(e.ctx, e.tn, identity.Request{Identifiers: req})
		if err != nil {
			t.Fatalf("Resolve(%+v): %v", req, err)
		}
		if res.Profile.ID != p1 || res.Created {
			t.Fatalf("Resolve(%+v) = %s (Created=%v), want survivor %s", req, res.Profile.ID, res.Created, p1)
		}
	}
	if got, err := identity.Lookup(e.ctx, e.tn, dev); err != nil || got != p1 {
		t.Fatalf("Lookup(dev-late) = %q, %v; want it moved to %s", got, err, p1)
	}
	if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}
}

// A new visitor with nothing but an identifier (a track's common case)
// costs one identity, one profile and one search term written, and the
// profile Resolve returns is the stored one: the ingest write that
// follows starts from it.
func TestResolveNewVisitorWritesOnce(t *testing.T) {
	ctx := t.Context()
	sb, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	counter := apptest.NewCounting(sb)
	x := apptest.NewOver(t, counter, t0)
	published := &apptest.Recorder{}
	x.Services.Publish(published)
	types, err := identity.LoadTypes(x.Ctx, x.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	res, err := x.Services.Identity.Resolve(x.Ctx, x.Tenant, identity.Request{Identifiers: ids("anonymousId", "visitor-1"), Types: types, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created {
		t.Fatal("a new visitor was not created")
	}
	if w := counter.Writes(); w != 3 {
		t.Errorf("documents written = %d, want 3 (identity, profile, search term):\n%s", w, counter.Summary(1))
	}
	if n := counter.CallsOf("find", profile.SearchTerms); n != 0 {
		t.Errorf("a new profile's search terms read %d times, want none (it has none yet)", n)
	}
	stored := x.Profile(t, res.Profile.ID)
	if !reflect.DeepEqual(res.Profile, stored) {
		t.Errorf("returned profile differs from the stored one:\n got %+v\nwant %+v", res.Profile, stored)
	}
	page, err := profile.Search(x.Ctx, x.Tenant, "visitor-1", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Profiles) != 1 || page.Profiles[0].ID != res.Profile.ID {
		t.Errorf("search by the identifier found %+v, want the new profile", page.Profiles)
	}
	// No profile.updated: profileUpdated takes an id no one holds yet.
	if got := updatedProfiles(published); len(got) != 0 {
		t.Errorf("profile.updated published for %v, want none", got)
	}
	// Traits on the first call still go through the profile write, and
	// are announced: by the caller, a Quiet request being the write path's
	// (internal/ingest), which publishes the change in its own outbox
	// write.
	res2, err := x.Services.Identity.Resolve(x.Ctx, x.Tenant, identity.Request{Identifiers: ids("anonymousId", "visitor-2"), Traits: map[string]any{"plan": "pro"}, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Profile(t, res2.Profile.ID).Traits["plan"]; got != "pro" {
		t.Errorf("trait on a new visitor's first call = %v, want pro", got)
	}
	if got := updatedProfiles(published); len(got) != 0 {
		t.Errorf("profile.updated published for %v by a Quiet request", got)
	}
	if c := res2.Changes; len(c) != 1 || c[0].Kind != realtime.ProfileUpdated || c[0].ProfileID != res2.Profile.ID {
		t.Errorf("changes left to the caller %+v, want profile.updated of %s", c, res2.Profile.ID)
	}
}

// updatedProfiles are the profiles profile.updated was published for.
func updatedProfiles(r *apptest.Recorder) []string {
	var out []string
	for _, c := range r.Of(0, realtime.ProfileUpdated, "") {
		out = append(out, c.ProfileID)
	}
	return out
}

// Owners read by the caller before are a starting point, not the truth:
// stale ones (an identifier claimed since, an owner merged away since)
// still resolve to the profile that holds the identifiers now.
func TestResolveWithStaleOwners(t *testing.T) {
	e := newEnv(t)
	a := e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "a")}).Profile
	b := e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "b")}).Profile
	got, err := identity.LookupMany(e.ctx, e.tn, ids("anonymousId", "a", "anonymousId", "a", "anonymousId", "nobody", "email", "x@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[identity.Identifier]string{{Type: "anonymousId", Value: "a"}: a.ID, {Type: "anonymousId", Value: "nobody"}: "", {Type: "email", Value: "x@example.com"}: ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LookupMany = %v, want %v", got, want)
	}
	// "a" said to be free: the claim finds it taken and resolution reads
	// again.
	res := e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "a"), Owners: map[identity.Identifier]string{{Type: "anonymousId", Value: "a"}: ""}})
	if res.Profile.ID != a.ID || res.Created {
		t.Fatalf("stale free owner: resolved to %s (created %v), want %s", res.Profile.ID, res.Created, a.ID)
	}
	// b merged into a (an email joins them): b's identifier, said to be
	// b's, resolves to the survivor.
	e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "a", "email", "ab@example.com")})
	merged := e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "b", "email", "ab@example.com")})
	survivor := merged.Profile.ID
	res = e.resolve(t, identity.Request{Identifiers: ids("anonymousId", "b"), Owners: map[identity.Identifier]string{{Type: "anonymousId", Value: "b"}: b.ID}})
	if res.Profile.ID != survivor {
		t.Fatalf("stale merged owner: resolved to %s, want the survivor %s", res.Profile.ID, survivor)
	}
}
