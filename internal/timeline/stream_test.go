package timeline_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
)

// streamTrack tracks one event per message id for visitor, in one call
// (so one timeline.appended change), and returns the profile and item ids.
func streamTrack(t *testing.T, x *apptest.Env, visitor string, msgs ...string) (string, []string) {
	t.Helper()
	in := make([]timeline.TrackInput, len(msgs))
	for i, m := range msgs {
		in[i] = timeline.TrackInput{MessageID: m, Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: visitor}}, Name: "page_viewed"}
	}
	res, err := x.Services.Ingest.TrackEvents(x.Ctx, x.Tenant, "tester", "inputs", in)
	if err != nil {
		t.Fatalf("track %v: %v", msgs, err)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.Event.ID
	}
	return res[0].Profile.ID, ids
}

// A client resuming after an item of a trackBatch gets the rest of that
// batch first, then what was appended after it, then live items: nothing
// twice, nothing lost.
func TestStreamAppendedResumesInsideABatch(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	pid, batch := streamTrack(t, x, "v1", "b1", "b2", "b3")
	_, later := streamTrack(t, x, "v1", "l1")
	streamTrack(t, x, "someone else", "o1")

	items, err := x.Services.Timeline.StreamAppended(t.Context(), hub, x.Tenant, pid, batch[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		got = append(got, apptest.Next(t, items).ID)
	}
	if want := []string{batch[1], batch[2], later[0]}; !slices.Equal(got, want) {
		t.Fatalf("resumed with %v, want %v", got, want)
	}

	_, live := streamTrack(t, x, "v1", "n1", "n2")
	for _, id := range live {
		if ev := apptest.Next(t, items); ev.ID != id || ev.ProfileID != pid {
			t.Fatalf("live item %s of %s, want %s of %s", ev.ID, ev.ProfileID, id, pid)
		}
	}
	apptest.Quiet(t, items, 100*time.Millisecond)
}

// The last item of a change resumes with the changes after it only; no
// `after` starts with what is appended from now on.
func TestStreamAppendedEdges(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	pid, batch := streamTrack(t, x, "v1", "b1", "b2")

	fromLast, err := x.Services.Timeline.StreamAppended(t.Context(), hub, x.Tenant, pid, batch[1])
	if err != nil {
		t.Fatal(err)
	}
	fromNow, err := x.Services.Timeline.StreamAppended(t.Context(), hub, x.Tenant, pid, "")
	if err != nil {
		t.Fatal(err)
	}
	apptest.Quiet(t, fromNow, 100*time.Millisecond)
	_, next := streamTrack(t, x, "v1", "n1")
	for name, items := range map[string]<-chan *timeline.Event{"after the last item": fromLast, "from now": fromNow} {
		if ev := apptest.Next(t, items); ev.ID != next[0] {
			t.Fatalf("%s: got %s, want %s", name, ev.ID, next[0])
		}
	}
}

func TestStreamAppendedBadInput(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	pid, _ := streamTrack(t, x, "v1", "b1")
	for _, tc := range []struct {
		name, profileID, after string
		code                   apperr.Code
		field                  string
	}{
		{"no profile id", "", "", apperr.BadUserInput, "profileId"},
		{"long profile id", strings.Repeat("p", 129), "", apperr.BadUserInput, "profileId"},
		{"unknown profile", "nobody", "", apperr.NotFound, ""},
		{"after not an item id", pid, "not-an-id", apperr.BadUserInput, "after"},
		// Changes after it may be pruned: no replay that looks complete.
		{"after older than the retention", pid, realtime.Floor(time.Now().Add(-time.Hour)) + "-7000-8000-000000000000", apperr.BadUserInput, "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := x.Services.Timeline.StreamAppended(t.Context(), hub, x.Tenant, tc.profileID, tc.after)
			e, ok := apperr.As(err)
			if !ok || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("err = %v, want %s on %q", err, tc.code, tc.field)
			}
			if items != nil {
				t.Fatal("a stream came with the error")
			}
		})
	}
	if n := hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left by refused streams", n)
	}
}
