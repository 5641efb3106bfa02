package segment

import "github.com/halo-cdp/halo/store"

// The collections package segment owns: segments, their builds, their
// members, the membership history and the workspaces with segments
// (system workspace).
// Only this package reads or writes them (internal/app/ownership_test.go
// checks it); the others call its functions.
const (
	Segments          = "segments"
	SegmentsByName    = "by_name"   // unique (name)
	SegmentsByStatus  = "by_status" // (status, name)
	Memberships       = "memberships"
	MembersByEntered  = "by_segment_entered" // (segmentId, enteredAt)
	MembershipChanges = "membership_changes"
	ChangesBySegment  = "by_segment" // (segmentId, at)
	// ChangesByKind answers a segment's size at any time by index counts
	// (Moves): entries less exits before it.
	ChangesByKind     = "by_segment_kind" // (segmentId, kind, at)
	ChangesOfProfile  = "by_profile"      // (profileId, at)
	SegmentBuilds     = "segment_builds"
	BuildsByStatus    = "by_status" // (status)
	SegmentWorkspaces = "segment_workspaces"
	WorkspacesByID    = "by_workspace" // (ws)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Segments, Indexes: []store.Index{
		{Name: SegmentsByName, Fields: []string{"name"}, Unique: true},
		{Name: SegmentsByStatus, Fields: []string{"status", "name"}},
	}},
	// A membership's _id is segmentId/profileId, so the primary key is
	// the index of members by segment (store.ByID with a prefix), and a
	// profile's memberships are read by id, one per segment of the
	// workspace. by_segment_profile and by_profile are retired: they
	// repeated that at two index entries per membership, and memberships
	// are the most written documents of ingest.
	{Name: Memberships, Indexes: []store.Index{
		{Name: MembersByEntered, Fields: []string{"segmentId", "enteredAt"}},
	}, Retired: []string{"by_segment_profile", "by_profile"}},
	{Name: MembershipChanges, Indexes: []store.Index{
		{Name: ChangesBySegment, Fields: []string{"segmentId", "at"}},
		{Name: ChangesByKind, Fields: []string{"segmentId", "kind", "at"}},
		{Name: ChangesOfProfile, Fields: []string{"profileId", "at"}},
	}},
	{Name: SegmentBuilds, Indexes: []store.Index{
		{Name: BuildsByStatus, Fields: []string{"status"}},
	}},
	{Name: SegmentWorkspaces, Indexes: []store.Index{
		{Name: WorkspacesByID, Fields: []string{"ws"}},
	}},
}
