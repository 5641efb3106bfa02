// Package rollup figures an account's roll-ups from its people, deals and
// tickets: contact count, open deal value, won revenue, last activity,
// contact engagement, open and breached tickets, and a health score with
// its reasons in plain English. They are read from the objects when asked
// for, so they are always current.
package rollup

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// MaxContacts bounds the contacts whose activity and engagement are read
// (the oldest links first); ContactCount counts them all.
const MaxContacts = 5000

// Money is a sum in one currency.
type Money struct {
	Currency string
	Amount   float64
}

// Rollups are an account's figures at a time.
type Rollups struct {
	ContactCount int64
	OpenDeals    int64
	WonDeals     int64
	LostDeals    int64
	// OpenValue and WonRevenue are by currency, most first: amounts in
	// different currencies are never added.
	OpenValue  []Money
	WonRevenue []Money
	// LastActivityAt is the latest lastSeenAt of its contacts (zero:
	// none).
	LastActivityAt time.Time
	// AverageEngagement and MaxEngagement are the contacts' engagement
	// scores (0 to 100; nil without contacts).
	AverageEngagement, MaxEngagement *float64
	OpenTickets, BreachedTickets     int64
	Health                           Health
}

// Health is a score from 0 to 100, a grade and the reasons, each with
// the points it gave or took.
type Health struct {
	Score   int
	Grade   string
	Reasons []Reason
}

// Reason is one part of a health score.
type Reason struct {
	Points int
	Text   string
}

// Grades of Health.
const (
	Healthy        = "HEALTHY"
	NeedsAttention = "NEEDS_ATTENTION"
	AtRisk         = "AT_RISK"
)

