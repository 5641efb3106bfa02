// Package resolvers is the thin GraphQL layer: it validates GraphQL input
// shapes, calls the domain packages and maps results to graph/model types.
package resolvers

import (
	"time"

	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/store"
)

// Resolver is the root resolver.
type Resolver struct {
	st  *store.Store
	now func() time.Time
}

// New builds the root resolver over st.
func New(st *store.Store) *Resolver {
	return &Resolver{st: st, now: time.Now}
}

// Config is the gqlgen configuration for graph.NewExecutableSchema.
func (r *Resolver) Config() graph.Config {
	return graph.Config{Resolvers: r}
}
