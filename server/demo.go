package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/tools/seed"
)

// demoMarker records that the demo data was loaded, so a restart (or a
// developer who deleted the demo profiles) does not get them again.
const demoMarker = "demo-loaded"

// errStoppedSeeding ends start-up when the server was stopped (Ctrl-C)
// while loading the demo data: a normal stop, not a failure.
var errStoppedSeeding = errors.New("stopped while loading demo data")

// demoData is the demo data load as start-up work (app.WithStartup): it
// runs after merge recovery, before the background work starts.
func demoData(st *store.Store, dataDir string, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		err := loadDemoData(ctx, st, dataDir, logger)
		if err != nil && ctx.Err() != nil {
			// The marker is not written, so the next start seeds again.
			logger.Info("stopped while loading demo data")
			return errStoppedSeeding
		}
		return err
	}
}

// loadDemoData seeds the demo workspace once per data dir. The marker is
// written only after a complete load, so an interrupted seed is retried on
// the next start (seed.Load derives message ids from its seed, so a re-run
// stores everything once).
func loadDemoData(ctx context.Context, st *store.Store, dataDir string, logger *slog.Logger) error {
	marker := filepath.Join(dataDir, demoMarker)
	if _, err := os.Stat(marker); err == nil {
		logger.Debug("demo data already loaded", "marker", marker)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check demo data marker: %w", err)
	}
	logger.Info("loading demo data", "workspace", devWorkspace)
	start := time.Now()
	stats, err := seed.Load(ctx, st, devWorkspace, seed.Options{Seed: 1})
	if err != nil {
		return fmt.Errorf("load demo data: %w", err)
	}
	content := fmt.Sprintf("workspace=%s profiles=%d events=%d interactions=%d merges=%d consents=%d accounts=%d deals=%d tickets=%d computedTraits=%d segments=%d at=%s\n",
		devWorkspace, stats.Profiles, stats.Events, stats.Interactions, stats.Merges, stats.Consents, stats.Accounts, stats.Deals, stats.Tickets,
		stats.ComputedTraits, stats.Segments, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(marker, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write demo data marker: %w", err)
	}
	logger.Info("demo data loaded", "workspace", devWorkspace,
		"profiles", stats.Profiles, "events", stats.Events, "interactions", stats.Interactions,
		"merges", stats.Merges, "consents", stats.Consents, "accounts", stats.Accounts, "deals", stats.Deals, "tickets", stats.Tickets,
		"computedTraits", stats.ComputedTraits, "segments", stats.Segments, "duration_ms", time.Since(start).Milliseconds())
	return nil
}
