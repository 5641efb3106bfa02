package identity_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

func TestSuppressionIsPerWorkspaceAndHashed(t *testing.T) {
	e := newEnv(t)
	other := e.st.Tenant("ws2")
	email := identity.Identifier{Type: identity.Email, Value: "gone@example.com"}
	n, err := e.svc.Identity.Suppress(e.ctx, e.tn, []identity.Identifier{email, email}, "erasure-1", t0)
	if err != nil || n != 1 {
		t.Fatalf("suppress: %d %v", n, err)
	}
	_, err = e.svc.Identity.Resolve(e.ctx, e.tn, identity.Request{Identifiers: []identity.Identifier{email}})
	if apperr.CodeOf(err) != apperr.Suppressed {
		t.Fatalf("resolve: %v", err)
	}
	if n := e.Count(t, identity.Identities, identity.IdentitiesByValue); n != 0 {
		t.Fatalf("%d identities stored by a refused call", n)
	}
	// Another workspace is not affected, and its salt differs.
	if _, err := e.svc.Identity.Resolve(e.ctx, other, identity.Request{Identifiers: []identity.Identifier{email}}); err != nil {
		t.Fatalf("other workspace: %v", err)
	}
	h1, _ := e.svc.Identity.ProfileHash(e.ctx, e.tn, "p", false)
	h2, _ := e.svc.Identity.ProfileHash(e.ctx, other, "p", true)
	if h1 == "" || h2 == "" || h1 == h2 {
		t.Fatalf("hashes %q %q", h1, h2)
	}
	// The stored suppression holds a hash, never the value.
	docs, err := e.tn.C(identity.Suppressions).Find(e.ctx, store.Query{Index: identity.SuppressionsByHash})
	if err != nil || len(docs) != 1 || bytes.Contains(docs[0].Raw, []byte("gone@example.com")) {
		t.Fatalf("suppressions %v %v", docs, err)
	}
	if ok, err := e.svc.Identity.LiftSuppression(e.ctx, e.tn, email); !ok || err != nil {
		t.Fatalf("lift: %v %v", ok, err)
	}
	if ok, err := e.svc.Identity.IsSuppressed(e.ctx, e.tn, email); ok || err != nil {
		t.Fatalf("after lift: %v %v", ok, err)
	}
}

// The check every identify and track pays: one indexed read while the
// workspace never suppressed anything, one Get per identifier after.
func BenchmarkSuppressionCheck(b *testing.B) {
	e := apptest.New(b, t0)
	ids := []identity.Identifier{{Type: identity.Email, Value: "a@example.com"}, {Type: identity.AnonymousID, Value: "anon-1"}}
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			if ok, err := e.Services.Identity.IsSuppressed(e.Ctx, e.Tenant, ids[0]); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	if _, err := e.Services.Identity.Suppress(e.Ctx, e.Tenant, []identity.Identifier{{Type: identity.Email, Value: "x@example.com"}}, "e", t0); err != nil {
		b.Fatal(err)
	}
	b.Run("salted", func(b *testing.B) {
		for b.Loop() {
			if ok, err := e.Services.Identity.IsSuppressed(e.Ctx, e.Tenant, ids[0]); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// A Resolver reads a workspace's suppression salt once and keeps it: with
// the store closed it still hashes, while a Resolver that never read it
// (another process) has to go to the store. Absence is not kept: a salt
// another process creates is seen at once.
func TestSuppressionSaltReadOncePerResolver(t *testing.T) {
	e := newEnv(t)
	mine, theirs := e.svc.Identity, app.New(e.Clock.Now).Identity
	if h, err := mine.ProfileHash(e.ctx, e.tn, "p", false); h != "" || err != nil {
		t.Fatalf("no salt yet: %q %v", h, err)
	}
	h, err := theirs.ProfileHash(e.ctx, e.tn, "p", true) // creates it
	if h == "" || err != nil {
		t.Fatalf("create: %q %v", h, err)
	}
	if got, err := mine.ProfileHash(e.ctx, e.tn, "p", false); got != h || err != nil {
		t.Fatalf("the salt another Resolver created: %q %v, want %q", got, err, h)
	}
	fresh := app.New(e.Clock.Now).Identity
	if err := e.st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*identity.Resolver{"mine": mine, "theirs": theirs} {
		if got, err := r.ProfileHash(e.ctx, e.tn, "p", false); got != h || err != nil {
			t.Fatalf("%s, store closed: %q %v, want the kept salt's %q", name, got, err, h)
		}
	}
	if got, err := fresh.ProfileHash(e.ctx, e.tn, "p", false); err == nil {
		t.Fatalf("a Resolver that never read the salt hashed %q with the store closed", got)
	}
	if got, err := mine.ProfileHash(e.ctx, e.st.Tenant("ws2"), "p", false); err == nil {
		t.Fatalf("another workspace's salt came from the cache: %q", got)
	}
}
