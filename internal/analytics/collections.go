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
	// Activity holds, per workspace and UTC day, which profiles (by
	// number) had an event in which quarter hours (activity.go).
	Activity      = "activity_days"
	ActivityByDay = "by_day" // (day)
	// Numbers holds each profile's number in the activity days; the
	// document's id is the profile's (numbers.go).
	Numbers    = "activity_numbers"
	NumbersByN = "by_n" // (n)
	// Moves holds the marks on profiles whose events a merge or an
	// unmerge is moving (moves.go).
	Moves = "activity_moves"
)

// Background are those the roller writes on its own, from the stored
// events, at any moment: a comparison of the store before and after a
// call leaves them aside.
var Background = []string{Rollups, Cursors, Activity, Numbers, Moves}

// Collections declares them; the store creates them idempotently at
// start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Rollups, Indexes: []store.Index{{Name: RollupsByDay, Fields: []string{"day"}}}},
	{Name: Cursors},
	{Name: Activity, Indexes: []store.Index{{Name: ActivityByDay, Fields: []string{"day"}}}},
	{Name: Numbers, Indexes: []store.Index{{Name: NumbersByN, Fields: []string{"n"}, Unique: true}}},
	{Name: Moves},
}
