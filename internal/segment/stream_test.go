package segment_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
)

// streamSetup is a workspace with a segment of everyone who ordered in
// the last 30 days, and a hub its changes are published to.
func streamSetup(t *testing.T) (*apptest.Env, *segment.Segment, func(who string) string) {
	t.Helper()
	x := apptest.New(t, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	r := rule.Rule{Event: &rule.EventCond{
		Name: "order", Count: &rule.CountCond{Op: rule.GTE, Value: 1},
		Window: &rule.Window{Last: &rule.Last{Amount: 30, Unit: rule.Days}},
	}}
	s, err := x.Services.Segments.Create(x.Ctx, x.Tenant, segment.CreateInput{Name: "buyers", Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	order := func(who string) string {
		t.Helper()
		n++
		res, err := x.Services.Ingest.TrackEvents(x.Ctx, x.Tenant, "tester", "input", []timeline.TrackInput{{
			MessageID: fmt.Sprintf("order-%d", n), Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: who}}, Name: "order",
		}})
		if err != nil {
			t.Fatalf("track: %v", err)
		}
		return res[0].Profile.ID
	}
	return x, s, order
}

// A client resuming after a membership change gets the changes after it
// (replayed from the outbox), then live ones.
func TestStreamChangesResumesAfterAChange(t *testing.T) {
	x, s, order := streamSetup(t)
	hub := x.Hub(t)
	live, err := x.Services.Segments.StreamChanges(t.Context(), hub, x.Tenant, s.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a := order("a")
	first := apptest.Next(t, live)
	if first.ProfileID != a || first.SegmentID != s.ID || first.Kind != segment.Entered {
		t.Fatalf("first change %+v", first)
	}
	b := order("b")
	if c := apptest.Next(t, live); c.ProfileID != b {
		t.Fatalf("second change %+v, want %s entering", c, b)
	}

	resumed, err := x.Services.Segments.StreamChanges(t.Context(), hub, x.Tenant, s.ID, "", first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := apptest.Next(t, resumed); c.ProfileID != b {
		t.Fatalf("resumed with %+v, want %s entering", c, b)
	}
	c := order("c")
	if got := apptest.Next(t, resumed); got.ProfileID != c {
		t.Fatalf("live change %+v, want %s entering", got, c)
	}
	apptest.Quiet(t, resumed, 100*time.Millisecond)
}

// A stream of one profile's changes sees that profile only.
func TestStreamChangesOfAProfile(t *testing.T) {
	x, _, order := streamSetup(t)
	hub := x.Hub(t)
	a := order("a")
	b := order("b")
	changes, err := x.Services.Segments.StreamChanges(t.Context(), hub, x.Tenant, "", b, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := x.Services.Segments.Create(x.Ctx, x.Tenant, segment.CreateInput{Name: "everyone", Rule: &rule.Rule{Event: &rule.EventCond{Name: "order"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The new segment's backfill enters both; only b's entry comes.
	if c := apptest.Next(t, changes); c.ProfileID != b || c.SegmentID != other.ID {
		t.Fatalf("got %+v, want %s entering %s (not %s)", c, b, other.ID, a)
	}
	apptest.Quiet(t, changes, 100*time.Millisecond)
}

func TestStreamChangesBadInput(t *testing.T) {
	x, s, order := streamSetup(t)
	hub := x.Hub(t)
	a := order("a")
	for _, tc := range []struct {
		name, segmentID, profileID, after string
		code                              apperr.Code
		field                             string
	}{
		{"neither segment nor profile", "", "", "", apperr.BadUserInput, "segmentId"},
		{"long segment id", strings.Repeat("s", 129), "", "", apperr.BadUserInput, "segmentId"},
		{"long profile id", s.ID, strings.Repeat("p", 129), "", apperr.BadUserInput, "profileId"},
		{"unknown segment", "nope", a, "", apperr.NotFound, ""},
		{"unknown profile", s.ID, "nobody", "", apperr.NotFound, ""},
		{"after not a change id", s.ID, "", "not-an-id", apperr.BadUserInput, "after"},
		{"after too long", s.ID, "", uuidV7 + strings.Repeat("0", 64), apperr.BadUserInput, "after"},
		// Changes after it may be pruned: no replay that looks complete.
		{"after older than the retention", s.ID, "", realtime.Floor(time.Now().Add(-time.Hour)) + "-7000-8000-000000000000", apperr.BadUserInput, "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes, err := x.Services.Segments.StreamChanges(t.Context(), hub, x.Tenant, tc.segmentID, tc.profileID, tc.after)
			e, ok := apperr.As(err)
			if !ok || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("err = %v, want %s on %q", err, tc.code, tc.field)
			}
			if changes != nil {
				t.Fatal("a stream came with the error")
			}
		})
	}
	if n := hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left by refused streams", n)
	}
}

// uuidV7 is a well-formed UUIDv7 id: with more after it, it still
// parses, but is longer than any change id.
const uuidV7 = "01900000-0000-7000-8000-000000000000"
