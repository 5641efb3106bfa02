// Package apptest gives domain tests the real wiring over a fresh
// embedded store and a manual clock.
package apptest

import (
	"context"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// Env is one test's store, workspace "ws1", services and clock.
type Env struct {
	Ctx      context.Context
	Store    *store.Store
	Tenant   store.Tenant
	Services *app.Services
	Clock    *app.ManualClock
}

// New opens an embedded store in a temp dir (closed at cleanup) and wires
// the services with a manual clock reading start (and opts).
func New(t testing.TB, start time.Time, opts ...app.Option) *Env {
	t.Helper()
	ctx := t.Context()
	b, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return NewOver(t, b, start, opts...)
}

// NewOver is New over the engine b (for example a Counting around an
// embedded store); it closes b at cleanup.
func NewOver(t testing.TB, b store.Backend, start time.Time, opts ...app.Option) *Env {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, b, app.Collections)
	if err != nil {
		b.Close(context.Background())
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	c := app.NewManualClock(start)
	// A segment save answers once its build is done, however slow the
	// machine: tests read members right after.
	opts = append([]app.Option{app.WithSegmentBuildWait(time.Minute)}, opts...)
	return &Env{Ctx: ctx, Store: st, Tenant: st.Tenant("ws1"), Services: app.New(c.Now, opts...), Clock: c}
}

// Count counts the documents of coll in the workspace (over index).
func (e *Env) Count(t testing.TB, coll, index string) int64 {
	t.Helper()
	n, err := e.Tenant.C(coll).Count(e.Ctx, store.Query{Index: index})
	if err != nil {
		t.Fatalf("count %s: %v", coll, err)
	}
	return n
}

// Profile loads a live profile or fails the test.
func (e *Env) Profile(t testing.TB, id string) *profile.Profile {
	t.Helper()
	p, err := profile.Get(e.Ctx, e.Tenant, id)
	if err != nil {
		t.Fatalf("profile %s: %v", id, err)
	}
	return p
}

// Person is the profile of email, found or made (by identity resolution
// alone: no write-path steps).
func (e *Env) Person(t testing.TB, email string) string {
	t.Helper()
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Profile.ID
}

// WantCode fails unless err is an apperr of code, on field when field is
// not empty.
func WantCode(t testing.TB, err error, code apperr.Code, field string) {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok || ae.Code != code || (field != "" && ae.Field != field) {
		t.Fatalf("got %v, want %s on %q", err, code, field)
	}
}
