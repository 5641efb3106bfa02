package apptest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
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

// Recorder is a realtime.Publisher that keeps what the services publish
// (Services.Publish), so that a test sees what subscribers would be sent.
type Recorder struct {
	mu    sync.Mutex
	cs    []realtime.Change
	calls []int // where each Publish call's changes start in cs
}

// Publish keeps cs.
func (r *Recorder) Publish(_ context.Context, _ store.Tenant, cs ...realtime.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, len(r.cs))
	r.cs = append(r.cs, cs...)
	return nil
}

// Calls returns the changes of each Publish call so far (each an outbox
// write), in order.
func (r *Recorder) Calls() [][]realtime.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]realtime.Change, len(r.calls))
	for i, from := range r.calls {
		to := len(r.cs)
		if i+1 < len(r.calls) {
			to = r.calls[i+1]
		}
		out[i] = slices.Clone(r.cs[from:to])
	}
	return out
}

// Len is how many changes were published so far: a mark for Of.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cs)
}

// Changes returns every change published so far.
func (r *Recorder) Changes() []realtime.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cs)
}

// Of returns the changes published after mark from, of kind about
// profileID ("" matches any kind, any profile).
func (r *Recorder) Of(from int, kind, profileID string) []realtime.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []realtime.Change
	for _, c := range r.cs[from:] {
		if (kind == "" || c.Kind == kind) && (profileID == "" || c.ProfileID == profileID) {
			out = append(out, c)
		}
	}
	return out
}
