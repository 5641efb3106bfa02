package segment

import (
	"context"
	"fmt"
	"slices"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Targets are the profiles a static-segment call names: by id, and by
// identifiers as the caller gave them (normalised with the workspace's
// identifier types before they are looked up).
type Targets struct {
	ProfileIDs  []string
	Identifiers []identity.Identifier
}

// AddToStatic adds the profiles t names to a static segment (at most
// MaxStaticBatch ids and identifiers together). An identifier that
// matches no profile refuses the whole call (NOT_FOUND, nothing added),
// so a typo never silently shrinks the audience.
func (e *Engine) AddToStatic(ctx context.Context, tn store.Tenant, segmentID string, t Targets) (*Segment, error) {
	ids, err := t.profileIDs(ctx, tn, true)
	if err != nil {
		return nil, err
	}
	return e.AddStatic(ctx, tn, segmentID, ids)
}

// RemoveFromStatic removes the profiles t names from a static segment.
// An identifier that matches no profile is ignored: it names no one who
// could be a member.
func (e *Engine) RemoveFromStatic(ctx context.Context, tn store.Tenant, segmentID string, t Targets) (*Segment, error) {
	ids, err := t.profileIDs(ctx, tn, false)
	if err != nil {
		return nil, err
	}
	return e.RemoveStatic(ctx, tn, segmentID, ids)
}

// profileIDs turns t into profile ids: its ids, then the profiles its
// identifiers match. strict refuses identifiers that match none. The
// counts are checked before any look-up, so an oversized call costs
// nothing.
func (t Targets) profileIDs(ctx context.Context, tn store.Tenant, strict bool) ([]string, error) {
	if n := len(t.ProfileIDs) + len(t.Identifiers); n == 0 {
		return nil, apperr.Invalid("profileIds", "give profileIds and/or identifiers")
	} else if n > MaxStaticBatch {
		return nil, apperr.Invalid("profileIds", "at most %d profiles per call, got %d", MaxStaticBatch, n)
	}
	if len(t.Identifiers) == 0 {
		return t.ProfileIDs, nil
	}
	pids, err := identity.FindEach(ctx, tn, t.Identifiers, func(i int) string { return fmt.Sprintf("identifiers[%d]", i) })
	if err != nil {
		return nil, fmt.Errorf("find static segment targets: %w", err)
	}
	out := slices.Clone(t.ProfileIDs)
	missing := 0
	for _, pid := range pids {
		if pid == "" {
			missing++
			continue
		}
		out = append(out, pid)
	}
	if strict && missing > 0 {
		return nil, apperr.New(apperr.NotFound, "%d of %d identifiers match no profile; nothing was added", missing, len(t.Identifiers))
	}
	return out, nil
}
