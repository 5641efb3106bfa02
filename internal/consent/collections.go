package consent

import "github.com/halo-cdp/halo/store"

// The collections package consent owns: the consent log and the workspace
// purposes. Only this package reads or writes them
// (internal/app/ownership_test.go checks it); the others call its
// functions.
const (
	ConsentLog         = "consent_log"
	ConsentByProfile   = "by_profile_recorded" // (profileId, recordedAt)
	ConsentPurposes    = "consent_purposes"
	ConsentPurposesKey = "by_key" // unique (key)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: ConsentLog, Indexes: []store.Index{
		{Name: ConsentByProfile, Fields: []string{"profileId", "recordedAt"}},
	}},
	{Name: ConsentPurposes, Indexes: []store.Index{
		{Name: ConsentPurposesKey, Fields: []string{"key"}, Unique: true},
	}},
}