// Of figures account id's roll-ups at now (NOT_FOUND for an account the
// workspace does not have).
func Of(ctx context.Context, tn store.Tenant, accounts *account.Service, deals *deal.Service, tickets *ticket.Service, id string, now time.Time) (*Rollups, error) {
	if err := account.Exists(ctx, tn, id); err != nil {
		return nil, err
	}
	var r Rollups
	var err error
	if r.ContactCount, err = accounts.CountContacts(ctx, tn, id); err != nil {
		return nil, err
	}
	people, err := accounts.ContactIDs(ctx, tn, id, MaxContacts)
	if err != nil {
		return nil, err
	}
	var sum, top float64
	n := 0
	err = profile.EachOf(ctx, tn, people, profile.Fields{Tally: true}, func(p *profile.Profile) error {
		if p.MergingInto != "" {
			return nil
		}
		if p.LastSeenAt.After(r.LastActivityAt) {
			r.LastActivityAt = p.LastSeenAt
		}
		e, _ := scores.Value(scores.KeyEngagement, p.Tally.Input(now, p.FirstSeenAt, p.LastSeenAt, nil)).(float64)
		sum, top, n = sum+e, math.Max(top, e), n+1
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		avg := sum / float64(n)
		r.AverageEngagement, r.MaxEngagement = &avg, &top
	}
	if err := r.addDeals(ctx, tn, deals, id); err != nil {
		return nil, err
	}
	if err := r.addTickets(ctx, tn, tickets, id); err != nil {
		return nil, err
	}
	r.Health = r.health(now)
	return &r, nil
}

func (r *Rollups) addDeals(ctx context.Context, tn store.Tenant, deals *deal.Service, id string) error {
	open, won := map[string]float64{}, map[string]float64{}
	after := ""
	for {
		page, err := deals.List(ctx, tn, deal.Filter{Account: id}, 200, after)
		if err != nil {
			return err
		}
		for _, d := range page.Deals {
			switch d.Status {
			case deal.Open:
				r.OpenDeals++
				open[d.Currency] += d.AmountUnits()
			case deal.Won:
				r.WonDeals++
				won[d.Currency] += d.AmountUnits()
			case deal.Lost:
				r.LostDeals++
			}
		}
		if !page.HasNext {
			break
		}
		after = page.Cursors[len(page.Cursors)-1]
	}
	r.OpenValue, r.WonRevenue = sums(open), sums(won)
	return nil
}

// sums lists by currency, most first (then by code).
func sums(m map[string]float64) []Money {
	out := []Money{}
	for c, a := range m {
		out = append(out, Money{Currency: c, Amount: a})
	}
	slices.SortFunc(out, func(a, b Money) int {
		if a.Amount != b.Amount {
			if a.Amount > b.Amount {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Currency, b.Currency)
	})
	return out
}

func (r *Rollups) addTickets(ctx context.Context, tn store.Tenant, tickets *ticket.Service, id string) error {
	after := ""
	for {
		page, err := tickets.List(ctx, tn, ticket.Filter{Account: id}, 200, after)
		if err != nil {
			return err
		}
		for _, t := range page.Tickets {
			if t.Status == ticket.StatusResolved || t.Status == ticket.StatusClosed {
				continue
			}
			r.OpenTickets++
			if t.Breached {
				r.BreachedTickets++
			}
		}
		if !page.HasNext {
			return nil
		}
		after = page.Cursors[len(page.Cursors)-1]
	}
}

// health scores the account from 50, point by point; each step is a
// reason, so the score explains itself.
func (r *Rollups) health(now time.Time) Health {
	h := Health{Score: 50, Reasons: []Reason{{50, "every account starts at 50"}}}
	add := func(points int, format string, args ...any) {
		h.Score += points
		h.Reasons = append(h.Reasons, Reason{Points: points, Text: fmt.Sprintf(format, args...)})
	}
	switch {
	case r.ContactCount == 0:
		add(-10, "no contact is linked to the account")
	case r.LastActivityAt.IsZero():
	default:
		days := int(now.Sub(r.LastActivityAt).Hours() / 24)
		switch {
		case days <= 7:
			add(15, "a contact was active %s", ago(days))
		case days <= 30:
			add(5, "a contact was active %s", ago(days))
		case days > 90:
			add(-20, "no contact has been active for %d days", days)
		default:
			add(0, "the last contact activity was %d days ago", days)
		}
	}
	if r.AverageEngagement != nil {
		// Engagement 0 to 100 gives 0 to 20 points, 50 gives 10.
		p := int(math.Round(*r.AverageEngagement / 5))
		add(p, "the contacts' average engagement is %.0f of 100", *r.AverageEngagement)
	}
	if r.WonDeals > 0 {
		add(10, "%d won %s", r.WonDeals, plural(r.WonDeals, "deal", "deals"))
	}
	if r.OpenDeals > 0 {
		add(5, "%d open %s", r.OpenDeals, plural(r.OpenDeals, "deal", "deals"))
	}
	if r.BreachedTickets > 0 {
		p := -10 * int(min(r.BreachedTickets, 3))
		add(p, "%d open %s past a service-level target", r.BreachedTickets, plural(r.BreachedTickets, "ticket", "tickets"))
	}
	if calm := r.OpenTickets - r.BreachedTickets; calm > 3 {
		add(-5, "%d open tickets", r.OpenTickets)
	}
	// Clamped with a reason of its own, so the reasons still add up.
	if h.Score < 0 {
		add(-h.Score, "a score is never below 0")
	} else if h.Score > 100 {
		add(100-h.Score, "a score is never above 100")
	}
	switch {
	case h.Score >= 70:
		h.Grade = Healthy
	case h.Score >= 40:
		h.Grade = NeedsAttention
	default:
		h.Grade = AtRisk
	}
	return h
}

// Explanation is the score and its reasons in one sentence: "72,
// healthy: every account starts at 50; +15: a contact was active today;
// ...".
func (h Health) Explanation() string {
	parts := make([]string, 0, len(h.Reasons))
	for i, r := range h.Reasons {
		if i == 0 {
			parts = append(parts, r.Text)
			continue
		}
		parts = append(parts, fmt.Sprintf("%+d: %s", r.Points, r.Text))
	}
	return fmt.Sprintf("%d, %s: %s.", h.Score, strings.ToLower(strings.ReplaceAll(h.Grade, "_", " ")), strings.Join(parts, "; "))
}

func ago(days int) string {
	switch days {
	case 0:
		return "today"
	case 1:
		return "yesterday"
	}
	return fmt.Sprintf("%d days ago", days)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
