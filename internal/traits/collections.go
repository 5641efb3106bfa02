package traits

import "github.com/halo-cdp/halo/store"

// The collections package traits owns: computed-trait definitions and the
// workspaces with definitions (system workspace). Only this package reads
// or writes them (internal/app/ownership_test.go checks it); the others
// call its functions.
const (
	ComputedTraits      = "computed_traits"
	ComputedTraitsByKey = "by_key" // unique (key)
	TraitWorkspaces     = "trait_workspaces"
	TraitWorkspacesByWS = "by_workspace" // (ws)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: ComputedTraits, Indexes: []store.Index{
		{Name: ComputedTraitsByKey, Fields: []string{"key"}, Unique: true},
	}},
	{Name: TraitWorkspaces, Indexes: []store.Index{
		{Name: TraitWorkspacesByWS, Fields: []string{"ws"}},
	}},
}
