package segment_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// Memberships are read by id (segmentId/profileId), with no index of
// their own: a profile's, in every segment, archived ones included; a
// segment's, by the id prefix.
func TestMembershipsReadByID(t *testing.T) {
	e := newEnv(t)
	vip := e.create(t, "vip", rule.Rule{Trait: &rule.TraitCond{Key: "vip", Op: rule.EQ, Value: true}})
	known := e.create(t, "known", rule.Rule{Trait: &rule.TraitCond{Key: "vip", Op: rule.Exists, Value: true}})
	a := e.identify(t, "a", map[string]any{"vip": true})
	b := e.identify(t, "b", map[string]any{"vip": false})
	e.identify(t, "c", nil)
	if _, err := e.seg.Archive(e.Ctx, e.Tenant, vip.ID); err != nil {
		t.Fatal(err)
	}
	segmentsOf := func(pid string) map[string]bool {
		t.Helper()
		ms, err := e.seg.ProfileSegments(e.Ctx, e.Tenant, pid)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, m := range ms {
			if m.ProfileID != pid {
				t.Fatalf("membership of %s read for %s", m.ProfileID, pid)
			}
			out[m.SegmentID] = true
		}
		return out
	}
	if got := segmentsOf(a); len(got) != 2 || !got[vip.ID] || !got[known.ID] {
		t.Fatalf("a's segments (one archived) %v", got)
	}
	if got := segmentsOf(b); len(got) != 1 || !got[known.ID] {
		t.Fatalf("b's segments %v", got)
	}
	for seg, want := range map[string]int64{vip.ID: 1, known.ID: 2} {
		if n, err := segment.Size(e.Ctx, e.Tenant, seg); err != nil || n != want {
			t.Fatalf("size of %s = %d, %v; want %d", seg, n, err, want)
		}
	}
	// The export reads every membership too.
	var exported []string
	if err := segment.MembershipsOf(e.Ctx, e.Tenant, a, func(raw bson.Raw) error {
		exported = append(exported, raw.Lookup("segmentId").StringValue())
		return nil
	}); err != nil || len(exported) != 2 {
		t.Fatalf("exported %v, %v", exported, err)
	}
	// Erasure leaves a in no segment, archived ones included.
	if _, err := e.seg.Erase(e.Ctx, e.Tenant, []string{a}, "erased-a", e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := segmentsOf(a); len(got) != 0 {
		t.Fatalf("after erasure %v", got)
	}
	if n, _ := segment.Size(e.Ctx, e.Tenant, vip.ID); n != 0 {
		t.Fatalf("archived segment keeps %d members after erasure", n)
	}
}
