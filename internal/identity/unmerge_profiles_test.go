package identity_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// TestUnmergeProfiles: the unmerge's record comes with both live profiles.
func TestUnmergeProfiles(t *testing.T) {
	e := newEnv(t)
	a := e.resolve(t, identity.Request{Identifiers: ids("email", "a@example.com")}).Profile.ID
	e.clock.Set(t0.Add(time.Minute))
	b := e.resolve(t, identity.Request{Identifiers: ids("email", "b@example.com")}).Profile.ID
	survivor, err := e.svc.Identity.Merge(e.ctx, e.tn, a, b, "test", "tester")
	if err != nil {
		t.Fatal(err)
	}
	hist, err := identity.History(e.ctx, e.tn, survivor.ID)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history: %v %v", hist, err)
	}
	u, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, hist[0].ID, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if u.Restored == nil || u.Survivor == nil || u.Restored.ID != u.Record.SourceID || u.Survivor.ID != u.Record.TargetID || u.Survivor.ID != survivor.ID {
		t.Fatalf("unmerged: record %s→%s, restored %v, survivor %v", u.Record.SourceID, u.Record.TargetID, u.Restored, u.Survivor)
	}
	if _, err := e.svc.Identity.UnmergeProfiles(e.ctx, e.tn, "nope", "tester"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown merge: %v, want NOT_FOUND", err)
	}
}
