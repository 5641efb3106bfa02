package privacy

import "github.com/halo-cdp/halo/store"

// The collections package privacy owns: erasure records. Only this package
// reads or writes them (internal/app/ownership_test.go checks it); the
// others call its functions.
const (
	Erasures     = "erasures"
	ErasuresByAt = "by_erased_at" // (erasedAt)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Erasures, Indexes: []store.Index{
		{Name: ErasuresByAt, Fields: []string{"erasedAt"}},
	}},
}
