package identity

import "github.com/halo-cdp/halo/store"

// The collections package identity owns: identifiers, merge records and
// the merge queue (system workspace), identifier types and suppressions.
// Only this package reads or writes them (internal/app/ownership_test.go
// checks it); the others call its functions.
const (
	Identities            = "identities"
	IdentitiesByValue     = "by_type_value" // unique (type, value)
	IdentitiesByProfile   = "by_profile"    // (profileId, type)
	IdentitiesByValueAny  = "by_value"      // (value) — search across types
	Merges                = "merges"
	MergesByTarget        = "by_target" // (targetId, at)
	MergesBySource        = "by_source" // (sourceId, at)
	MergesByStatus        = "by_status" // (status, at)
	MergeQueue            = "merge_queue"
	QueueByAt             = "by_at" // (at)
	IdentifierTypes       = "identifier_types"
	IdentifierTypesByName = "by_name" // unique (name)
	Suppressions          = "suppressions"
	SuppressionsByHash    = "by_type_hash" // unique (type, hash)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Identities, Indexes: []store.Index{
		{Name: IdentitiesByValue, Fields: []string{"type", "value"}, Unique: true},
		{Name: IdentitiesByProfile, Fields: []string{"profileId", "type"}},
		{Name: IdentitiesByValueAny, Fields: []string{"value"}},
	}},
	{Name: Merges, Indexes: []store.Index{
		{Name: MergesByTarget, Fields: []string{"targetId", "at"}},
		{Name: MergesBySource, Fields: []string{"sourceId", "at"}},
		{Name: MergesByStatus, Fields: []string{"status", "at"}},
	}},
	{Name: MergeQueue, Indexes: []store.Index{
		{Name: QueueByAt, Fields: []string{"at"}},
	}},
	{Name: IdentifierTypes, Indexes: []store.Index{
		{Name: IdentifierTypesByName, Fields: []string{"name"}, Unique: true},
	}},
	{Name: Suppressions, Indexes: []store.Index{
		{Name: SuppressionsByHash, Fields: []string{"type", "hash"}, Unique: true},
	}},
}
