package timeline_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
)

// wantTaken asserts err is the CONFLICT of a messageId another item holds.
func wantTaken(t *testing.T, err error, field, messageID string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.Conflict {
		t.Fatalf("err = %v, want CONFLICT", err)
	}
	if want := `messageId "` + messageID + `" is already used by another item in this workspace`; e.Field != field || e.Message != want {
		t.Fatalf("err = %q on %q, want %q on %q", e.Message, e.Field, want, field)
	}
}

// counts is what a refused call must leave as it was.
func (e *env) counts(t *testing.T) [4]int64 {
	t.Helper()
	return [4]int64{
		e.Count(t, profile.Profiles, profile.ProfilesByCreated), e.Count(t, identity.Identities, identity.IdentitiesByValue),
		e.Count(t, timeline.Events, timeline.EventsByMessage), e.Count(t, identity.Merges, identity.MergesByStatus),
	}
}

func ident(typ, v string) identity.Identifier { return identity.Identifier{Type: typ, Value: v} }

func trackAs(msg string, ids ...identity.Identifier) timeline.TrackInput {
	return timeline.TrackInput{MessageID: msg, Identifiers: ids, Name: "page_viewed", OccurredAt: at(-time.Minute)}
}

func TestTrackReplayOfAnotherPersonsMessageIDIsRefused(t *testing.T) {
	e := newEnv(t)
	bea := ident(identity.Email, "bea@example.com")
	beaAnon := ident(identity.AnonymousID, "anon-bea")
	al := ident(identity.Email, "al@example.com")
	b := e.track(t, "input", trackAs("m1-B", bea, beaAnon))[0]
	a := e.track(t, "input", trackAs("m1-A", al))[0]
	if _, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: b.Profile.ID, Kind: "CALL", MessageID: "call-B"}); err != nil {
		t.Fatal(err)
	}
	before := e.counts(t)
	bp, ap := *e.Profile(t, b.Profile.ID), *e.Profile(t, a.Profile.ID)

	withTraits := func(in timeline.TrackInput) timeline.TrackInput {
		in.Traits = map[string]any{"owned": true}
		return in
	}
	for _, c := range []struct {
		name  string
		field string
		in    []timeline.TrackInput
		want  string // field at fault
	}{
		{"new identifiers", "input", []timeline.TrackInput{withTraits(trackAs("m1-B", ident(identity.Email, "mallory@example.com")))}, "input.messageId"},
		{"another person's identifiers", "input", []timeline.TrackInput{withTraits(trackAs("m1-B", al))}, "input.messageId"},
		{"another person's and new identifiers", "input", []timeline.TrackInput{trackAs("m1-B", al, ident(identity.DeviceID, "dev-new"))}, "input.messageId"},
		{"the same person, an interaction's messageId", "input", []timeline.TrackInput{trackAs("call-B", bea)}, "input.messageId"},
		{"in a batch", "events", []timeline.TrackInput{trackAs("new-1", al), trackAs("new-2", ident(identity.Email, "new@example.com")), trackAs("m1-B", al)}, "events[2].messageId"},
		{"in a batch, after a genuine replay of it", "events", []timeline.TrackInput{trackAs("m1-B", bea), trackAs("m1-B", al)}, "events[1].messageId"},
		{"a new messageId twice in a batch, for two people", "events", []timeline.TrackInput{trackAs("twice", al), trackAs("twice", ident(identity.Email, "new@example.com"))}, "events[1].messageId"},
		{"a new messageId twice in a batch, other identifiers of one person", "events", []timeline.TrackInput{trackAs("twice", al), trackAs("twice", al, ident(identity.DeviceID, "dev-al"))}, "events[1].messageId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", c.field, c.in)
			if res != nil {
				t.Errorf("results returned with the refusal: %+v", res)
			}
			msg := c.in[len(c.in)-1].MessageID
			wantTaken(t, err, c.want, msg)
			if after := e.counts(t); after != before {
				t.Fatalf("profiles/identities/events/merges %v → %v", before, after)
			}
			if p := e.Profile(t, b.Profile.ID); p.Version != bp.Version || p.EventCount != bp.EventCount {
				t.Fatalf("B's profile changed: version %d → %d, eventCount %d → %d", bp.Version, p.Version, bp.EventCount, p.EventCount)
			}
			if p := e.Profile(t, a.Profile.ID); p.Version != ap.Version || len(p.Traits) != len(ap.Traits) {
				t.Fatalf("A's profile changed: version %d → %d, traits %v", ap.Version, p.Version, p.Traits)
			}
		})
	}
}

