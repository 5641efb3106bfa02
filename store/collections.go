package store

// Collection names. Every collection and index Halo uses is declared here,
// once, and created idempotently at start on either engine.
const (
	Profiles    = "profiles"
	Identities  = "identities"
	Events      = "events"
	Merges      = "merges"
	SearchTerms = "search_terms"
)

// Index names, referenced by domain queries.
const (
	ProfilesByCreated    = "by_created"      // (createdAt)
	ProfilesByUpdated    = "by_updated"      // (updatedAt)
	ProfilesByLastSeen   = "by_last_seen"    // (lastSeenAt)
	IdentitiesByValue    = "by_type_value"   // unique (type, value)
	IdentitiesByProfile  = "by_profile"      // (profileId, type)
	IdentitiesByValueAny = "by_value"        // (value) — search across types
	EventsByMessage      = "by_message"      // unique (messageId)
	EventsByProfileTime  = "by_profile_time" // (profileId, occurredAt)
	MergesByTarget       = "by_target"       // (targetId, at)
	MergesBySource       = "by_source"       // (sourceId, at)
	TermsByTerm          = "by_term"         // (term)
	TermsByProfile       = "by_profile"      // (profileId)
)

// Collections is Halo's schema.
var Collections = []CollectionSpec{
	{Name: Profiles, Indexes: []Index{
		{Name: ProfilesByCreated, Fields: []string{"createdAt"}},
		{Name: ProfilesByUpdated, Fields: []string{"updatedAt"}},
		{Name: ProfilesByLastSeen, Fields: []string{"lastSeenAt"}},
	}},
	{Name: Identities, Indexes: []Index{
		{Name: IdentitiesByValue, Fields: []string{"type", "value"}, Unique: true},
		{Name: IdentitiesByProfile, Fields: []string{"profileId", "type"}},
		{Name: IdentitiesByValueAny, Fields: []string{"value"}},
	}},
	{Name: Events, Indexes: []Index{
		{Name: EventsByMessage, Fields: []string{"messageId"}, Unique: true},
		{Name: EventsByProfileTime, Fields: []string{"profileId", "occurredAt"}},
	}},
	{Name: Merges, Indexes: []Index{
		{Name: MergesByTarget, Fields: []string{"targetId", "at"}},
		{Name: MergesBySource, Fields: []string{"sourceId", "at"}},
	}},
	{Name: SearchTerms, Indexes: []Index{
		{Name: TermsByTerm, Fields: []string{"term"}},
		{Name: TermsByProfile, Fields: []string{"profileId"}},
	}},
}
