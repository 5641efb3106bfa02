package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/tools/load"
)

// runCrash kills the server (SIGKILL: no shutdown work) at a random
// moment of a trackBatch load, restarts it on the same data, and checks
// that every event the server acknowledged is stored, and the exactness
// of random profiles (checkExact).
func runCrash(ctx context.Context, h *harness) error {
	dir, err := h.fresh()
	if err != nil {
		return err
	}
	srv, err := h.start(ctx, dir, "crash")
	if err != nil {
		return err
	}
	var (
		mu             sync.Mutex
		acked, unacked []string
	)
	cfg := h.loadCfg(srv, 4, 100, load.Mix{Track: 1}, h.opts.duration)
	cfg.Acked = func(ids []string) {
		mu.Lock()
		acked = append(acked, ids...)
		mu.Unlock()
	}
	cfg.Unacked = func(ids []string) {
		mu.Lock()
		unacked = append(unacked, ids...)
		mu.Unlock()
	}
	done := make(chan error, 1)
	go func() {
		_, err := load.Run(ctx, cfg)
		done <- err
	}()
	seed := uint64(time.Now().UnixNano())
	at := time.Duration(float64(h.opts.duration) * (0.2 + 0.6*rand.New(rand.NewPCG(seed, 9)).Float64()))
	h.logf("crash: kill -9 at %s of %s (seed %d)", at.Round(time.Millisecond), h.opts.duration, seed)
	select {
	case <-time.After(at):
	case err := <-done:
		srv.kill()
		return fmt.Errorf("load ended before the kill: %v", err)
	}
	srv.kill()
	if err := <-done; err != nil {
		return err
	}
	// The restart finishes what the crash interrupted: merges and
	// hand-offs at once, and the recount of the calls the kill cut between
	// storing and counting their events once the dead process's journal
	// entry has gone unwritten for three intervals (internal/ingest/journal).
	t0 := time.Now()
	logPath := filepath.Join(h.dir, "crash-restart.log")
	var from int64 // the log is appended to run after run
	if fi, err := os.Stat(logPath); err == nil {
		from = fi.Size()
	}
	srv, err = h.start(ctx, dir, "crash-restart")
	if err != nil {
		return fmt.Errorf("restart after kill -9: %w", err)
	}
	recounted := waitForLog(ctx, logPath, from, "recounted the profiles of interrupted calls", time.Minute)
	h.logf("crash: interrupted calls recounted %s after the restart (%v)", time.Since(t0).Round(time.Second), recounted)
	if err := srv.stop(); err != nil {
		return err
	}
	mu.Lock()
	ids, lost := acked, unacked
	mu.Unlock()
	missing, err := missingEvents(ctx, dir, ids)
	if err != nil {
		return err
	}
	h.add(result{area: "crash", what: fmt.Sprintf("kill -9 at %.0f%% of a trackBatch load, restart: acknowledged events stored", 100*at.Seconds()/h.opts.duration.Seconds()),
		target: "all, once", figure: fmt.Sprintf("%d acknowledged, %d missing", len(ids), missing), ok: verdict(missing == 0 && len(ids) > 0)})
	if !recounted {
		h.add(result{area: "crash", what: "the restarted server recounted the interrupted calls (its log) within a minute", target: "yes", figure: "no", ok: verdict(false)})
	}
	if err := h.addInterrupted(ctx, dir, lost); err != nil {
		return err
	}
	return h.addExactness(ctx, dir, "crash", "exactness after the restart: %d random profiles recomputed from their stored events")
}

// addInterrupted checks the profiles of the events that calls never
// answered (cut by the kill) stored anyway (checkExact): each must equal
// a count of its stored events, the events the kill left uncounted
// included. Profiles erased since are skipped.
func (h *harness) addInterrupted(ctx context.Context, dir string, unacked []string) error {
	stored := 0
	checked, diffs, err := checkExact(ctx, dir, func(tn store.Tenant, svc *app.Services, check func(*profile.Profile) error) error {
		ids, n, err := timeline.ProfilesOfMessages(ctx, tn, unacked)
		if err != nil {
			return err
		}
		stored = n
		for _, id := range ids {
			p, err := profile.Resolve(ctx, tn, id, svc.Identity.Redirect)
			if apperr.CodeOf(err) == apperr.NotFound {
				continue
			}
			if err != nil {
				return err
			}
			if err := check(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.addChecked("crash", fmt.Sprintf("events stored by calls never answered (%d): their %d profiles recomputed from their stored events", stored, checked), checked, diffs)
	return nil
}

// waitForLog polls the log file at path until it holds substr past
// offset from, or patience runs out; it says whether it found it.
func waitForLog(ctx context.Context, path string, from int64, substr string, patience time.Duration) bool {
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b, err := os.ReadFile(path); err == nil && int64(len(b)) > from && strings.Contains(string(b[from:]), substr) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// missingEvents counts the messageIds of ids with no stored event (a
// messageId is unique per workspace: a stored one is stored once).
func missingEvents(ctx context.Context, dir string, ids []string) (int, error) {
	st, err := openStore(ctx, dir, app.Collections)
	if err != nil {
		return 0, err
	}
	defer st.Close(context.Background())
	found, err := timeline.StoredCount(ctx, st.Tenant(benchWorkspace), ids)
	if err != nil {
		return 0, fmt.Errorf("look up acknowledged events: %w", err)
	}
	return len(ids) - found, nil
}
