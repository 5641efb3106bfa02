package membership

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/profile"
	"github.com/halo-cdp/halo/segment"
	"github.com/halo-cdp/halo/store"
)

type workspaceDoc struct {
	ID string `bson:"_id"`
	WS string `bson:"ws"`
}

// register records, in the system workspace, that tn has segments, so
// the sweeper of every instance visits it.
func (e *Engine) register(ctx context.Context, tn store.Tenant) error {
	sys := tn.Store().Tenant(store.SystemWorkspace)
	if err := sys.C(store.SegmentWorkspaces).Put(ctx, workspaceDoc{ID: "segments:" + tn.Workspace(), WS: tn.Workspace()}); err != nil {
		return fmt.Errorf("register segment workspace: %w", err)
	}
	return nil
}

// Workspaces lists the workspaces that have (or had) segments.
func Workspaces(ctx context.Context, st *store.Store) ([]string, error) {
	docs, err := st.Tenant(store.SystemWorkspace).C(store.SegmentWorkspaces).Find(ctx, store.Query{Index: store.WorkspacesByID})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		var w workspaceDoc
		if err := d.Decode(&w); err != nil {
			return nil, err
		}
		out = append(out, w.WS)
	}
	return out, nil
}

// Sweep re-evaluates the profiles whose nextEvalAt has come (cause
// "time"). It returns how many it visited.
func (e *Engine) Sweep(ctx context.Context, tn store.Tenant, now time.Time) (int, error) {
	n := 0
	seen := map[string]bool{}
	for round := 0; round < 1000; round++ {
		docs, err := tn.C(store.Profiles).Find(ctx, store.Query{Index: store.ProfilesByNextEval, Range: &store.Bound{Lte: store.DateTime(now)}, Limit: 200})
		if err != nil {
			return n, fmt.Errorf("due profiles: %w", err)
		}
		progress := false
		for _, d := range docs {
			id, _ := d.Raw.Lookup("_id").StringValueOK()
			if seen[id] {
				continue
			}
			seen[id] = true
			progress = true
			n++
			if err := e.Reevaluate(ctx, tn, id, "time"); err != nil {
				return n, err
			}
		}
		if len(docs) < 200 || !progress {
			return n, nil
		}
	}
	return n, nil
}

// RunSweeper sweeps every registered workspace every interval until ctx
// ends. Each instance runs one; two instances sweeping the same profile
// record each transition once (memberships are unique per pair).
func (e *Engine) RunSweeper(ctx context.Context, st *store.Store, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wss, err := Workspaces(ctx, st)
		if err != nil {
			if ctx.Err() == nil {
				slog.Error("segments sweeper: workspaces", "err", err)
			}
			continue
		}
		for _, ws := range wss {
			if _, err := e.Sweep(ctx, st.Tenant(ws), e.now()); err != nil && ctx.Err() == nil {
				slog.Error("segments sweeper", "workspace", ws, "err", err)
			}
		}
	}
}

// PreviewSample is how many profiles Preview returns.
const PreviewSample = 20

// Preview counts the profiles matching rule at now, without saving, and
// returns the first PreviewSample of them in creation order (oldest first). Features the workspace already maintains are read
// from the profiles; others are counted from stored events in one pass.
func (e *Engine) Preview(ctx context.Context, tn store.Tenant, rule segment.Rule, now time.Time) (int64, []*profile.Profile, error) {
	if err := segment.Validate(rule, e.resolver(ctx, tn)); err != nil {
		return 0, nil, err
	}
	segs, maintained, err := e.active(ctx, tn)
	if err != nil {
		return 0, nil, err
	}
	missing := newFeatures(segment.Features(rule), maintained)
	var counters map[string]map[string]segment.Counter
	if len(missing) > 0 {
		if counters, err = scanEvents(ctx, tn, missing); err != nil {
			return 0, nil, err
		}
	}
	byID := map[string]*Segment{}
	for _, s := range segs {
		byID[s.ID] = s
	}
	var statics map[string]map[string]bool // segment → members, loaded when referenced
	var (
		count  int64
		sample []*profile.Profile
	)
	err = eachProfile(ctx, tn, func(p *profile.Profile) error {
		if len(missing) > 0 {
			own := counters[p.ID]
			for _, f := range missing {
				if c, ok := own[f.Key]; ok {
					p.Features[f.Key] = c
				}
			}
		}
		in := input(p, byID, nil)
		in.Segment = func(id string) (segment.SegmentRef, bool) {
			s, ok := byID[id]
			if !ok {
				return segment.SegmentRef{}, false
			}
			if s.Kind != Static {
				return segment.SegmentRef{Rule: &s.Rule}, true
			}
			if statics == nil {
				statics = map[string]map[string]bool{}
			}
			if statics[id] == nil {
				statics[id] = map[string]bool{}
				docs, err := tn.C(store.Memberships).Find(ctx, store.Query{Index: store.MembersBySegment, Eq: []any{id}})
				if err == nil {
					for _, d := range docs {
						pid, _ := d.Raw.Lookup("profileId").StringValueOK()
						statics[id][pid] = true
					}
				}
			}
			return segment.SegmentRef{Member: statics[id][p.ID]}, true
		}
		if ok, _ := segment.Evaluate(rule, in, now); ok {
			count++
			if len(sample) < PreviewSample {
				sample = append(sample, p)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return count, sample, nil
}
