package privacy

import (
	"context"
	"fmt"

	"github.com/halo-cdp/halo/internal/segment"
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

// RuleGuard is the PII check of segment rules (CheckRuleFor) for a caller:
// nil when mayReadPII (the caller holds pii:read: every rule is allowed),
// else a guard that reads the workspace's PII settings and its computed
// definitions from defs only when it checks a rule, so the segment engine
// checks and acts in one call (createSegment, updateSegment,
// segmentPreview).
func (s *Service) RuleGuard(mayReadPII bool, defs ComputedDefinitions) segment.RuleGuard {
	if mayReadPII {
		return nil
	}
	return ruleGuard{s: s, defs: defs}
}

type ruleGuard struct {
	s    *Service
	defs ComputedDefinitions
}

func (g ruleGuard) CheckRule(ctx context.Context, tn store.Tenant, r rule.Rule, path string) error {
	m, err := g.s.PIIMaskerFor(ctx, tn)
	if err != nil {
		return fmt.Errorf("pii settings for a segment rule: %w", err)
	}
	return CheckRuleFor(ctx, tn, m, g.defs, r, path)
}
