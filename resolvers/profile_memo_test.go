package resolvers

import (
	"context"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
)

// TestProfileMemo: within a query a profile document is read once (the
// memo still answers after the document is gone), while a mutation or a
// subscription reads the store every time.
func TestProfileMemo(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	r := New(env.Store)
	res, err := env.Services.Identity.Resolve(env.Ctx, env.Tenant, identity.Request{
		Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "memo"}}, SeenAt: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Profile.ID
	for _, kind := range []ast.Operation{ast.Query, ast.Mutation, ast.Subscription} {
		var ctx context.Context
		oc := &graphql.OperationContext{Operation: &ast.OperationDefinition{Operation: kind}}
		ProfileMemo{}.InterceptOperation(graphql.WithOperationContext(env.Ctx, oc), func(c context.Context) graphql.ResponseHandler {
			ctx = c
			return nil
		})
		p, err := r.profileDoc(ctx, env.Tenant, id)
		if err != nil || p.ID != id {
			t.Fatalf("%s: first read %v %v", kind, p, err)
		}
		// Gone from the store (as if erased): only a query's memo still has it.
		doc := *p
		if err := env.Tenant.C(profile.Profiles).Delete(env.Ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = r.profileDoc(ctx, env.Tenant, id)
		if kind == ast.Query && err != nil {
			t.Fatalf("query: second read went to the store: %v", err)
		}
		if kind != ast.Query && apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("%s: second read %v, want NOT_FOUND from the store", kind, err)
		}
		doc.Version = 0
		if err := env.Tenant.C(profile.Profiles).Insert(env.Ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
}
