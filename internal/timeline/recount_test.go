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
// survivor's computedEpoch moved) counts the items still on the source:
// counting the survivor's own items alone would lose them for good.
func TestRecountedCountsItemsOfASourceStillMoving(t *testing.T) {
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
	p := x.Profile(t, target)
	p.MergedFrom = []string{gone, source}
	p.EventCount = 0
	if err := timeline.Recounted(x.Ctx, x.Tenant, p); err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 6 {
		t.Errorf("eventCount %d, want 6 (3 own, 1 moved from the retired profile, 2 still on the source)", p.EventCount)
	}
}
