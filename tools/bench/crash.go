package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/timeline"
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
		mu    sync.Mutex
		acked []string
	)
	cfg := h.loadCfg(srv, 4, 100, load.Mix{Track: 1}, h.opts.duration)
	cfg.Acked = func(ids []string) {
		mu.Lock()
		acked = append(acked, ids...)
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
	// The restart finishes what the crash interrupted (hand-offs, merges).
	srv, err = h.start(ctx, dir, "crash-restart")
	if err != nil {
		return fmt.Errorf("restart after kill -9: %w", err)
	}
	if err := srv.stop(); err != nil {
		return err
	}
	mu.Lock()
	ids := acked
	mu.Unlock()
	missing, err := missingEvents(ctx, dir, ids)
	if err != nil {
		return err
	}
	h.add(result{area: "crash", what: fmt.Sprintf("kill -9 at %.0f%% of a trackBatch load, restart: acknowledged events stored", 100*at.Seconds()/h.opts.duration.Seconds()),
		target: "all, once", figure: fmt.Sprintf("%d acknowledged, %d missing", len(ids), missing), ok: verdict(missing == 0 && len(ids) > 0)})
	return h.addExactness(ctx, dir, "crash", "exactness after the restart: %d random profiles recomputed from their stored events")
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
