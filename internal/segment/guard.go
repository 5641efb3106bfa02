package segment

import (
	"context"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// RuleGuard refuses a rule its caller may not save or preview: a rule's
// matches answer questions about the values it compares, so a caller
// without pii:read may not compare personal data (privacy.Service.RuleGuard
// provides it; segment must not import privacy, which erases through this
// engine). path names the rule in errors ("input.rule", "rule").
type RuleGuard interface {
	CheckRule(ctx context.Context, tn store.Tenant, r rule.Rule, path string) error
}

// guard checks rl with g; nil g or rl is allowed (tools, the seed and
// tests act for the workspace itself, and a static segment has no rule).
// It runs before anything else the call checks or reads, so a refused
// caller learns nothing of the segment or the rule's validity.
func guard(ctx context.Context, tn store.Tenant, g RuleGuard, rl *rule.Rule, path string) error {
	if g == nil || rl == nil {
		return nil
	}
	return g.CheckRule(ctx, tn, *rl, path)
}

// PreviewFor is Preview for a caller whose rule g checks first (errors
// under "rule"), evaluated at the engine's clock: segmentPreview.
func (e *Engine) PreviewFor(ctx context.Context, tn store.Tenant, rl rule.Rule, g RuleGuard) (int64, []*profile.Profile, error) {
	if err := guard(ctx, tn, g, &rl, "rule"); err != nil {
		return 0, nil, err
	}
	return e.Preview(ctx, tn, rl, e.now())
}
