// Package seed generates Halo's deterministic demo data: profiles with
// anonymous and known identifiers, web events and CRM interactions.
package seed

import (
	"context"

	"github.com/halo-cdp/halo/store"
)

// Options sizes the demo data.
type Options struct {
	Seed     int64 // same seed, same data
	Profiles int   // default 1000
	Events   int   // default 25000
}

// Stats says what Load wrote.
type Stats struct {
	Profiles, Events, Interactions int
}

// Load writes demo data into workspace. TODO: implemented in this issue.
func Load(ctx context.Context, st *store.Store, workspace string, opts Options) (Stats, error) {
	return Stats{}, nil
}
