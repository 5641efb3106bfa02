package seed

import (
	"context"
	"fmt"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// seedAudience defines the demo's computed traits and segments, so that
// the marketing side shows something on first start: each segment a
// different kind of rule (events in a window, a computed trait, consent,
// the lifecycle stage, an account, a ticket). They are built in the
// background, over the people already loaded. It returns how many of
// each it made (none on a second run).
func seedAudience(ctx context.Context, svc *app.Services, tn store.Tenant) (int, int, error) {
	last := func(days int) *rule.Window { return &rule.Window{Last: &rule.Last{Amount: days, Unit: rule.Days}} }
	defs := []traits.Input{
		{Key: "page_views_30d", Kind: "COUNT", Event: "page_viewed", Window: last(30), Description: "Pages viewed in the last 30 days"},
		{Key: "orders_90d", Kind: "COUNT", Event: "order_completed", Window: last(90), Description: "Orders in the last 90 days"},
		{Key: "lifetime_revenue", Kind: "SUM", Event: "order_completed", Property: "revenue", Description: "Revenue of every order"},
		{Key: "last_product_viewed", Kind: "LAST", Event: "product_viewed", Property: "name", Description: "The product viewed last"},
	}
	defined, made := 0, 0
	for _, d := range defs {
		// A load cut short runs again: what it defined stays.
		if _, err := svc.Traits.Get(ctx, tn, d.Key); err == nil {
			continue
		} else if apperr.CodeOf(err) != apperr.NotFound {
			return 0, 0, fmt.Errorf("seed computed trait %s: %w", d.Key, err)
		}
		if _, err := svc.Traits.Define(ctx, tn, d); err != nil {
			return 0, 0, fmt.Errorf("seed computed trait %s: %w", d.Key, err)
		}
		defined++
	}
	yes := true
	segs := []segment.CreateInput{
		{Name: "Active this week", Description: "Viewed a page in the last 7 days",
			Rule: &rule.Rule{Event: &rule.EventCond{Name: "page_viewed", Window: last(7)}}},
		{Name: "Repeat buyers", Description: "Two orders or more in 90 days",
			Rule: &rule.Rule{Computed: &rule.ComputedCond{Key: "orders_90d", Op: rule.GTE, Value: 2}}},
		{Name: "Newsletter, reachable", Description: "Marketing by email granted",
			Rule: &rule.Rule{Consent: &rule.ConsentCond{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED"}}},
		{Name: "Customers", Description: "Lifecycle stage customer",
			Rule: &rule.Rule{Lifecycle: &rule.LifecycleCond{In: []string{"CUSTOMER"}}}},
		{Name: "At accounts with open deals", Description: "Contacts of an account with an open deal",
			Rule: &rule.Rule{Account: &rule.AccountCond{Rollups: []rule.RollupCond{{Field: rule.RollupOpenDeals, Op: rule.GTE, Value: 1}}}}},
		{Name: "Waiting on support", Description: "An open ticket past its service level",
			Rule: &rule.Rule{Ticket: &rule.TicketCond{Open: &yes, Breached: &yes}}},
	}
	have := map[string]bool{}
	existing, _, _, err := svc.Segments.List(ctx, tn, 100, "")
	if err != nil {
		return 0, 0, fmt.Errorf("seed segments: %w", err)
	}
	for _, s := range existing {
		have[s.Name] = true
	}
	for _, in := range segs {
		if have[in.Name] {
			continue
		}
		_, err := svc.Segments.Create(ctx, tn, in)
		switch {
		case apperr.CodeOf(err) == apperr.Conflict:
			continue // made by a load cut short, past the first page
		case err != nil:
			return 0, 0, fmt.Errorf("seed segment %q: %w", in.Name, err)
		}
		made++
	}
	svc.Segments.WaitBuilds()
	return defined, made, nil
}
