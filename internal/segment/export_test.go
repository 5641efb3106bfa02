package segment

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/rollup"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// FromScratch evaluates every active dynamic segment over every profile,
// with feature counters recounted from the stored events (nothing read
// from maintained counters or memberships): segment id → members.
func (e *Engine) FromScratch(ctx context.Context, tn store.Tenant, now time.Time) (map[string]map[string]bool, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	segs, feats, byID := a.segs, a.features, a.byID
	out := map[string]map[string]bool{}
	for _, s := range segs {
		out[s.ID] = map[string]bool{}
	}
	allDeals, err := deal.AllFacts(ctx, tn)
	if err != nil {
		return nil, err
	}
	// The one-pass reading of every account, link, deal and ticket, not
	// the per-person one the engine makes.
	allAccounts, err := rollup.AllFacts(ctx, tn)
	if err != nil {
		return nil, err
	}
	err = profile.EachLive(ctx, tn, func(p *profile.Profile) error {
		counters, err := countEvents(ctx, tn, p.ID, feats)
		if err != nil {
			return err
		}
		p.Features = counters
		held, err := identity.TypesHeld(ctx, tn, p.ID)
		if err != nil {
			return err
		}
		tickets, err := ticket.Facts(ctx, tn, p.ID)
		if err != nil {
			return err
		}
		// From the deals themselves, not the index the engine reads.
		deals := allDeals[p.ID]
		for _, id := range p.MergedFrom {
			deals = append(deals, allDeals[id]...)
		}
		match, _ := evaluate(p, segs, byID, nil, facts{held: held, crm: crmFacts{tickets: tickets, deals: deals, accounts: allAccounts[p.ID]}}, evalEnv{}, now)
		for id, ok := range match {
			if ok {
				out[id][p.ID] = true
			}
		}
		return nil
	})
	return out, err
}
