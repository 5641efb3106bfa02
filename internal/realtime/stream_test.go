package realtime

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// ids converts a change to its id, the value the pump tests look at.
func ids(c Change) []string { return []string{c.ID} }

// take reads the next value of out, failing the test after a second.
func take[T any](t *testing.T, out <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-out:
		if !ok {
			t.Fatal("stream closed")
		}
		return v
	case <-time.After(time.Second):
		t.Fatal("nothing delivered")
	}
	var zero T
	return zero
}

// closes waits for out to close, dropping what is still sent.
func closes[T any](t *testing.T, out <-chan T) {
	t.Helper()
	deadline := time.After(time.Second)
	for {
		select {
		case _, ok := <-out:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream still open")
		}
	}
}

// TestPumpPendingThenLive: the pending changes (the rest of a resume
// point) come before anything the hub delivers, and a change converting
// to several values sends them all, in order.
func TestPumpPendingThenLive(t *testing.T) {
	changes := make(chan Change, 4)
	changes <- Change{ID: "live1"}
	pending := []Change{{ID: "p1"}, {ID: "p2"}}
	convert := func(c Change) []string {
		if c.ID == "p2" {
			return []string{"p2a", "p2b"}
		}
		return ids(c)
	}
	out := Pump(t.Context(), changes, func() {}, pending, false, convert)
	var got []string
	for range 4 {
		got = append(got, take(t, out))
	}
	changes <- Change{ID: "live2"}
	got = append(got, take(t, out))
	if want := []string{"p1", "p2a", "p2b", "live1", "live2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestPumpCoalesces: with coalesce, the snapshots that queued up while
// the reader was away give way to the newest; without it, each comes.
func TestPumpCoalesces(t *testing.T) {
	for _, coalesce := range []bool{true, false} {
		changes := make(chan Change, 4)
		for _, id := range []string{"s1", "s2", "s3"} {
			changes <- Change{ID: id}
		}
		out := Pump(t.Context(), changes, func() {}, nil, coalesce, ids)
		want := []string{"s1", "s2", "s3"}
		if coalesce {
			want = []string{"s3"}
		}
		var got []string
		for range want {
			got = append(got, take(t, out))
		}
		changes <- Change{ID: "s4"}
		got = append(got, take(t, out))
		if want = append(want, "s4"); !slices.Equal(got, want) {
			t.Fatalf("coalesce=%v: got %v, want %v", coalesce, got, want)
		}
	}
}

// TestFollowAcrossMerge: once the followed profile is merged away, the
// changes of the survivor are the subscriber's, and the old id's are not.
func TestFollowAcrossMerge(t *testing.T) {
	accept := Follow("a", TimelineAppended)
	for i, tc := range []struct {
		c    Change
		want bool
	}{
		{Change{Kind: TimelineAppended, ProfileID: "a"}, true},
		{Change{Kind: TimelineAppended, ProfileID: "b"}, false},
		{Change{Kind: ProfileUpdated, ProfileID: "a"}, false},
		{Change{Kind: ProfileUpdated, ProfileID: "b", Payload: map[string]any{PayloadMergedInto: "c"}}, false},
		{Change{Kind: TimelineAppended, ProfileID: "a"}, true},
		{Change{Kind: ProfileUpdated, ProfileID: "a", Payload: map[string]any{PayloadMergedInto: "b"}}, false},
		{Change{Kind: TimelineAppended, ProfileID: "a"}, false},
		{Change{Kind: TimelineAppended, ProfileID: "b"}, true},
	} {
		if got := accept(tc.c); got != tc.want {
			t.Fatalf("change %d %+v: accepted %v, want %v", i, tc.c, got, tc.want)
		}
	}

	// A profile stream gets the merge itself: it is the followed
	// profile's last change under its old id.
	updates := Follow("a", ProfileUpdated)
	if !updates(Change{Kind: ProfileUpdated, ProfileID: "a", Payload: map[string]any{PayloadMergedInto: "b"}}) {
		t.Fatal("the merge of the followed profile was not accepted")
	}
	if !updates(Change{Kind: ProfileUpdated, ProfileID: "b"}) {
		t.Fatal("the survivor's update was not accepted")
	}
}

// TestPumpEndsWithContext: a reader that goes away ends the pump, whether
// it waits for a change or for the reader, and the hub subscription with
// it.
func TestPumpEndsWithContext(t *testing.T) {
	for _, blocked := range []bool{false, true} {
		ctx, stop := context.WithCancel(t.Context())
		changes := make(chan Change, 1)
		if blocked {
			changes <- Change{ID: "unread"}
		}
		var cancelled atomic.Bool
		out := Pump(ctx, changes, func() { cancelled.Store(true) }, nil, false, ids)
		time.Sleep(10 * time.Millisecond)
		stop()
		closes(t, out)
		if !cancelled.Load() {
			t.Fatalf("blocked=%v: the subscription was not cancelled", blocked)
		}
	}
}

// TestPumpEndsWhenChangesClose: the hub closes a subscription it drops
// (a subscriber too slow, Close), and the stream ends with it.
func TestPumpEndsWhenChangesClose(t *testing.T) {
	changes := make(chan Change, 1)
	var cancelled atomic.Bool
	out := Pump(t.Context(), changes, func() { cancelled.Store(true) }, nil, true, ids)
	changes <- Change{ID: "last"}
	if got := take(t, out); got != "last" {
		t.Fatalf("got %q", got)
	}
	close(changes)
	closes(t, out)
	if !cancelled.Load() {
		t.Fatal("the subscription was not cancelled")
	}
}
