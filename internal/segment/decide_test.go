package segment_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

func proRule() rule.Rule {
	return rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}
}

// decideOnly writes pid with its memberships decided and no hand-off:
// what a crash right after the compare-and-swap leaves.
func (e *env) decideOnly(t *testing.T, pid string, traits map[string]any) *profile.Profile {
	t.Helper()
	d, err := e.seg.Decider(e.Ctx, e.Tenant, "identify")
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.UpdateAny(e.Ctx, e.Tenant, pid, e.Clock.Now(), func(p *profile.Profile) error {
		if err := p.ApplyTraits(traits, e.Clock.Now()); err != nil {
			return err
		}
		_, err := d.Decide(e.Ctx, e.Tenant, p, rule.Touched{All: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A hand-off a crash interrupted is finished by the sweeper, and handing
// the same moves off again records nothing twice.
func TestHandOffAfterCrashRecordsOnce(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "pro", proRule())
	pid := e.identify(t, "a", map[string]any{"plan": "free"})
	p := e.decideOnly(t, pid, map[string]any{"plan": "pro"})
	if !slices.Contains(p.Segments, s.ID) || len(p.Moves) != 1 || e.members(t, s.ID)[pid] || len(e.history(t, s.ID)) != 0 {
		t.Fatalf("after the write alone: segments %v moves %+v members %v history %v", p.Segments, p.Moves, e.members(t, s.ID), e.history(t, s.ID))
	}
	// Nothing writes the profile again: the sweeper finds it held early.
	e.Clock.Set(start.Add(2 * time.Minute))
	if n, err := e.seg.Sweep(e.Ctx, e.Tenant, e.Clock.Now()); err != nil || n != 1 {
		t.Fatalf("sweep visited %d (%v)", n, err)
	}
	if !e.members(t, s.ID)[pid] || fmt.Sprint(e.history(t, s.ID)) != "[ENTERED:identify]" {
		t.Fatalf("after the sweep: members %v history %v", e.members(t, s.ID), e.history(t, s.ID))
	}
	// The interrupted process comes back and hands its copy off again.
	if err := e.seg.HandOff(e.Ctx, e.Tenant, []*profile.Profile{p}); err != nil {
		t.Fatal(err)
	}
	if !e.members(t, s.ID)[pid] || fmt.Sprint(e.history(t, s.ID)) != "[ENTERED:identify]" {
		t.Fatalf("after a repeated hand-off: members %v history %v", e.members(t, s.ID), e.history(t, s.ID))
	}
	if q := e.Profile(t, pid); len(q.Moves) != 0 || !q.NextEvalAt.Equal(profile.NoEval) {
		t.Fatalf("the sweep left moves %+v, nextEvalAt %v", q.Moves, q.NextEvalAt)
	}
}

// A hand-off that finishes after a newer decision's (its member write
// landing last) still leaves the members as the latest document says.
func TestStaleHandOffConverges(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "pro", proRule())
	pid := e.identify(t, "a", map[string]any{"plan": "free"})
	stale := e.decideOnly(t, pid, map[string]any{"plan": "pro"}) // enters; its hand-off is slow
	e.identify(t, "a", map[string]any{"plan": "free"})           // exits, handed off at once
	if e.members(t, s.ID)[pid] {
		t.Fatal("a member after the exit")
	}
	if err := e.seg.HandOff(e.Ctx, e.Tenant, []*profile.Profile{stale}); err != nil {
		t.Fatal(err)
	}
	if e.members(t, s.ID)[pid] {
		t.Fatal("the stale hand-off made the profile a member again")
	}
	if got := fmt.Sprint(e.history(t, s.ID)); got != "[ENTERED:identify EXITED:identify]" {
		t.Fatalf("history %s", got)
	}
}

// Writers racing on one profile: the members index ends as the document
// says, and the history alternates, ENTERED then EXITED, ending in the
// document's state.
func TestRacingWritersKeepMembersAndHistoryExact(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "pro", proRule())
	pid := e.identify(t, "a", map[string]any{"plan": "free"})
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Go(func() {
			for i := 0; i < 15; i++ {
				plan := "free"
				if (g+i)%2 == 0 {
					plan = "pro"
				}
				e.identify(t, "a", map[string]any{"plan": plan})
			}
		})
	}
	wg.Wait()
	p := e.Profile(t, pid)
	want := slices.Contains(p.Segments, s.ID)
	if got := e.members(t, s.ID)[pid]; got != want {
		t.Fatalf("members index says %v, the document %v", got, want)
	}
	h := e.history(t, s.ID)
	for i, c := range h {
		kind := segment.Entered
		if i%2 == 1 {
			kind = segment.Exited
		}
		if c != kind+":identify" {
			t.Fatalf("history %v: entry %d is %s", h, i, c)
		}
	}
	if (len(h)%2 == 1) != want {
		t.Fatalf("history %v ends out of step with the document (member %v)", h, want)
	}
}

// A document written before memberships were kept on it takes them from
// the members collection on its next write.
func TestLegacyDocumentLoadsMemberships(t *testing.T) {
	e := newEnv(t)
	s := e.create(t, "pro", proRule())
	pid := e.identify(t, "a", map[string]any{"plan": "pro"})
	if _, err := profile.UpdateAny(e.Ctx, e.Tenant, pid, e.Clock.Now(), func(p *profile.Profile) error {
		p.Segments, p.Moves = nil, nil // as written by an older release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p := e.Profile(t, pid); p.Segments != nil {
		t.Fatalf("segments %v after writing nil", p.Segments)
	}
	e.identify(t, "a", map[string]any{"plan": "free"})
	if p := e.Profile(t, pid); slices.Contains(p.Segments, s.ID) || p.Segments == nil || e.members(t, s.ID)[pid] {
		t.Fatalf("after the exit: segments %v members %v", p.Segments, e.members(t, s.ID))
	}
	if got := fmt.Sprint(e.history(t, s.ID)); got != "[ENTERED:identify EXITED:identify]" {
		t.Fatalf("history %s", got)
	}
}
