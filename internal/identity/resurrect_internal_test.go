package identity

import (
	"errors"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// TestSlowCreatorDoesNotResurrect replays, step by step, the race the
// concurrency test hit once in a loaded run: a creator claims an
// identifier for a new profile id but is slow to insert the document;
// meanwhile another call finds the identifier, creates the profile itself
// and merges it away (the identifier moves, the document is retired). The
// slow insert must not bring back a live profile that holds nothing.
func TestSlowCreatorDoesNotResurrect(t *testing.T) {
	ctx := t.Context()
	tn := internalTenant(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r := New(Deps{Now: func() time.Time { return now }})

	older, err := r.Resolve(ctx, tn, Request{Identifiers: []Identifier{{Type: AnonymousID, Value: "a1"}}, SeenAt: now})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	// The slow creator's first step: the identifier is claimed for x.
	x := store.NewID()
	slow := Identifier{Type: AnonymousID, Value: "x1"}
	if err := r.claim(ctx, tn, slow, x); err != nil {
		t.Fatal(err)
	}
	// Another call finds x1, creates x, and stitches it to a1's (older)
	// profile: x is merged away.
	res, err := r.Resolve(ctx, tn, Request{Identifiers: []Identifier{{Type: AnonymousID, Value: "a1"}, slow}, SeenAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.ID != older.Profile.ID {
		t.Fatalf("survivor %s, want the older %s", res.Profile.ID, older.Profile.ID)
	}
	if _, err := profile.Get(ctx, tn, x); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("x after its merge: %v", err)
	}
	// The slow creator's second step.
	types, err := LoadTypes(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ensureProfile(ctx, tn, x, types, slow); !errors.Is(err, errRetry) {
		t.Fatalf("late insert: %v, want a retry", err)
	}
	if _, err := profile.Get(ctx, tn, x); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("x was resurrected: %v", err)
	}
	// Resolving again lands on the survivor.
	again, err := r.Resolve(ctx, tn, Request{Identifiers: []Identifier{slow}, SeenAt: now})
	if err != nil || again.Profile.ID != older.Profile.ID {
		t.Fatalf("x1 resolves to %v (%v), want %s", again.Profile, err, older.Profile.ID)
	}
}
