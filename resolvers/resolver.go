// Package resolvers is the thin GraphQL layer: it checks GraphQL input
// shapes, calls the domain packages and maps results to graph/model types.
package resolvers

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// Resolver is the root resolver: the domain services, wired once.
type Resolver struct {
	st        *store.Store
	identity  *identity.Resolver
	ingest    *ingest.Pipeline
	timeline  *timeline.Service
	hub       *realtime.Hub
	segments  *segment.Engine
	consent   *consent.Service
	privacy   *privacy.Service
	traits    *traits.Engine
	analytics *analytics.Service
	accounts  *account.Service
	deals     *deal.Service
	tasks     *task.Service
	tickets   *ticket.Service
	lifecycle *lifecycle.Service
}

// Option adjusts the wiring.
type Option func(*options)

type options struct {
	now func() time.Time
	hub *realtime.Hub
	svc *app.Services
}

// WithClock makes every domain service read time from now (tests). It
// applies only to the services New builds itself (not WithServices).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithServices makes the resolvers use svc, the process's domain services
// (one set per process: their caches are shared with the background
// work), instead of building their own. svc is used as the caller wired
// it: its clock, and its publisher (svc.Start points it at the hub).
func WithServices(svc *app.Services) Option {
	return func(o *options) { o.svc = svc }
}

// New wires the domain services over st (or uses WithServices').
func New(st *store.Store, opts ...Option) *Resolver {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	svc := o.svc
	if svc == nil {
		svc = app.New(o.now)
		if o.hub != nil {
			svc.Publish(o.hub)
		}
	}
	return &Resolver{st: st, identity: svc.Identity, ingest: svc.Ingest, timeline: svc.Timeline, hub: o.hub, segments: svc.Segments, consent: svc.Consent, privacy: svc.Privacy, traits: svc.Traits, analytics: svc.Analytics, accounts: svc.Accounts, deals: svc.Deals, tasks: svc.Tasks, tickets: svc.Tickets, lifecycle: svc.Lifecycle}
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
