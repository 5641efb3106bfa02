package timeline_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
)

// A merge folds its source's count into the survivor before it moves the
// source's items. A recount in between (an ingest write that finds the
// survivor's recountEpoch moved) would lose the items still on the
// source: it names the source instead, for the caller to see the merge
// through, and counts them only when told to.
func TestRecountedWaitsForASourceStillMoving(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	target, _ := streamTrack(t, x, "t", "t1", "t2", "t3")
	source, _ := streamTrack(t, x, "s", "s1", "s2")
	gone, _ := streamTrack(t, x, "g", "g1")
	// As a merge of source into target leaves them after its fold, with
	// gone merged into target long ago (its document retired, its item
	// moved).
	if err := timeline.MoveEvents(x.Ctx, x.Tenant, gone, target); err != nil {
		t.Fatal(err)
	}
	if err := profile.Erase(x.Ctx, x.Tenant, gone); err != nil {
		t.Fatal(err)
	}
	// A profile of mergedFrom that exists unclaimed (as one an unmerge has
	// just restored) is not moving: its items are its own.
	restored := x.Profile(t, target)
	restored.MergedFrom = []string{gone, source}
	if moving, err := timeline.Recounted(x.Ctx, x.Tenant, restored, false); err != nil || len(moving) != 0 || restored.EventCount != 4 {
		t.Errorf("with the source unclaimed: moving %v, eventCount %d (%v); want none and 4", moving, restored.EventCount, err)
	}
	// Claimed by its merge, the source is moving.
	if _, err := profile.UpdateAny(x.Ctx, x.Tenant, source, time.Now(), func(s *profile.Profile) error {
		s.MergingInto, s.MergeID = target, "m1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p := x.Profile(t, target)
	p.MergedFrom = []string{gone, source}
	p.EventCount = 0
	moving, err := timeline.Recounted(x.Ctx, x.Tenant, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(moving) != 1 || moving[0] != source || p.EventCount != 0 {
		t.Fatalf("Recounted: moving %v, eventCount %d; want the source named and nothing counted", moving, p.EventCount)
	}
	if _, err := timeline.Recounted(x.Ctx, x.Tenant, p, true); err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 6 {
		t.Errorf("settled: eventCount %d, want 6 (3 own, 1 moved from the retired profile, 2 still on the source)", p.EventCount)
	}
	// Once the merge is through, the count is the target's own.
	if err := timeline.MoveEvents(x.Ctx, x.Tenant, source, target); err != nil {
		t.Fatal(err)
	}
	if err := profile.Erase(x.Ctx, x.Tenant, source); err != nil {
		t.Fatal(err)
	}
	p.EventCount = 0
	if moving, err := timeline.Recounted(x.Ctx, x.Tenant, p, false); err != nil || len(moving) != 0 || p.EventCount != 6 {
		t.Errorf("after the merge: moving %v, eventCount %d (%v); want none and 6", moving, p.EventCount, err)
	}
}
