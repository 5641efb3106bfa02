// Package resolvers is the thin GraphQL layer: it checks GraphQL input
// shapes, calls the domain packages and maps results to graph/model types.
package resolvers

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/apperr"
	"github.com/halo-cdp/halo/auth"
	"github.com/halo-cdp/halo/consent"
	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/identity"
	"github.com/halo-cdp/halo/membership"
	"github.com/halo-cdp/halo/privacy"
	"github.com/halo-cdp/halo/realtime"
	"github.com/halo-cdp/halo/services"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/timeline"
	"github.com/halo-cdp/halo/traits"
)

// Resolver is the root resolver: the domain services, wired once.
type Resolver struct {
	st       *store.Store
	identity *identity.Resolver
	timeline *timeline.Service
	hub      *realtime.Hub
	segments *membership.Engine
	consent  *consent.Service
	privacy  *privacy.Service
	traits   *traits.Engine
}

// Option adjusts the wiring.
type Option func(*options)

type options struct {
	now func() time.Time
	hub *realtime.Hub
}

// WithClock makes every domain service read time from now (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// New wires the domain services over st.
func New(st *store.Store, opts ...Option) *Resolver {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	svc := services.New(o.now)
	if o.hub != nil {
		svc.Publish(o.hub)
	}
	return &Resolver{st: st, identity: svc.Identity, timeline: svc.Timeline, hub: o.hub, segments: svc.Segments, consent: svc.Consent, privacy: svc.Privacy, traits: svc.Traits}
}

// Config is the gqlgen configuration for graph.NewExecutableSchema: the
// resolvers, @hasScope and the cost model.
func (r *Resolver) Config() graph.Config {
	return graph.Config{
		Resolvers:  r,
		Directives: graph.DirectiveRoot{HasScope: HasScope},
		Complexity: Complexity(),
	}
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
