package timeline_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var t0 = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	ctx   context.Context
	tn    store.Tenant
	svc   *app.Services
	clock *app.ManualClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	x := apptest.New(t, t0)
	return &env{Env: x, ctx: x.Ctx, tn: x.Tenant, svc: x.Services, clock: x.Clock}
}

func anon(v string) []identity.Identifier {
	return []identity.Identifier{{Type: identity.AnonymousID, Value: v}}
}

func at(d time.Duration) *time.Time {
	t := t0.Add(d)
	return &t
}

func (e *env) track(t *testing.T, field string, in ...timeline.TrackInput) []timeline.TrackResult {
	t.Helper()
	res, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", field, in)
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	if len(res) != len(in) {
		t.Fatalf("Track returned %d results for %d inputs", len(res), len(in))
	}
	return res
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want BAD_USER_INPUT on %s", field)
	}
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.BadUserInput {
		t.Fatalf("err = %v (%T), want BAD_USER_INPUT", err, err)
	}
	if e.Field != field {
		t.Fatalf("field = %q, want %q (%v)", e.Field, field, err)
	}
}

func good(msg string) timeline.TrackInput {
	return timeline.TrackInput{MessageID: msg, Identifiers: anon("visitor"), Name: "page_viewed", OccurredAt: at(-time.Minute)}
}

func TestTrackValidation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*timeline.TrackInput)
		field string
	}{
		{"no identifiers", func(in *timeline.TrackInput) { in.Identifiers = nil }, "input.identifiers"},
		{"bad identifier", func(in *timeline.TrackInput) {
			in.Identifiers = []identity.Identifier{{Type: identity.Email, Value: "nope"}}
		}, "input.identifiers[0].value"},
		{"blank messageId", func(in *timeline.TrackInput) { in.MessageID = "  " }, "input.messageId"},
		{"messageId too long", func(in *timeline.TrackInput) { in.MessageID = strings.Repeat("m", 257) }, "input.messageId"},
		{"messageId NUL", func(in *timeline.TrackInput) { in.MessageID = "a\x00b" }, "input.messageId"},
		{"blank name", func(in *timeline.TrackInput) { in.Name = "" }, "input.name"},
		{"name too long", func(in *timeline.TrackInput) { in.Name = strings.Repeat("n", 201) }, "input.name"},
		{"name invalid UTF-8", func(in *timeline.TrackInput) { in.Name = "\xff" }, "input.name"},
		{"channel too long", func(in *timeline.TrackInput) { in.Channel = strings.Repeat("c", 65) }, "input.channel"},
		{"channel invalid UTF-8", func(in *timeline.TrackInput) { in.Channel = "w\xffb" }, "input.channel"},
		{"properties not an object", func(in *timeline.TrackInput) { in.Properties = []any{1} }, "input.properties"},
		{"properties operator key", func(in *timeline.TrackInput) { in.Properties = map[string]any{"$set": 1} }, "input.properties"},
		{"properties too big", func(in *timeline.TrackInput) {
			in.Properties = map[string]any{"s": strings.Repeat("x", timeline.PropertyLimits.MaxBytes)}
		}, "input.properties"},
		{"traits dotted key", func(in *timeline.TrackInput) { in.Traits = map[string]any{"a.b": 1} }, "input.traits"},
		{"traits not an object", func(in *timeline.TrackInput) { in.Traits = "x" }, "input.traits"},
		{"occurredAt too far ahead", func(in *timeline.TrackInput) { in.OccurredAt = at(timeline.MaxFuture + time.Second) }, "input.occurredAt"},
		{"occurredAt before 1970", func(in *timeline.TrackInput) {
			old := time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)
			in.OccurredAt = &old
		}, "input.occurredAt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			in := good("m1")
			tt.edit(&in)
			_, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "input", []timeline.TrackInput{in})
			wantInvalid(t, err, tt.field)
			if n := e.Count(t, timeline.Events, timeline.EventsByMessage); n != 0 {
				t.Fatalf("%d events stored after a refused call", n)
			}
			if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 0 {
				t.Fatalf("%d profiles created by a refused call", n)
			}
		})
	}
}

