package traits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

type workspaceDoc struct {
	ID string `bson:"_id"`
	WS string `bson:"ws"`
}

// register records, in the system workspace, that tn has definitions.
func register(ctx context.Context, tn store.Tenant) error {
	sys := tn.System()
	if err := sys.C(TraitWorkspaces).Put(ctx, workspaceDoc{ID: tn.Workspace(), WS: tn.Workspace()}); err != nil {
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
	docs, err := st.Tenant(store.SystemWorkspace).C(TraitWorkspaces).Find(ctx, store.Query{Index: TraitWorkspacesByWS})
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
			if d.Backfill.due() {
				e.startBackfill(tn, traitSubject(d.Key), d.Rev)
				n++
			}
		}
		if s, err := loadScoreDoc(ctx, tn); err != nil {
			return n, err
		} else if s != nil && s.Backfill.due() {
			e.startBackfill(tn, scoresSubject, s.Rev)
			n++
		}
	}
	return n, nil
}

// due tells whether a backfill should be started: never started, or its
// runner's lease lapsed.
func (b *Backfill) due() bool {
	return b.Status == Pending || (b.Status == Running && !time.Now().Before(b.LeaseUntil))
}

// subject is what a backfill recomputes on every profile: one computed
// trait's revision, or the scores' tally after their settings changed.
// Its progress is kept on its document (a Definition, or the score
// settings).
type subject struct {
	id string // the definition's key, or the settings document's key
	// doc returns an empty document of the subject's type to decode into.
	doc func() tracked
	// setting: the document is the workspace's settings document with
	// key id, else the computed trait definition of key id (either is
	// found by key; its _id is not id).
	setting bool
}

// load decodes the subject's current document into d.
func (s subject) load(ctx context.Context, tn store.Tenant, d tracked) error {
	if s.setting {
		return findSetting(ctx, tn, s.id, d)
	}
	return findDefinition(ctx, tn, s.id, d)
}

// save replaces the subject's document d, read at version prev.
func (s subject) save(ctx context.Context, tn store.Tenant, d tracked, prev int64) error {
	if s.setting {
		return settings.Replace(ctx, tn, d, prev)
	}
	return tn.C(ComputedTraits).Replace(ctx, d, prev)
}

// tracked is a document that carries a backfill.
type tracked interface {
	revision() int64
	backfillOf() *Backfill
	// bump increments the compare-and-swap version and returns the old.
	bump() int64
}

func (d *Definition) revision() int64       { return d.Rev }
func (d *Definition) backfillOf() *Backfill { return &d.Backfill }
func (d *Definition) bump() int64           { d.Version++; return d.Version - 1 }

func traitSubject(key string) subject {
	return subject{id: key, doc: func() tracked { return new(Definition) }}
}

var scoresSubject = subject{id: scoreSettingsKey, doc: func() tracked { return new(scoreDoc) }, setting: true}

func (e *Engine) startBackfill(tn store.Tenant, sub subject, rev int64) {
	e.runs.Add(1)
	go func() {
		defer e.runs.Done()
		ctx := context.Background()
		if err := e.backfill(ctx, tn, sub, rev); err != nil {
			slog.Error("computed traits: backfill", "workspace", tn.Workspace(), "subject", sub.id, "err", err)
			_ = e.progress(ctx, tn, sub, rev, func(b *Backfill) {
				b.Status, b.Error, b.FinishedAt = Failed, err.Error(), e.now().Truncate(time.Millisecond)
			})
		}
	}()
}

// errSuperseded ends a backfill whose definition changed or went away, or
// whose lease another engine holds.
var errSuperseded = errors.New("superseded")

