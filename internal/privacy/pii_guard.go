package privacy

import (
	"context"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

// ComputedDefinitions resolves a workspace's computed trait definitions
// (traits.Engine).
type ComputedDefinitions interface {
	Definitions(ctx context.Context, tn store.Tenant) (*agg.Set, error)
}

// ComputedComparer reports whether a saved, active segment rule compares
// a computed trait key (segment.Engine).
type ComputedComparer interface {
	ComparesComputed(ctx context.Context, tn store.Tenant, key string) (bool, error)
}

// CheckRuleFor is CheckRule for a caller seeing personal data through m
// (nil: the caller holds pii:read, and every rule is allowed), with the
// workspace's computed definitions read from defs (only when m is not
// nil): segmentPreview, createSegment, updateSegment.
func CheckRuleFor(ctx context.Context, tn store.Tenant, m *PIIMasker, defs ComputedDefinitions, r rule.Rule, path string) error {
	if m == nil {
		return nil
	}
	set, err := defs.Definitions(ctx, tn)
	if err != nil {
		return err
	}
	return m.CheckRule(r, path, set.Get)
}

// CheckDefineFor is CheckDefine for a caller seeing personal data through
// m (nil: the caller holds pii:read, and every definition is allowed):
// segs is asked whether a saved, active segment compares d's key only
// when d is derived from personal data (defineComputedTrait).
func CheckDefineFor(ctx context.Context, tn store.Tenant, m *PIIMasker, segs ComputedComparer, d *agg.Def) error {
	if m == nil || !m.ComputedFromPII(d) {
		return nil
	}
	compared, err := segs.ComparesComputed(ctx, tn, d.Key)
	if err != nil {
		return err
	}
	return m.CheckDefine(d, compared)
}
