package segment

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

type workspaceDoc struct {
	ID string `bson:"_id"`
	WS string `bson:"ws"`
}

// register records, in the system workspace, that tn has segments, so
// the sweeper of every instance visits it.
func (e *Engine) register(ctx context.Context, tn store.Tenant) error {
	sys := tn.System()
	if err := sys.C(SegmentWorkspaces).Put(ctx, workspaceDoc{ID: "segments:" + tn.Workspace(), WS: tn.Workspace()}); err != nil {
		return fmt.Errorf("register segment workspace: %w", err)
	}
	return nil
}

// Workspaces lists the workspaces that have (or had) segments.
func Workspaces(ctx context.Context, st *store.Store) ([]string, error) {
	docs, err := st.Tenant(store.SystemWorkspace).C(SegmentWorkspaces).Find(ctx, store.Query{Index: WorkspacesByID})
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
		due, err := profile.Due(ctx, tn, now, 200)
		if err != nil {
			return n, err
		}
		progress := false
		for _, p := range due {
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			progress = true
			n++
			// The document read is the profile: plan need not load it again.
			if err := e.reevaluateAll(ctx, tn, []string{p.ID}, []*profile.Profile{p}, "time", rule.Touched{All: true}); err != nil {
				return n, err
			}
		}
		if len(due) < 200 || !progress {
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
