package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

var start = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// kinds are the kinds of cs, in order.
func kinds(cs []realtime.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

func email(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.Email, Value: v}}
}

func granted(purpose string) []consent.Choice {
	return []consent.Choice{{Purpose: purpose, Channel: "EMAIL", Status: "GRANTED", Source: "form"}}
}

func event(msg, who, name string) ingest.TrackInput {
	return ingest.TrackInput{TrackInput: timeline.TrackInput{MessageID: msg, Identifiers: email(who), Name: name}}
}

// A track runs every step: the profile is counted, the segment that
// reads the event is entered, the outbox is told (the membership change,
// then timeline.appended and profile.updated, in one write), and the
// consent the event carries is recorded once, not again on a replay.
func TestTrackRunsEveryStep(t *testing.T) {
	e := apptest.New(t, start)
	out := &apptest.Recorder{}
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &rule.Rule{
		Event: &rule.EventCond{Name: "order_completed"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The outbox is recorded from here: the segment's build (and its
	// segment.build notes) is over.
	e.Services.Segments.WaitBuilds()
	e.Services.Publish(out)
	who := ingest.Caller{Subject: "t", ConsentWrite: true}
	in := event("m1", "ana@example.com", "order_completed")
	in.Consent = granted("marketing")
	res, err := e.Services.Ingest.Track(e.Ctx, e.Tenant, who, "input", []ingest.TrackInput{in})
	if err != nil {
		t.Fatal(err)
	}
	p := res[0].Profile
	if res[0].Duplicate || p.EventCount != 1 || !p.LastSeenAt.Equal(start) {
		t.Fatalf("result %+v, profile count %d seen %s", res[0], p.EventCount, p.LastSeenAt)
	}
	members, err := e.Services.Segments.ProfileSegments(e.Ctx, e.Tenant, p.ID)
	if err != nil || len(members) != 1 || members[0].SegmentID != seg.ID {
		t.Fatalf("memberships %+v, %v", members, err)
	}
	calls := out.Calls()
	// The order changed the profile's scores too: profile.updated.
	want := strings.Join([]string{realtime.MembershipChanged, realtime.TimelineAppended, realtime.ProfileUpdated}, ",")
	if len(calls) == 0 || strings.Join(kinds(calls[0]), ",") != want {
		var got []string
		for _, c := range calls {
			got = append(got, strings.Join(kinds(c), ","))
		}
		t.Fatalf("outbox writes %q, want %s in the first", got, want)
	}
	recs, _, _, err := e.Services.Consent.History(e.Ctx, e.Tenant, p.ID, 10, "")
	if err != nil || len(recs) != 1 || recs[0].Purpose != "marketing" {
		t.Fatalf("consent history %+v, %v", recs, err)
	}

	// A replay is a duplicate: nothing counted, no consent recorded again.
	res, err = e.Services.Ingest.Track(e.Ctx, e.Tenant, who, "input", []ingest.TrackInput{in})
	if err != nil || !res[0].Duplicate || res[0].Profile.EventCount != 1 {
		t.Fatalf("replay %+v, %v", res, err)
	}
	if recs, _, _, _ := e.Services.Consent.History(e.Ctx, e.Tenant, p.ID, 10, ""); len(recs) != 1 {
		t.Fatalf("consent recorded again on a replay: %d records", len(recs))
	}
}

// Consent on a call is checked before anything is written: without the
// scope, or with an unknown purpose, the call is refused and no profile,
// identity or event exists afterwards.
func TestRefusedConsentStoresNothing(t *testing.T) {
	e := apptest.New(t, start)
	bad := event("m2", "bo@example.com", "page_viewed")
	bad.Consent = granted("marketing")
	_, err := e.Services.Ingest.Track(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, "inputs",
		[]ingest.TrackInput{event("m1", "al@example.com", "page_viewed"), bad})
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Forbidden || !strings.Contains(ae.Message, "inputs[1].consent needs scope consent:write") {
		t.Fatalf("err %v", err)
	}
	unknown := event("m3", "cy@example.com", "page_viewed")
	unknown.Consent = granted("no_such_purpose")
	_, err = e.Services.Ingest.Track(e.Ctx, e.Tenant, ingest.Caller{Subject: "t", ConsentWrite: true}, "input", []ingest.TrackInput{unknown})
	if apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("unknown purpose: %v", err)
	}
	_, err = e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{
		Identifiers: email("di@example.com"), Consent: granted("marketing")})
	if apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("identify without the scope: %v", err)
	}
	for _, c := range []struct{ coll, index string }{
		{profile.Profiles, profile.ProfilesByCreated}, {identity.Identities, identity.IdentitiesByValue},
		{timeline.Events, timeline.EventsByMessage}, {consent.ConsentLog, consent.ConsentByProfile},
	} {
		if n := e.Count(t, c.coll, c.index); n != 0 {
			t.Fatalf("%s holds %d documents after refused calls", c.coll, n)
		}
	}
}

