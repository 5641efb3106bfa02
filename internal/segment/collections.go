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
	MembersBySegment  = "by_segment_profile" // unique (segmentId, profileId)
	MembersByProfile  = "by_profile"         // (profileId, segmentId)
	MembersByEntered  = "by_segment_entered" // (segmentId, enteredAt)
	MembershipChanges = "membership_changes"
	ChangesBySegment  = "by_segment" // (segmentId, at)
	ChangesOfProfile  = "by_profile" // (profileId, at)
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
	{Name: Memberships, Indexes: []store.Index{
		{Name: MembersBySegment, Fields: []string{"segmentId", "profileId"}, Unique: true},
		{Name: MembersByProfile, Fields: []string{"profileId", "segmentId"}},
		{Name: MembersByEntered, Fields: []string{"segmentId", "enteredAt"}},
	}},
	{Name: MembershipChanges, Indexes: []store.Index{
		{Name: ChangesBySegment, Fields: []string{"segmentId", "at"}},
		{Name: ChangesOfProfile, Fields: []string{"profileId", "at"}},
	}},
	{Name: SegmentBuilds, Indexes: []store.Index{
		{Name: BuildsByStatus, Fields: []string{"status"}},
	}},
	{Name: SegmentWorkspaces, Indexes: []store.Index{
		{Name: WorkspacesByID, Fields: []string{"ws"}},
	}},
}
