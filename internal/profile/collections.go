package profile

import "github.com/halo-cdp/halo/store"

// The collections package profile owns: the profile documents and their
// search terms. Only this package reads or writes them
// (internal/app/ownership_test.go checks it); the others call its
// functions.
const (
	Profiles           = "profiles"
	ProfilesByCreated  = "by_created"   // (createdAt)
	ProfilesByUpdated  = "by_updated"   // (updatedAt)
	ProfilesByLastSeen = "by_last_seen" // (lastSeenAt)
	ProfilesByNextEval = "by_next_eval" // (nextEvalAt) — segment sweeper
	SearchTerms        = "search_terms" // MergeQueue lives in the SystemWorkspace: one document per merge or
	TermsByTerm        = "by_term"      // (term)
	TermsByProfile     = "by_profile"   // (profileId)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Profiles, LargeDocuments: true, Indexes: []store.Index{
		{Name: ProfilesByCreated, Fields: []string{"createdAt"}},
		{Name: ProfilesByUpdated, Fields: []string{"updatedAt"}},
		{Name: ProfilesByLastSeen, Fields: []string{"lastSeenAt"}},
		{Name: ProfilesByNextEval, Fields: []string{"nextEvalAt"}},
	}},
	{Name: SearchTerms, Indexes: []store.Index{
		{Name: TermsByTerm, Fields: []string{"term"}},
		{Name: TermsByProfile, Fields: []string{"profileId"}},
	}},
}