func TestTrackAcceptsEdges(t *testing.T) {
	e := newEnv(t)
	in := good("  edge-1  ")
	in.Name = strings.Repeat("n", 200)
	in.Channel = strings.Repeat("c", 64)
	in.OccurredAt = at(timeline.MaxFuture) // exactly the allowed skew
	in.Properties = map[string]any{"keep": int64(1), "drop": nil}
	res := e.track(t, "input", in)
	ev := res[0].Event
	if ev.MessageID != "edge-1" || ev.Kind != timeline.KindEvent || !ev.OccurredAt.Equal(t0.Add(timeline.MaxFuture)) {
		t.Fatalf("stored %+v", ev)
	}
	if !reflect.DeepEqual(ev.Properties, map[string]any{"keep": int64(1)}) {
		t.Fatalf("properties = %#v, want nulls dropped", ev.Properties)
	}
	if !ev.ReceivedAt.Equal(t0) {
		t.Fatalf("receivedAt = %v, want %v", ev.ReceivedAt, t0)
	}

	// No occurredAt: now.
	in2 := good("edge-2")
	in2.OccurredAt = nil
	if ev := e.track(t, "input", in2)[0].Event; !ev.OccurredAt.Equal(t0) {
		t.Fatalf("default occurredAt = %v, want %v", ev.OccurredAt, t0)
	}
}

func TestTrackBatchLimits(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "events", nil)
	wantInvalid(t, err, "events")
	big := make([]timeline.TrackInput, timeline.MaxBatch+1)
	for i := range big {
		big[i] = good(fmt.Sprintf("b%d", i))
	}
	_, err = e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "events", big)
	wantInvalid(t, err, "events")
}

func TestTrackBatchWithOneBadItemStoresNothing(t *testing.T) {
	e := newEnv(t)
	batch := []timeline.TrackInput{good("a"), good("b"), good("c")}
	batch[2].Name = " "
	_, err := e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "events", batch)
	wantInvalid(t, err, "events[2].name")
	if n := e.Count(t, timeline.Events, timeline.EventsByMessage); n != 0 {
		t.Fatalf("%d events stored, want 0", n)
	}
	if n := e.Count(t, profile.Profiles, profile.ProfilesByCreated); n != 0 {
		t.Fatalf("%d profiles created, want 0", n)
	}

	// A one-item list under a plural field still names the index.
	one := good("d")
	one.MessageID = ""
	_, err = e.svc.Ingest.TrackEvents(e.ctx, e.tn, "tester", "events", []timeline.TrackInput{one})
	wantInvalid(t, err, "events[0].messageId")
}

func TestTrackIdempotentOnMessageID(t *testing.T) {
	e := newEnv(t)
	first := e.track(t, "input", good("m1"))[0]
	if first.Duplicate || first.Profile == nil || first.Profile.EventCount != 1 {
		t.Fatalf("first: %+v", first)
	}

	e.clock.Set(t0.Add(time.Minute))
	again := good("m1")
	again.Name = "something_else"
	rep := e.track(t, "input", again)[0]
	if !rep.Duplicate {
		t.Fatal("repeat not marked Duplicate")
	}
	if rep.Event.ID != first.Event.ID || rep.Event.Name != "page_viewed" {
		t.Fatalf("repeat returned %+v, want the stored event %+v", rep.Event, first.Event)
	}
	if rep.Profile == nil || rep.Profile.ID != first.Profile.ID || rep.Profile.EventCount != 1 {
		t.Fatalf("repeat profile %+v, want eventCount still 1", rep.Profile)
	}

	// Repeat inside one batch, next to a new event.
	res := e.track(t, "events", good("m2"), good("m2"), good("m1"), good("m3"))
	dups := []bool{res[0].Duplicate, res[1].Duplicate, res[2].Duplicate, res[3].Duplicate}
	if !reflect.DeepEqual(dups, []bool{false, true, true, false}) {
		t.Fatalf("Duplicate flags = %v", dups)
	}
	if res[0].Event.ID != res[1].Event.ID {
		t.Fatalf("in-batch repeat returned another event: %s vs %s", res[0].Event.ID, res[1].Event.ID)
	}
	if n := e.Count(t, timeline.Events, timeline.EventsByMessage); n != 3 {
		t.Fatalf("%d events stored, want 3", n)
	}
	if p := e.Profile(t, first.Profile.ID); p.EventCount != 3 {
		t.Fatalf("eventCount = %d, want 3", p.EventCount)
	}
}

