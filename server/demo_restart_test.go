package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logCapture is a slog handler that records every record's text (message
// and attributes) and passes it on to the handler it wraps.
type logCapture struct {
	next  slog.Handler
	attrs []slog.Attr
	mu    *sync.Mutex
	lines *[]string
}

func (h logCapture) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (h logCapture) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	h.next = h.next.WithAttrs(as)
	return h
}

func (h logCapture) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}

// captureDefaultLog routes slog's default logger (the domain packages'
// background work logs there) through a recorder until the test ends, and
// returns a function listing the lines containing substr.
func captureDefaultLog(t *testing.T) func(substr string) []string {
	t.Helper()
	// The default handler writes through package log, which SetDefault
	// points at the new handler: wrapping it would loop. Records go on to
	// the test's output instead, and log's own settings come back after.
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	var (
		mu    sync.Mutex
		lines []string
	)
	next := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})
	slog.SetDefault(slog.New(logCapture{next: next, mu: &mu, lines: &lines}))
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	return func(substr string) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, l := range lines {
			if strings.Contains(l, substr) {
				out = append(out, l)
			}
		}
		return out
	}
}

// Issue 15: a data dir used in production mode (a secret, no demo data)
// where a workspace got its score summary, then started in dev mode so
// that it loads the demo workspace. The demo's summary (and any other
// workspace's) must be claimable: start-up (the seed's forced refresh)
// and the background refresh must not fight over the lease, and neither
// may log "version conflict" again and again.
func TestDemoLoadAfterProductionUseOfDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the full demo data set")
	}
	logged := captureDefaultLog(t)
	dir := t.TempDir()

	prod := startServer(t, serverOptions{DataDir: dir, Env: map[string]string{"HALO_DEMO_DATA": "false"}})
	tok := prod.token(t, "acme")
	base := time.Now().Add(-48 * time.Hour)
	for i := range 6 {
		scoreTrack(t, prod, tok, fmt.Sprintf("buyer%d@example.com", i%3), "order_completed", base.Add(time.Duration(i)*time.Hour),
			map[string]any{"revenue": 10.0 + float64(i)})
	}
	// The workspace's summary exists when the server stops (the background
	// refresh may have made it already; the forced one makes sure).
	prod.gql(t, tok, `mutation { refreshScoreSummary { at buyers } }`, nil).requireOK(t)
	if err := prod.stop(); err != nil {
		t.Fatalf("stop the production server: %v", err)
	}

	dev := startServer(t, serverOptions{DataDir: dir, DevMode: true, Env: map[string]string{"HALO_DEMO_DATA": "true"}})
	if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
		t.Fatalf("demo data not loaded: %v", err)
	}
	demo := dev.token(t, devWorkspace)
	r := dev.gql(t, demo, `{ scoreSummary { at buyers } }`, nil)
	r.requireOK(t)
	var out struct {
		ScoreSummary *struct{ Buyers int }
	}
	r.decode(t, &out)
	if out.ScoreSummary == nil || out.ScoreSummary.Buyers == 0 {
		t.Fatalf("demo workspace has no score summary after the demo load: %s", r.Body)
	}
	// Both workspaces keep their own summary and can refresh it.
	for _, ws := range []string{devWorkspace, "acme"} {
		dev.gql(t, dev.token(t, ws), `mutation { refreshScoreSummary { at buyers } }`, nil).requireOK(t)
	}
	// Background work in the demo workspace (scores read, so refreshes
	// are considered) for a few seconds: no claim may fail.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		dev.gql(t, demo, `{ scoreSummary { at } }`, nil).requireOK(t)
		time.Sleep(250 * time.Millisecond)
	}
	if bad := logged("version conflict"); len(bad) > 0 {
		t.Fatalf("logged %d version conflicts, first: %s", len(bad), bad[0])
	}
	if bad := logged("refresh workspace summary"); len(bad) > 0 {
		t.Fatalf("background summary refresh failed: %s", bad[0])
	}
}
