package traits

import (
	"context"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// lineRecorder is a slog handler keeping each record's message.
type lineRecorder struct {
	mu    *sync.Mutex
	lines *[]string
}

func (h lineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h lineRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h lineRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineRecorder) WithGroup(string) slog.Handler      { return h }

// A background refresh that fails is not tried again on every load of
// the workspace's configuration (once a second, CacheTTL), but after a
// growing wait: issue 15's "refresh workspace summary ... version
// conflict" logged every second, forever.
func TestBackgroundRefreshBacksOff(t *testing.T) {
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	var (
		mu    sync.Mutex
		lines []string
	)
	slog.SetDefault(slog.New(lineRecorder{mu: &mu, lines: &lines}))
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	min, max := RefreshRetryMin, RefreshRetryMax
	t.Cleanup(func() { RefreshRetryMin, RefreshRetryMax = min, max })
	RefreshRetryMin, RefreshRetryMax = time.Hour, 3*time.Hour

	ctx := context.Background()
	b, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, b, slices.Concat(Collections, profile.Collections, settings.Collections, timeline.Collections, identity.Collections))
	if err != nil {
		t.Fatal(err)
	}
	// A closed store: every refresh fails.
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e := &Engine{}
	tn := st.Tenant("ws1")
	failures := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "refresh workspace summary") {
				n++
			}
		}
		return n
	}
	for range 10 {
		e.maybeRefresh(tn, nil)
		e.Wait()
	}
	if n := failures(); n != 1 {
		t.Fatalf("%d failed refreshes logged within the retry wait, want 1: %q", n, lines)
	}
	// The wait doubles up to RefreshRetryMax, then stays there; once it
	// is over (moved to the past here), the next load tries again.
	waits := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour}
	for i, want := range waits {
		e.mu.Lock()
		r := e.refreshRetry["ws1"]
		if r.wait != want || time.Until(r.at) < want-time.Minute {
			e.mu.Unlock()
			t.Fatalf("retry after failure %d: in %v (wait %v), want %v", i+1, time.Until(r.at), r.wait, want)
		}
		r.at = time.Now().Add(-time.Millisecond)
		e.refreshRetry["ws1"] = r
		e.mu.Unlock()
		e.maybeRefresh(tn, nil)
		e.Wait()
		if n := failures(); n != i+2 {
			t.Fatalf("after the wait: %d failures logged, want %d", n, i+2)
		}
	}
}
