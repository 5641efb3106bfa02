package main

import (
	"context"
	"fmt"
	"time"
)

// backgroundWork counts the computed-trait backfills and segment builds
// still under way on the server (of ids, or of every segment when ids is
// nil).
func backgroundWork(ctx context.Context, c *client, ids []string) (backfills, builds int, err error) {
	var out struct {
		ComputedTraits []struct {
			Backfill struct{ Status string }
		}
		Segments struct {
			Nodes []struct {
				ID    string
				Build *struct{ Status string }
			}
		}
	}
	if err := c.do(ctx, `{ computedTraits { backfill { status } } segments(first: 100) { nodes { id build { status } } } }`, nil, &out); err != nil {
		return 0, 0, fmt.Errorf("background work: %w", err)
	}
	for _, t := range out.ComputedTraits {
		if s := t.Backfill.Status; s == "PENDING" || s == "RUNNING" {
			backfills++
		}
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, s := range out.Segments.Nodes {
		if (ids == nil || want[s.ID]) && s.Build != nil && s.Build.Status == "BUILDING" {
			builds++
		}
	}
	return backfills, builds, nil
}

// settle waits until no backfill and no build runs on the server (of
// ids, when given: builds only), at most limit, and returns how long it
// waited. The dataset is snapshotted settled, so that no scenario
// measures a server still catching up with the dataset's own build.
func settle(ctx context.Context, c *client, ids []string, limit time.Duration, logf func(string, ...any)) (time.Duration, error) {
	t0 := time.Now()
	last := t0
	for {
		backfills, builds, err := backgroundWork(ctx, c, ids)
		if err != nil {
			return time.Since(t0), err
		}
		if builds == 0 && (ids != nil || backfills == 0) {
			return time.Since(t0), nil
		}
		if time.Since(t0) > limit {
			return time.Since(t0), fmt.Errorf("still %d backfills and %d builds running after %s", backfills, builds, limit)
		}
		if time.Since(last) > 30*time.Second {
			logf("settling: %d backfills and %d builds running (%s)", backfills, builds, time.Since(t0).Round(time.Second))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
