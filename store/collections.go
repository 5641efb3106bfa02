package store

// SystemWorkspace holds Halo's own bookkeeping that spans workspaces. Token
// workspaces cannot start with "_", so no client can reach it.
const SystemWorkspace = "_system"

// Collection names. Every collection and index Halo uses is declared here,
// once, and created idempotently at start on either engine.
const (
	Profiles    = "profiles"
	Identities  = "identities"
	Events      = "events"
	Merges      = "merges"
	SearchTerms = "search_terms"
	// MergeQueue lives in the SystemWorkspace: one document per merge or
	// unmerge under way in any workspace, so a restart finishes them.
	MergeQueue = "merge_queue"
)

// Index names, referenced by domain queries.
const (
	ProfilesByCreated    = "by_created"      // (createdAt)
	ProfilesByUpdated    = "by_updated"      // (updatedAt)
	ProfilesByLastSeen   = "by_last_seen"    // (lastSeenAt)
	ProfilesByNextEval   = "by_next_eval"    // (nextEvalAt) — segment sweeper
	IdentitiesByValue    = "by_type_value"   // unique (type, value)
	IdentitiesByProfile  = "by_profile"      // (profileId, type)
	IdentitiesByValueAny = "by_value"        // (value) — search across types
	EventsByMessage      = "by_message"      // unique (messageId)
	EventsByProfileTime  = "by_profile_time" // (profileId, occurredAt)
	MergesByTarget       = "by_target"       // (targetId, at)
	MergesBySource       = "by_source"       // (sourceId, at)
	MergesByStatus       = "by_status"       // (status, at)
	QueueByAt            = "by_at"           // (at)
	TermsByTerm          = "by_term"         // (term)
	TermsByProfile       = "by_profile"      // (profileId)
)

// IdentifierTypes holds each workspace's customised and custom identifier
// types (the built-in defaults live in code, in package identity).
const (
	IdentifierTypes       = "identifier_types"
	IdentifierTypesByName = "by_name" // unique (name)
)

// Changes is the real-time outbox (package realtime): one document per
// change (profile.updated, timeline.appended, membership.changed). Its
// seq is the document's own UUIDv7 _id, so index order is time order.
const (
	Changes          = "changes"
	ChangesBySeq     = "by_seq"         // (seq)
	ChangesByProfile = "by_profile_seq" // (profileId, seq)
)

// Segments and their members (package membership).
const (
	Segments          = "segments"
	SegmentsByName    = "by_name"   // unique (name)
	SegmentsByStatus  = "by_status" // (status, name)
	Memberships       = "memberships"
	MembersBySegment  = "by_segment_profile" // unique (segmentId, profileId)
	MembersByProfile  = "by_profile"         // (profileId, segmentId)
	MembersByEntered  = "by_segment_entered" // (segmentId, enteredAt)
	MembershipChanges = "membership_changes"
	ChangesBySegment  = "by_segment" // (segmentId, at)
	ChangesOfProfile  = "by_profile" // (profileId, at)
	// SegmentWorkspaces lives in the SystemWorkspace: one document per
	// workspace that ever had a segment, so the sweeper knows where to look.
	SegmentWorkspaces = "segment_workspaces"
	WorkspacesByID    = "by_workspace" // (ws)
)

// Computed traits (package traits): one definition per key, found by key
// (its _id is a NewID; definitions written before issue 15 have the key as
// _id), and (in the SystemWorkspace) the workspaces that have definitions,
// so a restart resumes their backfills.
const (
	ComputedTraits      = "computed_traits"
	ComputedTraitsByKey = "by_key" // unique (key)
	TraitWorkspaces     = "trait_workspaces"
	TraitWorkspacesByWS = "by_workspace" // (ws)
)

// Consent (package consent): the append-only log and custom purposes.
// A profile's current state lives on its document.
const (
	ConsentLog         = "consent_log"
	ConsentByProfile   = "by_profile_recorded" // (profileId, recordedAt)
	ConsentPurposes    = "consent_purposes"
	ConsentPurposesKey = "by_key" // unique (key)
)

