// Package resolvers is the thin GraphQL layer: it checks GraphQL input
// shapes, calls the domain packages and maps results to graph/model types.
package resolvers

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/apperr"
	"github.com/halo-cdp/halo/auth"
	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/identity"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/timeline"
)

// Resolver is the root resolver: the domain services, wired once.
type Resolver struct {
	st       *store.Store
	identity *identity.Resolver
	timeline *timeline.Service
}

// Option adjusts the wiring (tests inject a clock).
type Option func(*Resolver)

// WithClock makes every domain service read time from now.
func WithClock(now func() time.Time) Option {
	return func(r *Resolver) {
		r.identity.Now = now
		r.timeline.Now = now
	}
}

// New wires the domain services over st.
func New(st *store.Store, opts ...Option) *Resolver {
	id := &identity.Resolver{Now: time.Now, Movers: []identity.Mover{timeline.MoveEvents}}
	r := &Resolver{
		st:       st,
		identity: id,
		timeline: &timeline.Service{Identity: id, Now: time.Now},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Config is the gqlgen configuration for graph.NewExecutableSchema.
func (r *Resolver) Config() graph.Config {
	return graph.Config{Resolvers: r}
}

// tenant returns the caller's workspace view of the store. The workspace
// comes only from the verified token.
func (r *Resolver) tenant(ctx context.Context) (store.Tenant, auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return store.Tenant{}, auth.Principal{}, apperr.New(apperr.Unauthenticated, "authentication required")
	}
	return r.st.Tenant(p.Workspace), p, nil
}
