package resolvers

import (
	"context"
	"errors"
	"testing"
	"time"
)

// While the client is not reading, a newer snapshot replaces the waiting
// one: the client reads only the latest; then the stream ends with its
// source.
func TestSnapshotsDeliverOnlyTheLatest(t *testing.T) {
	in := make(chan int)
	out, err := snapshots(t.Context(), in, nil, func(v int) int { return v * 10 })
	if err != nil {
		t.Fatal(err)
	}
	for v := range 3 {
		select {
		case in <- v + 1: // taken by the stage while the client is away
		case <-time.After(5 * time.Second):
			t.Fatalf("value %d not taken", v+1)
		}
	}
	if got := <-out; got != 30 {
		t.Fatalf("read %d, want the latest snapshot 30", got)
	}
	close(in)
	if v, ok := <-out; ok {
		t.Fatalf("read %d after the source closed", v)
	}
}

// Every value of a plain stream arrives, in order; an error passes on
// with no stream; a cancelled client ends the stage.
func TestSubscribedDeliversAllAndEnds(t *testing.T) {
	in := make(chan int, 3)
	in <- 1
	in <- 2
	in <- 3
	close(in)
	out, err := subscribed(t.Context(), in, nil, func(v int) int { return v })
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for v := range out {
		got = append(got, v)
	}
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("got %v", got)
	}
	boom := errors.New("boom")
	if out, err := subscribed[int, int](t.Context(), nil, boom, nil); out != nil || err != boom {
		t.Fatalf("error not passed on: %v %v", out, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	live := make(chan int, 1)
	live <- 1
	out, _ = snapshots(ctx, live, nil, func(v int) int { return v })
	cancel()
	select {
	case _, ok := <-out:
		if ok {
			// The value may win the race with the cancel; the end must follow.
			if _, ok := <-out; ok {
				t.Fatal("stage kept going after its context ended")
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stage did not end with its context")
	}
}
