package analytics

import "github.com/halo-cdp/halo/store"

// The collections package analytics owns. Only this package reads or
// writes them (internal/app/ownership_test.go checks it).
const (
	// Rollups holds, per workspace and UTC day, how many events of each
	// name and channel occurred in each quarter of an hour: counts, no
	// person (rollup.go).
	Rollups      = "event_rollups"
	RollupsByDay = "by_day" // (day)
	// Cursors, in the system workspace, holds per workspace the last item
	// folded into its rollups and which instance folds it (roll.go).
	Cursors = "rollup_cursors"
)

// Collections declares them; the store creates them idempotently at
// start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Rollups, Indexes: []store.Index{{Name: RollupsByDay, Fields: []string{"day"}}}},
	{Name: Cursors},
}
