package traits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/profile"
	"github.com/halo-cdp/halo/segment"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/traits/agg"
)

type workspaceDoc struct {
	ID string `bson:"_id"`
	WS string `bson:"ws"`
}

// register records, in the system workspace, that tn has definitions.
func register(ctx context.Context, tn store.Tenant) error {
	sys := tn.Store().Tenant(store.SystemWorkspace)
	if err := sys.C(store.TraitWorkspaces).Put(ctx, workspaceDoc{ID: tn.Workspace(), WS: tn.Workspace()}); err != nil {
		return fmt.Errorf("register computed traits workspace: %w", err)
	}
	return nil
}

// LeaseTTL is how long a backfill's owner holds it without a sign of life
// (each page extends it); after that another instance may take it over.
const LeaseTTL = 30 * time.Second

// Resume starts, in the background, every backfill left PENDING, or
// RUNNING with a lapsed lease (its runner died), from the start (backfill
// is idempotent). Safe to call periodically: a backfill running anywhere
// keeps its lease. It returns how many it started.
func (e *Engine) Resume(ctx context.Context, st *store.Store) (int, error) {
	docs, err := st.Tenant(store.SystemWorkspace).C(store.TraitWorkspaces).Find(ctx, store.Query{Index: store.TraitWorkspacesByWS})
	if err != nil {
		return 0, fmt.Errorf("computed traits workspaces: %w", err)
	}
	n := 0
	for _, doc := range docs {
		var w workspaceDoc
		if err := doc.Decode(&w); err != nil {
			return n, err
		}
		tn := st.Tenant(w.WS)
		defs, err := e.List(ctx, tn)
		if err != nil {
			return n, err
		}
		for _, d := range defs {
			b := d.Backfill
			if b.Status == Pending || (b.Status == Running && !time.Now().Before(b.LeaseUntil)) {
				e.startBackfill(tn, d.Key, d.Rev)
				n++
			}
		}
	}
	return n, nil
}

func (e *Engine) startBackfill(tn store.Tenant, key string, rev int64) {
	e.runs.Add(1)
	go func() {
		defer e.runs.Done()
		ctx := context.Background()
		if err := e.backfill(ctx, tn, key, rev); err != nil {
			slog.Error("computed traits: backfill", "workspace", tn.Workspace(), "key", key, "err", err)
			_ = e.progress(ctx, tn, key, rev, func(b *Backfill) {
				b.Status, b.Error, b.FinishedAt = Failed, err.Error(), e.now().Truncate(time.Millisecond)
			})
		}
	}()
}

// errSuperseded ends a backfill whose definition changed or went away, or
// whose lease another engine holds.
var errSuperseded = errors.New("superseded")

// progress updates the backfill record of revision rev of key
// (errSuperseded when that revision is no longer the definition).
func (e *Engine) progress(ctx context.Context, tn store.Tenant, key string, rev int64, fn func(*Backfill)) error {
	for attempt := 0; attempt < 20; attempt++ {
		var d Definition
		if err := tn.C(store.ComputedTraits).Get(ctx, key, &d); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errSuperseded
			}
			return err
		}
		if d.Rev != rev {
			return errSuperseded
		}
		me, now := e.owner(), time.Now()
		b := &d.Backfill
		if b.Status == Running && b.Owner != "" && b.Owner != me && now.Before(b.LeaseUntil) {
			return errSuperseded // another live engine runs it
		}
		fn(b)
		if b.Status == Running {
			b.Owner, b.LeaseUntil = me, now.Add(LeaseTTL).Truncate(time.Millisecond)
		} else {
			b.Owner, b.LeaseUntil = "", time.Time{}
		}
		prev := d.Version
		d.Version++
		err := tn.C(store.ComputedTraits).Replace(ctx, &d, prev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("backfill progress of %s: %w", key, store.ErrConflict)
}

// backfill recomputes revision rev of key on every live profile from its
// stored events, a page at a time, recording progress.
func (e *Engine) backfill(ctx context.Context, tn store.Tenant, key string, rev int64) error {
	if e.Settle > 0 {
		time.Sleep(e.Settle)
	}
	var d Definition
	if err := tn.C(store.ComputedTraits).Get(ctx, key, &d); err != nil || d.Rev != rev {
		return nil // deleted or redefined meanwhile: the newer one runs
	}
	def := d.Def()
	total, err := tn.C(store.Profiles).Count(ctx, store.Query{Index: store.ProfilesByCreated})
	if err != nil {
		return fmt.Errorf("count profiles: %w", err)
	}
	err = e.progress(ctx, tn, key, rev, func(b *Backfill) {
		*b = Backfill{Status: Running, Total: total, StartedAt: e.now().Truncate(time.Millisecond)}
	})
	if err != nil {
		return ignoreSuperseded(err)
	}
	var processed int64
	err = profile.EachLivePage(ctx, tn, func(page []*profile.Profile) error {
		ids := make([]string, 0, len(page))
		for _, p := range page {
			_, err := profile.UpdateAny(ctx, tn, p.ID, e.now(), func(q *profile.Profile) error {
				return recomputeFromEvents(ctx, tn, q, []*agg.Def{def})
			})
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				ids = append(ids, p.ID)
			}
			processed++
		}
		if e.AfterWrite != nil && len(ids) > 0 {
			e.AfterWrite(ctx, tn, ids, "computed", segment.Touched{Computed: []string{key}})
		}
		return e.progress(ctx, tn, key, rev, func(b *Backfill) {
			b.Processed = processed
			b.Total = max(b.Total, processed)
		})
	})
	if err != nil {
		return ignoreSuperseded(err)
	}
	return ignoreSuperseded(e.progress(ctx, tn, key, rev, func(b *Backfill) {
		b.Status, b.Processed, b.Total = Done, processed, processed
		b.FinishedAt = e.now().Truncate(time.Millisecond)
	}))
}

func ignoreSuperseded(err error) error {
	if errors.Is(err, errSuperseded) {
		return nil
	}
	return err
}