func TestTrackMaintainsCountsAndSeenSpan(t *testing.T) {
	e := newEnv(t)
	mk := func(msg string, d time.Duration) timeline.TrackInput {
		in := good(msg)
		in.OccurredAt = at(d)
		return in
	}
	res := e.track(t, "events", mk("a", -3*time.Hour), mk("b", -time.Hour))
	pid := res[0].Profile.ID
	if res[1].Profile.ID != pid {
		t.Fatal("one visitor's batch went to two profiles")
	}
	p := e.Profile(t, pid)
	if p.EventCount != 2 || !p.FirstSeenAt.Equal(t0.Add(-3*time.Hour)) || !p.LastSeenAt.Equal(t0) {
		t.Fatalf("after batch: count %d seen %v..%v", p.EventCount, p.FirstSeenAt, p.LastSeenAt)
	}
	if res[1].Profile.EventCount != 2 {
		t.Fatalf("result profile eventCount = %d, want 2", res[1].Profile.EventCount)
	}

	e.clock.Set(t0.Add(time.Hour))
	e.track(t, "input", mk("c", 2*time.Hour)) // ahead of the clock, within MaxFuture
	e.track(t, "input", mk("d", -5*time.Hour))
	p = e.Profile(t, pid)
	if p.EventCount != 4 {
		t.Fatalf("eventCount = %d, want 4", p.EventCount)
	}
	if !p.FirstSeenAt.Equal(t0.Add(-5*time.Hour)) || !p.LastSeenAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("seen span %v..%v, want %v..%v", p.FirstSeenAt, p.LastSeenAt, t0.Add(-5*time.Hour), t0.Add(2*time.Hour))
	}

	// Events with traits apply them to the profile.
	withTraits := mk("e", 0)
	withTraits.Traits = map[string]any{"plan": "pro"}
	r := e.track(t, "input", withTraits)[0]
	if r.Profile.Traits["plan"] != "pro" || r.Profile.EventCount != 5 {
		t.Fatalf("profile after traits event: traits %#v count %d", r.Profile.Traits, r.Profile.EventCount)
	}
}

