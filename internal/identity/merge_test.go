package identity_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
)

// TestMergeTraitTieKeepsTarget pins the tie rule of the trait fold: when
// the source and the target wrote a key at the same instant, the target
// (the survivor, the older profile) keeps its value, whichever profile the
// caller names as the source. Keys written strictly later on the source
// still win (TestMergeTwoProfiles).
func TestMergeTraitTieKeepsTarget(t *testing.T) {
	for _, tc := range []struct {
		name      string
		olderArg0 bool // mergeProfiles(older, younger) rather than (younger, older)
	}{
		{"younger named as source", false},
		{"older named as source", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			anon := identity.Identifier{Type: identity.AnonymousID, Value: "anon-tie"}
			email := identity.Identifier{Type: identity.Email, Value: "tie@example.com"}

			e.clock.Set(t0)
			older := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{anon}}).Profile
			e.clock.Set(t0.Add(time.Minute))
			younger := e.resolve(t, identity.Request{Identifiers: []identity.Identifier{email}}).Profile

			// Both write "plan" (and one key each) at the very same instant.
			tie := t0.Add(2 * time.Minute)
			e.clock.Set(tie)
			e.resolve(t, identity.Request{Identifiers: []identity.Identifier{anon}, Traits: map[string]any{"plan": "free", "onlyOld": "o"}})
			e.clock.Set(tie)
			e.resolve(t, identity.Request{Identifiers: []identity.Identifier{email}, Traits: map[string]any{"plan": "pro", "onlyYoung": "y"}})
			if a, b := e.Profile(t, older.ID).TraitsAt["plan"], e.Profile(t, younger.ID).TraitsAt["plan"]; !a.Equal(tie) || !b.Equal(tie) {
				t.Fatalf("setup: plan stamped %v and %v, want both %v", a, b, tie)
			}

			e.clock.Set(t0.Add(10 * time.Minute))
			a, b := younger.ID, older.ID
			if tc.olderArg0 {
				a, b = b, a
			}
			p, err := e.svc.Identity.Merge(e.ctx, e.tn, a, b, "tie test", "tester")
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != older.ID {
				t.Fatalf("survivor = %s, want the older profile %s", p.ID, older.ID)
			}
			want := map[string]any{"plan": "free", "onlyOld": "o", "onlyYoung": "y"}
			if !reflect.DeepEqual(p.Traits, want) {
				t.Errorf("traits = %#v, want %#v (a tie keeps the target's value)", p.Traits, want)
			}
			if at := p.TraitsAt["plan"]; !at.Equal(tie) {
				t.Errorf("traitsAt[plan] = %v, want %v", at, tie)
			}

			// The record says so, and keeps the losing value for an unmerge.
			hist, err := identity.History(e.ctx, e.tn, older.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 || hist[0].Kind != identity.KindMerge {
				t.Fatalf("history = %+v, want one MERGE record", hist)
			}
			var got *identity.TraitOutcome
			for i, o := range hist[0].Traits {
				if o.Key == "plan" {
					got = &hist[0].Traits[i]
				}
			}
			wantOutcome := identity.TraitOutcome{Key: "plan", Winner: "target", Won: "free", Lost: "pro", LostPresent: true, LostAt: tie}
			if got == nil {
				t.Fatalf("record traits %+v: no outcome for plan", hist[0].Traits)
			}
			if got.Key != wantOutcome.Key || got.Winner != wantOutcome.Winner || got.Won != wantOutcome.Won ||
				got.Lost != wantOutcome.Lost || got.LostPresent != wantOutcome.LostPresent || !got.LostAt.Equal(tie) {
				t.Errorf("plan outcome = %+v, want %+v", *got, wantOutcome)
			}
		})
	}
}
