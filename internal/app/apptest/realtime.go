package apptest

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/realtime"
)

// Hub starts a realtime hub over the env's store (closed at cleanup) and
// makes the services publish to it, as Start does in a server.
func (e *Env) Hub(t testing.TB) *realtime.Hub {
	t.Helper()
	h := realtime.NewHub(e.Store, realtime.Options{Poll: 10 * time.Millisecond})
	t.Cleanup(h.Close)
	e.Services.Publish(h)
	t.Cleanup(func() { e.Services.Publish(nil) })
	return h
}

// Next returns the next value of a stream, failing the test when none
// comes within a few seconds or the stream ends.
func Next[T any](t testing.TB, stream <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-stream:
		if !ok {
			t.Fatal("stream ended")
		}
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
	var zero T
	return zero
}

// Quiet fails the test when the stream delivers a value within d.
func Quiet[T any](t testing.TB, stream <-chan T, d time.Duration) {
	t.Helper()
	select {
	case v, ok := <-stream:
		if ok {
			t.Fatalf("unexpected %+v", v)
		}
	case <-time.After(d):
	}
}