func TestLogInteraction(t *testing.T) {
	e := newEnv(t)
	pid := e.track(t, "input", good("seed"))[0].Profile.ID

	for i, kind := range timeline.InteractionKinds {
		ev, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{
			ProfileID: pid, Kind: kind, Subject: " Subj ", Body: "body", Direction: []string{"", "INBOUND", "OUTBOUND"}[i%3],
			Actor: "agent", OccurredAt: at(time.Duration(-i) * time.Minute), Properties: map[string]any{"n": int64(i), "x": nil},
		})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if ev.Kind != timeline.KindInteraction || ev.InteractionKind != kind || ev.Name != strings.ToLower(kind) {
			t.Errorf("%s stored as kind %q/%q name %q", kind, ev.Kind, ev.InteractionKind, ev.Name)
		}
		if ev.ProfileID != pid || ev.Subject != "Subj" || ev.Actor != "agent" || !strings.HasPrefix(ev.MessageID, "interaction-") {
			t.Errorf("%s stored as %+v", kind, ev)
		}
		if !reflect.DeepEqual(ev.Properties, map[string]any{"n": int64(i)}) {
			t.Errorf("%s properties %#v", kind, ev.Properties)
		}
	}
	if p := e.Profile(t, pid); p.EventCount != int64(1+len(timeline.InteractionKinds)) {
		t.Fatalf("eventCount = %d, want %d", p.EventCount, 1+len(timeline.InteractionKinds))
	}

	// Idempotent on messageId.
	in := timeline.InteractionInput{ProfileID: pid, Kind: "CALL", MessageID: "call-1", Subject: "first"}
	a, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Subject = "second"
	b, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, in)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || b.Subject != "first" {
		t.Fatalf("repeat returned %s/%q, want %s/%q", b.ID, b.Subject, a.ID, "first")
	}
	if p := e.Profile(t, pid); p.EventCount != int64(2+len(timeline.InteractionKinds)) {
		t.Fatalf("eventCount after repeat = %d, want %d", p.EventCount, 2+len(timeline.InteractionKinds))
	}

	// Validation.
	bad := []struct {
		name  string
		in    timeline.InteractionInput
		field string
	}{
		{"unknown kind", timeline.InteractionInput{ProfileID: pid, Kind: "FAX"}, "input.kind"},
		{"lower-case kind", timeline.InteractionInput{ProfileID: pid, Kind: "call"}, "input.kind"},
		{"bad direction", timeline.InteractionInput{ProfileID: pid, Kind: "CALL", Direction: "SIDEWAYS"}, "input.direction"},
		{"lower-case direction", timeline.InteractionInput{ProfileID: pid, Kind: "CALL", Direction: "inbound"}, "input.direction"},
		{"subject too long", timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", Subject: strings.Repeat("s", 501)}, "input.subject"},
		{"actor too long", timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", Actor: strings.Repeat("a", 201)}, "input.actor"},
		{"messageId too long", timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", MessageID: strings.Repeat("m", 257)}, "input.messageId"},
		{"properties", timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", Properties: map[string]any{"$x": 1}}, "input.properties"},
		{"future", timeline.InteractionInput{ProfileID: pid, Kind: "NOTE", OccurredAt: at(48 * time.Hour)}, "input.occurredAt"},
		{"blank profile", timeline.InteractionInput{Kind: "NOTE"}, "input.profileId"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, tt.in)
			wantInvalid(t, err, tt.field)
		})
	}
	before := e.Count(t, timeline.Events, timeline.EventsByMessage)
	_, err = e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{ProfileID: "no-such-profile", Kind: "NOTE"})
	if apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown profile: err = %v, want NOT_FOUND", err)
	}
	if after := e.Count(t, timeline.Events, timeline.EventsByMessage); after != before {
		t.Fatalf("events went from %d to %d after refused calls", before, after)
	}
}

// readAll pages through a timeline and returns the items in order.
func readAll(t *testing.T, e *env, pid string, pageSize int, f timeline.Filter) []*timeline.Event {
	t.Helper()
	var out []*timeline.Event
	after := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		page, err := timeline.Read(e.ctx, e.tn, pid, pageSize, after, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > pageSize || len(page.Cursors) != len(page.Items) {
			t.Fatalf("page of %d items, %d cursors (size %d)", len(page.Items), len(page.Cursors), pageSize)
		}
		out = append(out, page.Items...)
		if !page.HasNext {
			return out
		}
		// A page cut short by the scan cap may have no items; it must
		// still say where to continue, and move forward.
		next := page.Next()
		if next == "" {
			t.Fatalf("page %d (%d items) says HasNext with no position to continue from", pages, len(page.Items))
		}
		if next == after {
			t.Fatalf("page %d (%d items) does not move past its after", pages, len(page.Items))
		}
		after = next
	}
}

func messageIDs(evs []*timeline.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.MessageID
	}
	return out
}