// identify evaluates the segments its traits touch, announces the
// membership change and the profile's update in one outbox write, and
// records its consent; logInteraction counts the item and publishes it.
func TestIdentifyAndInteraction(t *testing.T) {
	e := apptest.New(t, start)
	out := &apptest.Recorder{}
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "pro", Rule: &rule.Rule{
		Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The outbox is recorded from here: the segment's build (and its
	// segment.build notes) is over.
	e.Services.Segments.WaitBuilds()
	e.Services.Publish(out)
	res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t", ConsentWrite: true}, ingest.IdentifyInput{
		Identifiers: email("Eve@Example.com"), Traits: map[string]any{"plan": "pro"}, Consent: granted("marketing")})
	if err != nil || !res.Created {
		t.Fatalf("identify %+v, %v", res, err)
	}
	members, err := e.Services.Segments.ProfileSegments(e.Ctx, e.Tenant, res.Profile.ID)
	if err != nil || len(members) != 1 || members[0].SegmentID != seg.ID {
		t.Fatalf("memberships %+v, %v", members, err)
	}
	if calls := out.Calls(); len(calls) == 0 || strings.Join(kinds(calls[0]), ",") != realtime.MembershipChanged+","+realtime.ProfileUpdated || calls[0][1].ProfileID != res.Profile.ID {
		t.Fatalf("first outbox write %+v, want the membership change and the profile's update", calls)
	}
	if recs, _, _, _ := e.Services.Consent.History(e.Ctx, e.Tenant, res.Profile.ID, 10, ""); len(recs) != 1 {
		t.Fatalf("consent records %d", len(recs))
	}
	ev, err := e.Services.Ingest.LogInteraction(e.Ctx, e.Tenant, timeline.InteractionInput{ProfileID: res.Profile.ID, Kind: "CALL", MessageID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := e.Profile(t, res.Profile.ID); p.EventCount != 1 || ev.ProfileID != p.ID {
		t.Fatalf("interaction on %s, profile count %d", ev.ProfileID, p.EventCount)
	}
	again, err := e.Services.Ingest.LogInteraction(e.Ctx, e.Tenant, timeline.InteractionInput{ProfileID: res.Profile.ID, Kind: "CALL", MessageID: "call-1"})
	if err != nil || again.ID != ev.ID {
		t.Fatalf("replay %+v, %v", again, err)
	}
	if p := e.Profile(t, res.Profile.ID); p.EventCount != 1 {
		t.Fatalf("a replayed interaction was counted: %d", p.EventCount)
	}
	appended := 0
	for _, k := range kinds(out.Changes()) {
		if k == realtime.TimelineAppended {
			appended++
		}
	}
	if appended != 1 {
		t.Fatalf("timeline.appended published %d times, want 1: %v", appended, kinds(out.Changes()))
	}
}

// An identify decides the memberships in the write that applies its
// traits: a new person (born due, so that a crash before the decision
// leaves the sweeper to make it) is inserted and written once, comes out
// decided, and enters the segment its traits match; one who matches none
// is not written a third time just to clear the due mark.
func TestIdentifyDecidesInTheTraitsWrite(t *testing.T) {
	ctx := t.Context()
	sb, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	counter := apptest.NewCounting(sb)
	e := apptest.NewOver(t, counter, start)
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "pro", Rule: &rule.Rule{
		Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who, plan string
		member    bool
		writes    int64 // profile documents written
	}{
		{"free@example.com", "free", false, 2}, // insert, traits + decision
		{"pro@example.com", "pro", true, 3},    // and the hand-off clearing the move
	} {
		counter.Reset()
		res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{
			Identifiers: email(tc.who), Traits: map[string]any{"plan": tc.plan}})
		if err != nil || !res.Created {
			t.Fatalf("identify %s: %+v, %v", tc.who, res, err)
		}
		if w := counter.CallsOf("insert", profile.Profiles) + counter.CallsOf("replace", profile.Profiles); w != tc.writes {
			t.Errorf("%s: profile written %d times, want %d:\n%s", tc.who, w, tc.writes, counter.Summary(1))
		}
		p := e.Profile(t, res.Profile.ID)
		if !p.NextEvalAt.After(start) || len(p.Moves) != 0 {
			t.Errorf("%s: nextEvalAt %s, %d moves pending: not decided and handed off", tc.who, p.NextEvalAt, len(p.Moves))
		}
		members, err := e.Services.Segments.ProfileSegments(e.Ctx, e.Tenant, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(members) == 1 && members[0].SegmentID == seg.ID; got != tc.member {
			t.Errorf("%s: memberships %+v, member of pro = %v, want %v", tc.who, members, got, tc.member)
		}
	}
}

// A batch reads its messageIds in one read and its identifiers in one
// read per type, and still stitches in call order: inputs sharing an
// identifier with an earlier one (which created its profile) land on
// that profile, and a replayed messageId is a duplicate.
func TestBatchLooksUpOnceAndStitchesInOrder(t *testing.T) {
	sb, err := sqlitestore.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	counter := apptest.NewCounting(sb)
	e := apptest.NewOver(t, counter, start)
	anonAndEmail := func(msg, anon, mail string) timeline.TrackInput {
		var ids []identity.Identifier
		if anon != "" {
			ids = append(ids, identity.Identifier{Type: identity.AnonymousID, Value: anon})
		}
		if mail != "" {
			ids = append(ids, identity.Identifier{Type: identity.Email, Value: mail})
		}
		return timeline.TrackInput{MessageID: msg, Identifiers: ids, Name: "page_viewed"}
	}
	if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", []timeline.TrackInput{anonAndEmail("old", "known", "")}); err != nil {
		t.Fatal(err)
	}
	var in []timeline.TrackInput
	for i := range 94 {
		in = append(in, anonAndEmail(fmt.Sprint("m", i), fmt.Sprint("v", i%40), ""))
	}
	in = append(in,
		anonAndEmail("s1", "shared", ""),              // creates the profile
		anonAndEmail("s2", "shared", "s@example.com"), // attaches the email to it
		anonAndEmail("s3", "", "s@example.com"),       // finds it by the email
		anonAndEmail("k1", "known", ""),               // a person from before the call
		anonAndEmail("old", "known", ""),              // a replay: duplicate
		anonAndEmail("k2", "known", "k@example.com"),
	)
	counter.Reset()
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", in)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.CallsOf("find", "events"); n != 1 {
		t.Errorf("messageId look-ups: %d reads, want 1", n)
	}
	// One read per identifier type; each of the 41 new profiles checks
	// its identifiers once; the three inputs that share an identifier
	// with an earlier one (s2, s3, k2) read theirs again, attach and
	// index their terms: at most four reads each. Looked up one by one,
	// the 47 identifiers alone would be 47 reads more.
	if n, most := counter.CallsOf("find", "identities"), int64(2+41+3*4); n > most {
		t.Errorf("identifier look-ups: %d reads, want at most %d:\n%s", n, most, counter.Summary(1))
	}
	byMsg := map[string]timeline.TrackResult{}
	for _, r := range res {
		byMsg[r.Event.MessageID] = r
	}
	if a, b, c := byMsg["s1"].Profile.ID, byMsg["s2"].Profile.ID, byMsg["s3"].Profile.ID; a != b || b != c {
		t.Errorf("shared identifiers on different profiles: %s %s %s", a, b, c)
	}
	if !byMsg["old"].Duplicate || byMsg["k1"].Duplicate || byMsg["k1"].Profile.ID != byMsg["k2"].Profile.ID || byMsg["k1"].Profile.ID != byMsg["old"].Event.ProfileID {
		t.Errorf("known person: old %+v, k1 %+v, k2 %+v", byMsg["old"], byMsg["k1"], byMsg["k2"])
	}
	if got := e.Count(t, timeline.Events, timeline.EventsByMessage); got != 1+int64(len(in))-1 {
		t.Errorf("%d events stored, want %d", got, len(in))
	}
	if got := e.Count(t, profile.Profiles, profile.ProfilesByCreated); got != 1+40+1 {
		t.Errorf("%d profiles, want 42 (known, 40 visitors, shared)", got)
	}
}