// progress updates the backfill record of revision rev of sub
// (errSuperseded when that revision is no longer current).
func (e *Engine) progress(ctx context.Context, tn store.Tenant, sub subject, rev int64, fn func(*Backfill)) error {
	for attempt := 0; attempt < 20; attempt++ {
		d := sub.doc()
		if err := sub.load(ctx, tn, d); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errSuperseded
			}
			return err
		}
		if d.revision() != rev {
			return errSuperseded
		}
		me, now := e.owner(), time.Now()
		b := d.backfillOf()
		if b.Status == Running && b.Owner != "" && b.Owner != me && now.Before(b.LeaseUntil) {
			return errSuperseded // another live engine runs it
		}
		fn(b)
		if b.Status == Running {
			b.Owner, b.LeaseUntil = me, now.Add(LeaseTTL).Truncate(time.Millisecond)
		} else {
			b.Owner, b.LeaseUntil = "", time.Time{}
		}
		prev := d.bump()
		err := sub.save(ctx, tn, d, prev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("backfill progress of %s: %w", sub.id, store.ErrConflict)
}

// backfill recomputes revision rev of sub on every live profile from its
// stored events, a page at a time, recording progress.
func (e *Engine) backfill(ctx context.Context, tn store.Tenant, sub subject, rev int64) error {
	if e.settle > 0 {
		time.Sleep(e.settle)
	}
	d := sub.doc()
	if err := sub.load(ctx, tn, d); err != nil || d.revision() != rev {
		return nil // deleted or redefined meanwhile: the newer one runs
	}
	var (
		defs    []*agg.Def
		tally   *orderConfig
		touched rule.Touched
	)
	switch d := d.(type) {
	case *Definition:
		defs, touched = []*agg.Def{d.Def()}, rule.Touched{Computed: []string{d.Key}}
	case *scoreDoc:
		tally, touched = d.orders(), rule.Touched{Computed: scores.Keys}
	}
	total, err := profile.Count(ctx, tn)
	if err != nil {
		return err
	}
	// A resumed backfill goes on from its last page, with its bound.
	var from Backfill
	err = e.progress(ctx, tn, sub, rev, func(b *Backfill) {
		if b.Status == Running && b.After != "" {
			from = *b
			return
		}
		*b = Backfill{Status: Running, Total: total, StartedAt: e.now().Truncate(time.Millisecond)}
		from = *b
	})
	if err != nil {
		return ignoreSuperseded(err)
	}
	// Profiles created after the backfill started were created by
	// engines that knew the definition (it starts a cache lifetime after
	// the save): ingest counted every event of theirs from empty, so the
	// pass ends where they begin, instead of chasing a growing workspace.
	processed := from.Processed
	errBound := errors.New("bound reached")
	err = profile.EachLivePageAfter(ctx, tn, from.After, func(page []*profile.Profile, cursor string) error {
		ids := make([]string, 0, len(page))
		var stop error
		for _, p := range page {
			if p.CreatedAt.After(from.StartedAt) {
				stop = errBound // after this page's earlier profiles are reported
				break
			}
			_, err := profile.UpdateAnyFrom(ctx, tn, p, e.now(), func(q *profile.Profile) error {
				return recomputeFromEvents(ctx, tn, q, defs, tally, e.now())
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
		if e.segments != nil && len(ids) > 0 {
			e.segments.AfterWrite(ctx, tn, ids, "computed", touched)
		}
		if err := e.progress(ctx, tn, sub, rev, func(b *Backfill) {
			b.Processed, b.After = processed, cursor
			b.Total = max(b.Total, processed)
		}); err != nil {
			return err
		}
		return stop
	})
	if err != nil && !errors.Is(err, errBound) {
		return ignoreSuperseded(err)
	}
	return ignoreSuperseded(e.progress(ctx, tn, sub, rev, func(b *Backfill) {
		b.Status, b.Processed, b.Total, b.After = Done, processed, processed, ""
		b.FinishedAt = e.now().Truncate(time.Millisecond)
	}))
}

func ignoreSuperseded(err error) error {
	if errors.Is(err, errSuperseded) {
		return nil
	}
	return err
}
