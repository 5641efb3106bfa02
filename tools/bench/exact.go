package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// exactSample is how many random profiles the exactness check recomputes.
const exactSample = 1000

// checkExact opens a stopped server's store in dir and recomputes, for
// the profiles of the bench workspace that pick hands to check, what
// ingest maintains (ingest.Verify: event count, feature counters,
// memberships, members index, computed traits, score tally) from their
// stored events. It returns the profiles checked and the differences
// found.
func checkExact(ctx context.Context, dir string, pick func(tn store.Tenant, svc *app.Services, check func(*profile.Profile) error) error) (checked int, mismatches []string, err error) {
	st, err := openStore(ctx, dir, app.Collections)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close(context.Background())
	svc := app.New(time.Now, app.WithStore(st))
	tn := st.Tenant(benchWorkspace)
	now := time.Now()
	err = pick(tn, svc, func(p *profile.Profile) error {
		checked++
		ms, err := svc.Ingest.Verify(ctx, tn, p, now)
		for _, m := range ms {
			mismatches = append(mismatches, m.String())
		}
		return err
	})
	if err != nil {
		return checked, mismatches, fmt.Errorf("exactness: %w", err)
	}
	return checked, mismatches, nil
}

// addExactness checks about exactSample random live profiles of dir (a
// stopped server's data) with a sample seed of its own (checkExact) and
// adds the row (addChecked).
func (h *harness) addExactness(ctx context.Context, dir, area, what string) error {
	seed := uint64(time.Now().UnixNano())
	h.logf("%s exactness: sample seed %d", area, seed)
	checked, diffs, err := checkExact(ctx, dir, func(tn store.Tenant, _ *app.Services, check func(*profile.Profile) error) error {
		total, err := profile.Count(ctx, tn)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(seed, 16)) // the caller varies seed per run
		keep := float64(exactSample) / float64(max(total, 1))
		return profile.EachLive(ctx, tn, func(p *profile.Profile) error {
			if rng.Float64() >= keep {
				return nil
			}
			return check(p)
		})
	})
	if err != nil {
		return err
	}
	h.addChecked(area, fmt.Sprintf(what, checked), checked, diffs)
	return nil
}

// addChecked logs the first differences an exactness check found and
// adds its row: met with none, over at least one profile.
func (h *harness) addChecked(area, what string, checked int, diffs []string) {
	for _, d := range diffs[:min(len(diffs), 5)] {
		h.logf("%s exactness: %s", area, d)
	}
	h.add(result{area: area, what: what, target: "no difference",
		figure: fmt.Sprintf("%d differences", len(diffs)), ok: verdict(len(diffs) == 0 && checked > 0)})
}

// openStore opens the embedded store in dir with specs declared.
func openStore(ctx context.Context, dir string, specs []store.CollectionSpec) (*store.Store, error) {
	b, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, b, specs)
	if err != nil {
		b.Close(context.Background())
		return nil, err
	}
	return st, nil
}
