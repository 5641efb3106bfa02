package realtime

import "github.com/halo-cdp/halo/store"

// The collections package realtime owns: the outbox: one document per
// Publish call (a batch of changes), its seq its own UUIDv7 _id, so index
// order is time order. Only
// this package reads or writes them (internal/app/ownership_test.go checks
// it); the others call its functions.
const (
	Changes      = "changes"
	ChangesBySeq = "by_seq" // (seq)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
//
// by_profile_seq (profileId, seq) is retired: nothing read it, and every
// change paid an index entry for it (about a third of the outbox's
// index pages). by_seq stays although seq is the _id: the embedded
// engine's primary key is the id alone, so only by_seq reads one
// workspace's changes without passing over the others'.
var Collections = []store.CollectionSpec{
	{Name: Changes, Indexes: []store.Index{
		{Name: ChangesBySeq, Fields: []string{"seq"}},
	}, Retired: []string{"by_profile_seq"}},
}
