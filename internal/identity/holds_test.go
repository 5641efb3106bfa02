package identity_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// HoldsAny answers "is this the same person?" for track's duplicate check:
// whether the profile that id stands for now holds one of the identifiers,
// with merges followed on both sides, and without writing anything.
func TestHoldsAny(t *testing.T) {
	e := newEnv(t)
	a := identity.Identifier{Type: identity.AnonymousID, Value: "a"}
	em := identity.Identifier{Type: identity.Email, Value: "holds@example.com"}
	other := identity.Identifier{Type: identity.Email, Value: "other@example.com"}
	unknown := identity.Identifier{Type: identity.DeviceID, Value: "never-seen"}

	e.clock.Set(t0)
	p1 := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{a}}).Profile.ID
	e.clock.Set(t0.Add(time.Minute))
	p2 := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{em}}).Profile.ID
	p3 := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{other}}).Profile.ID

	holds := func(pid string, ids ...identity.Identifier) bool {
		t.Helper()
		ok, err := e.svc.Identity.HoldsAny(e.ctx, e.tn, pid, ids)
		if err != nil {
			t.Fatalf("HoldsAny(%s, %v): %v", pid, ids, err)
		}
		return ok
	}
	digest := func() [3]int64 {
		return [3]int64{e.Count(t, profile.Profiles, profile.ProfilesByCreated), e.Count(t, identity.Identities, identity.IdentitiesByValue), e.Count(t, identity.Merges, identity.MergesByStatus)}
	}
	before := digest()
	for _, c := range []struct {
		name string
		pid  string
		ids  []identity.Identifier
		want bool
	}{
		{"its own identifier", p1, []identity.Identifier{a}, true},
		{"one of several", p1, []identity.Identifier{unknown, other, a}, true},
		{"another profile's identifier", p1, []identity.Identifier{em}, false},
		{"an unknown identifier", p1, []identity.Identifier{unknown}, false},
		{"none", p1, nil, false},
		{"an unknown profile", "no-such-profile", []identity.Identifier{a, unknown}, false},
	} {
		if got := holds(c.pid, c.ids...); got != c.want {
			t.Errorf("%s: HoldsAny = %v, want %v", c.name, got, c.want)
		}
	}
	if after := digest(); after != before {
		t.Fatalf("HoldsAny wrote: profiles/identities/merges %v → %v", before, after)
	}

	// p2 merged into p1 (older survives): p2's email is p1's now, and the
	// merged-away id stands for p1.
	e.clock.Set(t0.Add(2 * time.Minute))
	if r := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{a, em}}); r.Profile.ID != p1 {
		t.Fatalf("merge: survivor %s, want %s", r.Profile.ID, p1)
	}
	for _, c := range []struct {
		name string
		pid  string
		ids  []identity.Identifier
		want bool
	}{
		{"survivor, moved identifier", p1, []identity.Identifier{em}, true},
		{"merged-away id, survivor's identifier", p2, []identity.Identifier{a}, true},
		{"merged-away id, its former identifier", p2, []identity.Identifier{em}, true},
		{"merged-away id, a third person's identifier", p2, []identity.Identifier{other}, false},
		{"third person, survivor's identifier", p3, []identity.Identifier{em}, false},
	} {
		if got := holds(c.pid, c.ids...); got != c.want {
			t.Errorf("%s: HoldsAny = %v, want %v", c.name, got, c.want)
		}
	}
	if got, err := e.svc.Identity.LiveID(e.ctx, e.tn, p2); err != nil || got != p1 {
		t.Fatalf("LiveID(%s) = %q, %v; want %s", p2, got, err, p1)
	}

	// A stray identity still naming the retired p2 (a late claim) counts
	// for p1 too, and is left where it is.
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
	if !holds(p1, dev) || holds(p3, dev) {
		t.Fatalf("stray identity of a merged-away profile: HoldsAny(survivor) = %v, HoldsAny(third) = %v; want true, false", holds(p1, dev), holds(p3, dev))
	}
	if got, err := identity.Lookup(e.ctx, e.tn, dev); err != nil || got != p2 {
		t.Fatalf("HoldsAny moved the stray identity: Lookup = %q, %v; want it still on %s", got, err, p2)
	}
}
