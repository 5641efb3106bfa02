package rollup

import (
	"context"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Facts lists what account rule nodes read of the accounts profileID is
// a contact of: their traits and counted roll-ups, read now.
func Facts(ctx context.Context, tn store.Tenant, profileID string) ([]rule.AccountFact, error) {
	linked, err := account.LinkedOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]rule.AccountFact, 0, len(linked))
	for _, l := range linked {
		d, err := deal.CountsOf(ctx, tn, l.ID)
		if err != nil {
			return nil, err
		}
		t, err := ticket.CountsOf(ctx, tn, l.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, fact(l, d, t))
	}
	return out, nil
}

// AllFacts is Facts for every person of the workspace, by person (one
// pass over accounts, links, deals and tickets: a preview, an ad-hoc
// list).
func AllFacts(ctx context.Context, tn store.Tenant) (map[string][]rule.AccountFact, error) {
	linked, err := account.AllLinked(ctx, tn)
	if err != nil || len(linked) == 0 {
		return nil, err
	}
	deals, err := deal.CountsByAccount(ctx, tn)
	if err != nil {
		return nil, err
	}
	tickets, err := ticket.CountsByAccount(ctx, tn)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]rule.AccountFact, len(linked))
	for p, ls := range linked {
		for _, l := range ls {
			out[p] = append(out[p], fact(l, deals[l.ID], tickets[l.ID]))
		}
	}
	return out, nil
}

func fact(l account.Linked, d deal.AccountCounts, t ticket.AccountCounts) rule.AccountFact {
	return rule.AccountFact{Traits: l.Traits, Rollups: map[rule.RollupField]int64{
		rule.RollupContacts:        l.Contacts,
		rule.RollupOpenDeals:       d.Open,
		rule.RollupWonDeals:        d.Won,
		rule.RollupLostDeals:       d.Lost,
		rule.RollupOpenTickets:     t.Open,
		rule.RollupBreachedTickets: t.Breached,
	}}
}
