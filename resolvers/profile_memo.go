package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// Several fields of a profile (scores, computed values, consent) need its
// stored document beyond what graph/model carries. Read one by one, a
// list of 100 profiles selecting two of them would read 200 documents.
// Within a query each document is read once and shared: the list
// resolvers leave the documents they loaded in the memo, and the fields
// read it, so a profile's fields also come from one snapshot. Mutations
// and subscriptions get no memo: they must see their own writes and each
// new event.

type memoKey struct{}

type profileMemo struct {
	mu   sync.Mutex
	docs map[string]*profile.Profile
}

// ProfileMemo is the gqlgen extension that gives each query operation
// its memo of profile documents.
type ProfileMemo struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = ProfileMemo{}

// ExtensionName names the extension.
func (ProfileMemo) ExtensionName() string { return "ProfileMemo" }

// Validate accepts every schema.
func (ProfileMemo) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation installs the memo for a query.
func (ProfileMemo) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Query {
		ctx = context.WithValue(ctx, memoKey{}, &profileMemo{docs: map[string]*profile.Profile{}})
	}
	return next(ctx)
}

func memoOf(ctx context.Context) *profileMemo {
	m, _ := ctx.Value(memoKey{}).(*profileMemo)
	return m
}

// remember keeps p in the query's memo and returns it for GraphQL.
func remember(ctx context.Context, p *profile.Profile) *model.Profile {
	if m := memoOf(ctx); m != nil {
		m.mu.Lock()
		m.docs[p.ID] = p
		m.mu.Unlock()
	}
	return toProfile(p)
}

// profileDoc is the stored document of the profile id (following merges),
// from the query's memo when it has it; NOT_FOUND when it is gone.
func (r *Resolver) profileDoc(ctx context.Context, tn store.Tenant, id string) (*profile.Profile, error) {
	m := memoOf(ctx)
	if m != nil {
		m.mu.Lock()
		p, ok := m.docs[id]
		m.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	p, err := profile.Resolve(ctx, tn, id, r.identity.Redirect)
	if err != nil {
		return nil, err
	}
	if m != nil {
		m.mu.Lock()
		m.docs[id] = p
		m.mu.Unlock()
	}
	return p, nil
}