// Privacy (package privacy): suppressed identifiers (salted hashes, never
// values), erasure receipts, and per-workspace settings (PII fields, the
// suppression salt), one document per setting.
const (
	Suppressions       = "suppressions"
	SuppressionsByHash = "by_type_hash" // unique (type, hash)
	Erasures           = "erasures"
	ErasuresByAt       = "by_erased_at" // (erasedAt)
	Settings           = "settings"
	SettingsByKey      = "by_key" // unique (key)
)

// Collections is Halo's schema.
var Collections = []CollectionSpec{
	{Name: Profiles, Indexes: []Index{
		{Name: ProfilesByCreated, Fields: []string{"createdAt"}},
		{Name: ProfilesByUpdated, Fields: []string{"updatedAt"}},
		{Name: ProfilesByLastSeen, Fields: []string{"lastSeenAt"}},
		{Name: ProfilesByNextEval, Fields: []string{"nextEvalAt"}},
	}},
	{Name: Segments, Indexes: []Index{
		{Name: SegmentsByName, Fields: []string{"name"}, Unique: true},
		{Name: SegmentsByStatus, Fields: []string{"status", "name"}},
	}},
	{Name: Memberships, Indexes: []Index{
		{Name: MembersBySegment, Fields: []string{"segmentId", "profileId"}, Unique: true},
		{Name: MembersByProfile, Fields: []string{"profileId", "segmentId"}},
		{Name: MembersByEntered, Fields: []string{"segmentId", "enteredAt"}},
	}},
	{Name: MembershipChanges, Indexes: []Index{
		{Name: ChangesBySegment, Fields: []string{"segmentId", "at"}},
		{Name: ChangesOfProfile, Fields: []string{"profileId", "at"}},
	}},
	{Name: SegmentWorkspaces, Indexes: []Index{
		{Name: WorkspacesByID, Fields: []string{"ws"}},
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
		{Name: MergesByStatus, Fields: []string{"status", "at"}},
	}},
	{Name: MergeQueue, Indexes: []Index{
		{Name: QueueByAt, Fields: []string{"at"}},
	}},
	{Name: SearchTerms, Indexes: []Index{
		{Name: TermsByTerm, Fields: []string{"term"}},
		{Name: TermsByProfile, Fields: []string{"profileId"}},
	}},
	{Name: IdentifierTypes, Indexes: []Index{
		{Name: IdentifierTypesByName, Fields: []string{"name"}, Unique: true},
	}},
	{Name: Changes, Indexes: []Index{
		{Name: ChangesBySeq, Fields: []string{"seq"}},
		{Name: ChangesByProfile, Fields: []string{"profileId", "seq"}},
	}},
	{Name: ComputedTraits, Indexes: []Index{
		{Name: ComputedTraitsByKey, Fields: []string{"key"}, Unique: true},
	}},
	{Name: TraitWorkspaces, Indexes: []Index{
		{Name: TraitWorkspacesByWS, Fields: []string{"ws"}},
	}},
	{Name: ConsentLog, Indexes: []Index{
		{Name: ConsentByProfile, Fields: []string{"profileId", "recordedAt"}},
	}},
	{Name: ConsentPurposes, Indexes: []Index{
		{Name: ConsentPurposesKey, Fields: []string{"key"}, Unique: true},
	}},
	{Name: Suppressions, Indexes: []Index{
		{Name: SuppressionsByHash, Fields: []string{"type", "hash"}, Unique: true},
	}},
	{Name: Erasures, Indexes: []Index{
		{Name: ErasuresByAt, Fields: []string{"erasedAt"}},
	}},
	{Name: Settings, Indexes: []Index{
		{Name: SettingsByKey, Fields: []string{"key"}, Unique: true},
	}},
}
