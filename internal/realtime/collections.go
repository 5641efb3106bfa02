package realtime

import "github.com/halo-cdp/halo/store"

// The collections package realtime owns: the outbox: one document per
// change, its seq its own UUIDv7 _id, so index order is time order. Only
// this package reads or writes them (internal/app/ownership_test.go checks
// it); the others call its functions.
const (
	Changes          = "changes"
	ChangesBySeq     = "by_seq"         // (seq)
	ChangesByProfile = "by_profile_seq" // (profileId, seq)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Changes, Indexes: []store.Index{
		{Name: ChangesBySeq, Fields: []string{"seq"}},
		{Name: ChangesByProfile, Fields: []string{"profileId", "seq"}},
	}},
}