func TestTrackReplayBySamePersonIsDuplicate(t *testing.T) {
	e := newEnv(t)
	bea := ident(identity.Email, "bea@example.com")
	beaAnon := ident(identity.AnonymousID, "anon-bea")
	first := e.track(t, "input", trackAs("m1-B", bea, beaAnon))[0]
	before := e.counts(t)
	for _, ids := range [][]identity.Identifier{
		{bea, beaAnon},
		{beaAnon},
		{beaAnon, ident(identity.DeviceID, "dev-bea")}, // one held, one new: the new one is not attached
	} {
		r := e.track(t, "input", trackAs("m1-B", ids...))[0]
		if !r.Duplicate || r.Event.ID != first.Event.ID || r.Profile.ID != first.Profile.ID {
			t.Fatalf("replay with %v: %+v, want the duplicate of %s on %s", ids, r, first.Event.ID, first.Profile.ID)
		}
	}
	// A whole batch replayed, with an in-call repeat carrying traits: all
	// duplicates, and the traits of a duplicate are not applied.
	again := trackAs("m1-B", bea)
	again.Traits = map[string]any{"plan": "pro"}
	res := e.track(t, "events", trackAs("m1-B", bea, beaAnon), again)
	if !res[0].Duplicate || !res[1].Duplicate || res[1].Event.ID != first.Event.ID {
		t.Fatalf("replayed batch: %+v", res)
	}
	fresh := e.track(t, "events", trackAs("m2-B", bea), withPlan(trackAs("m2-B", bea)))
	if fresh[0].Duplicate || !fresh[1].Duplicate || fresh[1].Event.ID != fresh[0].Event.ID || fresh[1].Profile.ID != first.Profile.ID {
		t.Fatalf("in-call repeat of a new messageId: %+v", fresh)
	}
	if p := e.Profile(t, first.Profile.ID); p.Traits["plan"] != nil || p.EventCount != 2 {
		t.Fatalf("after duplicates: traits %v, eventCount %d; want no plan, 2", p.Traits, p.EventCount)
	}
	if after := e.counts(t); after[0] != before[0] || after[1] != before[1] || after[2] != before[2]+1 {
		t.Fatalf("profiles/identities/events %v → %v, want only m2-B added", before, after)
	}
}

func withPlan(in timeline.TrackInput) timeline.TrackInput {
	in.Traits = map[string]any{"plan": "pro"}
	return in
}

func TestReplayAfterMerge(t *testing.T) {
	e := newEnv(t)
	e.clock.SetTick(time.Microsecond) // distinct createdAt: the older survives
	olga := ident(identity.Email, "olga@example.com")
	nina := ident(identity.Email, "nina@example.com")
	old := e.track(t, "input", trackAs("m-O", olga))[0].Profile.ID
	n := e.track(t, "input", trackAs("m-N", nina))[0]
	note, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: n.Profile.ID, Kind: "NOTE", MessageID: "note-N"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Identity.Merge(e.ctx, e.tn, n.Profile.ID, old, "test", "tester"); err != nil {
		t.Fatal(err)
	}
	before := e.counts(t)

	r := e.track(t, "input", trackAs("m-N", nina))[0]
	if !r.Duplicate || r.Profile.ID != old || r.Event.ID != n.Event.ID {
		t.Fatalf("track replay after merge: %+v, want duplicate of %s on survivor %s", r, n.Event.ID, old)
	}
	r = e.track(t, "input", trackAs("m-N", olga))[0] // the survivor's own identifier: the same person now
	if !r.Duplicate || r.Profile.ID != old {
		t.Fatalf("track replay after merge with the survivor's identifier: %+v", r)
	}
	for _, pid := range []string{n.Profile.ID, old} {
		got, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", MessageID: "note-N"})
		if err != nil || got.ID != note.ID || got.ProfileID != old {
			t.Fatalf("logInteraction replay on %s after merge: %+v, %v; want %s on %s", pid, got, err, note.ID, old)
		}
	}
	if after := e.counts(t); after != before {
		t.Fatalf("replays wrote: %v → %v", before, after)
	}
	_, err = e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "input", []timeline.TrackInput{trackAs("m-N", ident(identity.Email, "x@example.com"))})
	wantTaken(t, err, "input.messageId", "m-N")
}

func TestLogInteractionReplayOfAnotherItemIsRefused(t *testing.T) {
	e := newEnv(t)
	b := e.track(t, "input", trackAs("m1-B", ident(identity.Email, "bea@example.com")))[0].Profile.ID
	a2 := e.track(t, "input", trackAs("m1-A", ident(identity.Email, "al@example.com")))[0].Profile.ID
	if _, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: b, Kind: "CALL", MessageID: "call-B"}); err != nil {
		t.Fatal(err)
	}
	before := e.counts(t)
	for _, c := range []struct {
		name, pid, msg string
	}{
		{"another profile's event", a2, "m1-B"},
		{"another profile's interaction", a2, "call-B"},
		{"the same profile's event", b, "m1-B"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: c.pid, Kind: "CALL", MessageID: c.msg})
			if got != nil {
				t.Errorf("item returned with the refusal: %+v", got)
			}
			wantTaken(t, err, "input.messageId", c.msg)
			if after := e.counts(t); after != before {
				t.Fatalf("profiles/identities/events/merges %v → %v", before, after)
			}
		})
	}
}
