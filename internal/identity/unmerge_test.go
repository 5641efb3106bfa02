package identity_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// TestManualMergeThenUnmerge: a manual merge keeps the older profile
// whichever is named source, later trait writes win, and the unmerge
// gives both people back exactly as they were, once.
func TestManualMergeThenUnmerge(t *testing.T) {
	e := newWriteEnv(t)
	at := t0.Add(-2 * time.Hour)
	a := e.identify(t, map[string]any{"firstName": "Pat", "plan": "free", "city": "Oslo"}, "email", "pat@example.com", "anonymousId", "pat-anon").Profile.ID
	e.trackEvent(t, "pat-1", "page_viewed", at, "email", "pat@example.com")
	e.trackEvent(t, "pat-2", "page_viewed", at.Add(time.Minute), "anonymousId", "pat-anon")
	b := e.identify(t, map[string]any{"firstName": "Kai", "plan": "pro"}, "email", "kai@example.com", "deviceId", "kai-phone").Profile.ID
	e.trackEvent(t, "kai-1", "order_completed", at.Add(2*time.Minute), "deviceId", "kai-phone")
	if _, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: b, Kind: "CALL", Subject: "hi", MessageID: "kai-call"}); err != nil {
		t.Fatal(err)
	}
	beforeA, beforeB := e.snap(t, a), e.snap(t, b)

	mp, err := e.svc.Identity.Merge(e.ctx, e.tn, a, b, "same person, agent confirmed", "test")
	if err != nil {
		t.Fatal(err)
	}
	// The older profile (a) survives even though it was named source.
	if mp.ID != a || mp.EventCount != 4 || !slices.Contains(mp.MergedFrom, b) {
		t.Fatalf("merge result %+v", mp)
	}
	// Later writes win per key: b's plan and firstName were written last.
	if mp.Traits["plan"] != "pro" || mp.Traits["firstName"] != "Kai" || mp.Traits["city"] != "Oslo" {
		t.Fatalf("merged traits %v", mp.Traits)
	}
	hist, err := identity.History(e.ctx, e.tn, mp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || hist[0].Kind != identity.KindMerge || hist[0].Actor != "test" || hist[0].Reason != "same person, agent confirmed" || len(hist[0].Moved) != 2 {
		t.Fatalf("history %+v", hist)
	}
	if p := e.live(t, b); p.ID != a {
		t.Fatalf("merged-away id resolves to %+v", p)
	}

	mergeID := hist[0].ID
	u, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, mergeID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if u.Restored.ID != b || u.Survivor.ID != a || u.Record.Kind != identity.KindUnmerge {
		t.Fatalf("unmerge = %+v", u)
	}
	afterA, afterB := e.snap(t, a), e.snap(t, b)
	if !reflect.DeepEqual(afterA, beforeA) {
		t.Fatalf("survivor after unmerge:\n got  %+v\n want %+v", afterA, beforeA)
	}
	if !reflect.DeepEqual(afterB, beforeB) {
		t.Fatalf("restored after unmerge:\n got  %+v\n want %+v", afterB, beforeB)
	}
	// The history keeps both records; the merge is marked undone.
	hist, err = identity.History(e.ctx, e.tn, a)
	if err != nil {
		t.Fatal(err)
	}
	unmerge := func(r identity.Record) bool { return r.Kind == identity.KindUnmerge }
	undone := func(r identity.Record) bool {
		return r.Kind == identity.KindMerge && r.Status == "undone" && r.UndoneAt != nil
	}
	if !slices.ContainsFunc(hist, unmerge) || !slices.ContainsFunc(hist, undone) {
		t.Fatalf("history after unmerge: %+v", hist)
	}
	// Unmerging again changes nothing and answers the same record.
	again, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, mergeID, "test")
	if err != nil || again.Record.ID != u.Record.ID {
		t.Fatalf("second unmerge: %+v, %v; want record %s", again.Record, err, u.Record.ID)
	}
	if got := e.snap(t, b); !reflect.DeepEqual(got, beforeB) {
		t.Fatalf("second unmerge changed b: %+v", got)
	}
	// Bad input.
	if _, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, "nope", "test"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown merge: %v, want NOT_FOUND", err)
	}
	if _, err := e.svc.Identity.Merge(e.ctx, e.tn, a, a, "manual", "test"); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("merge into itself: %v, want BAD_USER_INPUT", err)
	}
	if _, err := e.svc.Identity.Merge(e.ctx, e.tn, a, "nope", "manual", "test"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("merge with an unknown profile: %v, want NOT_FOUND", err)
	}
}

// TestUnmergeKeepsLaterItemsByIdentifier: what reached the survivor after
// the merge goes back on unmerge only if it carries one of the restored
// profile's identifiers.
func TestUnmergeKeepsLaterItemsByIdentifier(t *testing.T) {
	e := newWriteEnv(t)
	a := e.identify(t, nil, "email", "old@example.com").Profile.ID
	b := e.identify(t, nil, "email", "new@example.com").Profile.ID
	if _, err := e.svc.Identity.Merge(e.ctx, e.tn, b, a, "manual", "test"); err != nil {
		t.Fatal(err)
	}
	hist, err := identity.History(e.ctx, e.tn, a)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	at := t0.Add(-time.Minute)
	e.trackEvent(t, "to-b", "page_viewed", at, "email", "new@example.com")
	e.trackEvent(t, "to-a", "page_viewed", at, "email", "old@example.com")
	if _, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, hist[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := e.snap(t, b); !reflect.DeepEqual(got.Messages, []string{"to-b"}) || got.EventCount != 1 {
		t.Fatalf("restored profile %+v, want the event carrying its email", got)
	}
	if got := e.snap(t, a); !reflect.DeepEqual(got.Messages, []string{"to-a"}) || got.EventCount != 1 {
		t.Fatalf("survivor %+v, want only its own later event", got)
	}
}

// A restored profile enters its segments again through the unmerge, with
// an entry in each segment's history: the history (ENTERED less EXITED)
// adds up to the members after a merge and an unmerge, as the
// segmentSize series relies on.
func TestUnmergeRecordsTheRestoredProfileEntries(t *testing.T) {
	e := newWriteEnv(t)
	s, err := e.svc.Segments.Create(e.ctx, e.tn, segment.CreateInput{Name: "pros", Rule: &rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	a := e.identify(t, map[string]any{"plan": "pro"}, "email", "ana@example.com").Profile.ID
	b := e.identify(t, map[string]any{"plan": "pro"}, "email", "ben@example.com").Profile.ID
	mp, err := e.svc.Identity.Merge(e.ctx, e.tn, a, b, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	hist, err := identity.History(e.ctx, e.tn, mp.ID)
	if err != nil || len(hist) == 0 {
		t.Fatalf("merge history %v %v", hist, err)
	}
	if _, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, hist[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	size, err := segment.Size(e.ctx, e.tn, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := segment.Moves(e.ctx, e.tn, s.ID, []time.Time{e.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	net := before[0] - before[1]
	var causes []string
	changes, _, _, err := e.svc.Segments.History(e.ctx, e.tn, s.ID, 20, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		causes = append(causes, c.ProfileID[len(c.ProfileID)-4:]+" "+c.Kind+" "+c.Cause)
	}
	if size != 2 || net != size {
		t.Fatalf("%d members, the history adds up to %d: %v", size, net, causes)
	}
	if c := changes[0]; c.ProfileID != b || c.Kind != segment.Entered || c.Cause != "unmerge" {
		t.Fatalf("the newest change is %+v, want %s ENTERED by the unmerge (%v)", c, b, causes)
	}
}