// newestFirst sorts events as the timeline must return them.
func newestFirst(evs []*timeline.Event) []*timeline.Event {
	out := slices.Clone(evs)
	slices.SortFunc(out, func(a, b *timeline.Event) int {
		if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func TestReadOrderAndPagination(t *testing.T) {
	e := newEnv(t)
	// 25 events over 10 distinct times: several share an occurredAt.
	var in []timeline.TrackInput
	for i := range 25 {
		ev := good(fmt.Sprintf("m%02d", i))
		ev.OccurredAt = at(-time.Duration((i*7)%10) * time.Minute)
		in = append(in, ev)
	}
	res := e.track(t, "events", in...)
	pid := res[0].Profile.ID
	var stored []*timeline.Event
	for _, r := range res {
		stored = append(stored, r.Event)
	}
	want := messageIDs(newestFirst(stored))

	full, err := timeline.Read(e.ctx, e.tn, pid, 100, "", timeline.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if full.HasNext {
		t.Fatal("HasNext on a complete page")
	}
	if got := messageIDs(full.Items); !reflect.DeepEqual(got, want) {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
	for _, size := range []int{1, 4, 24, 25} {
		if got := messageIDs(readAll(t, e, pid, size, timeline.Filter{})); !reflect.DeepEqual(got, want) {
			t.Fatalf("paged by %d:\n got %v\nwant %v", size, got, want)
		}
	}
	// Exactly one page worth: HasNext only when more exist.
	page, err := timeline.Read(e.ctx, e.tn, pid, 24, "", timeline.Filter{})
	if err != nil || !page.HasNext || len(page.Items) != 24 {
		t.Fatalf("24 of 25: %d items HasNext=%v err=%v", len(page.Items), page.HasNext, err)
	}
	page, err = timeline.Read(e.ctx, e.tn, pid, 1, page.Cursors[23], timeline.Filter{})
	if err != nil || page.HasNext || len(page.Items) != 1 || page.Items[0].MessageID != want[24] {
		t.Fatalf("last page: %v HasNext=%v err=%v", messageIDs(page.Items), page.HasNext, err)
	}

	// An event inserted after the cursor position, newer than the page,
	// does not shift the next page (keyset, not offset).
	first, err := timeline.Read(e.ctx, e.tn, pid, 5, "", timeline.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	e.track(t, "input", timeline.TrackInput{MessageID: "late", Identifiers: anon("visitor"), Name: "x", OccurredAt: at(0)})
	next, err := timeline.Read(e.ctx, e.tn, pid, 5, first.Cursors[4], timeline.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(next.Items); !reflect.DeepEqual(got, want[5:10]) {
		t.Fatalf("after a concurrent insert: %v, want %v", got, want[5:10])
	}

	// Other profiles' events never appear.
	e.track(t, "input", timeline.TrackInput{MessageID: "other", Identifiers: anon("someone-else"), Name: "x", OccurredAt: at(-time.Minute)})
	for _, ev := range readAll(t, e, pid, 7, timeline.Filter{}) {
		if ev.MessageID == "other" || ev.ProfileID != pid {
			t.Fatalf("foreign event %+v on the timeline", ev)
		}
	}
}

func TestReadTimeBounds(t *testing.T) {
	e := newEnv(t)
	var in []timeline.TrackInput
	for i := range 10 {
		ev := good(fmt.Sprintf("m%d", i))
		ev.OccurredAt = at(time.Duration(i-10) * time.Minute)
		in = append(in, ev)
	}
	pid := e.track(t, "events", in...)[0].Profile.ID
	since, until := t0.Add(-7*time.Minute), t0.Add(-3*time.Minute)
	tests := []struct {
		name string
		f    timeline.Filter
		want []string
	}{
		{"since inclusive, until exclusive", timeline.Filter{Since: &since, Until: &until}, []string{"m6", "m5", "m4", "m3"}},
		{"since only", timeline.Filter{Since: &until}, []string{"m9", "m8", "m7"}},
		{"until only", timeline.Filter{Until: &since}, []string{"m2", "m1", "m0"}},
		{"empty window", timeline.Filter{Since: &until, Until: &since}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 50} {
				got := messageIDs(readAll(t, e, pid, size, tt.f))
				if len(got) == 0 {
					got = nil
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("paged by %d: %v, want %v", size, got, tt.want)
				}
			}
		})
	}
}

func TestReadFiltersAcrossPages(t *testing.T) {
	e := newEnv(t)
	var in []timeline.TrackInput
	var want []string
	for i := range 300 {
		ev := good(fmt.Sprintf("m%03d", i))
		ev.OccurredAt = at(-time.Duration(i) * time.Second) // m000 newest
		if i%7 == 0 {
			ev.Name = "purchase"
			want = append(want, ev.MessageID)
		}
		in = append(in, ev)
	}
	pid := e.track(t, "events", in...)[0].Profile.ID
	if len(want) != 43 {
		t.Fatalf("setup: %d matching events", len(want))
	}

	got := messageIDs(readAll(t, e, pid, 10, timeline.Filter{Names: []string{"purchase"}}))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("names filter paged by 10:\n got %v\nwant %v", got, want)
	}
	got = messageIDs(readAll(t, e, pid, 10, timeline.Filter{Names: []string{"purchase", "page_viewed"}}))
	if len(got) != 300 {
		t.Fatalf("two names: %d items, want 300", len(got))
	}
	if got := readAll(t, e, pid, 10, timeline.Filter{Names: []string{"nothing"}}); len(got) != 0 {
		t.Fatalf("unknown name matched %d items", len(got))
	}

	// Interactions every 25 seconds, between the events.
	var wantInter []string
	for i := 0; i < 300; i += 25 {
		ev, err := e.svc.Ingest.LogInteraction(e.ctx, e.tn, timeline.InteractionInput{
			ProfileID: pid, Kind: "NOTE", MessageID: fmt.Sprintf("note%03d", i), OccurredAt: at(-time.Duration(i)*time.Second - time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
		wantInter = append(wantInter, ev.MessageID)
	}
	got = messageIDs(readAll(t, e, pid, 5, timeline.Filter{Kinds: []string{timeline.KindInteraction}}))
	if !reflect.DeepEqual(got, wantInter) {
		t.Fatalf("kinds filter:\n got %v\nwant %v", got, wantInter)
	}
	if n := len(readAll(t, e, pid, 10, timeline.Filter{Kinds: []string{timeline.KindEvent}})); n != 300 {
		t.Fatalf("EVENT kind: %d items, want 300", n)
	}
	// Kind and name together, with a time window.
	since, until := t0.Add(-200*time.Second), t0.Add(-100*time.Second)
	got = messageIDs(readAll(t, e, pid, 3, timeline.Filter{Kinds: []string{timeline.KindEvent}, Names: []string{"purchase"}, Since: &since, Until: &until}))
	var wantWin []string
	for i := 101; i <= 200; i++ {
		if i%7 == 0 {
			wantWin = append(wantWin, fmt.Sprintf("m%03d", i))
		}
	}
	if !reflect.DeepEqual(got, wantWin) {
		t.Fatalf("kind+name+window:\n got %v\nwant %v", got, wantWin)
	}
}

func TestReadMalformedCursor(t *testing.T) {
	e := newEnv(t)
	pid := e.track(t, "input", good("m1"))[0].Profile.ID
	for _, c := range []string{"garbage!", "AAAA", "eyJrIjpbXX0"} {
		_, err := timeline.Read(e.ctx, e.tn, pid, 10, c, timeline.Filter{})
		wantInvalid(t, err, "after")
	}
	// A real cursor, cut short.
	page, err := timeline.Read(e.ctx, e.tn, pid, 1, "", timeline.Filter{})
	if err != nil || len(page.Cursors) != 1 {
		t.Fatalf("read: %v", err)
	}
	c := page.Cursors[0]
	_, err = timeline.Read(e.ctx, e.tn, pid, 10, c[:len(c)-4], timeline.Filter{})
	wantInvalid(t, err, "after")
}
