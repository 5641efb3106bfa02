package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// The demo's CRM: one account per company trait (its domain
// <company>.example), each known person linked to their company's
// account with a role, deals for every account spread over every stage
// of the default pipeline, and a task (due soon, or overdue) for each
// open deal, and tickets (answered, resolved, and some past their
// targets), and lifecycle stages (the companies' people are leads; their
// deals make some opportunities or customers, as orders do), so the CRM
// screens show something on the first start. An account found already (a re-run of an interrupted load)
// gets nothing twice.

var roles = []string{"buyer", "champion", "decision maker", "user", "finance"}

// seedCRM writes the demo accounts and deals; it returns how many of each
// it created.
func seedCRM(ctx context.Context, svc *app.Services, clk *app.ManualClock, tn store.Tenant, people []*Person, opts Options) (accounts, deals, tickets int, err error) {
	r := rand.New(rand.NewPCG(opts.Seed, 0xc12))
	// Tasks draw from a stream of their own: adding them changed no
	// deal's figures.
	rt := rand.New(rand.NewPCG(opts.Seed, 0x7a5))
	byCompany := map[string][]string{}
	for _, p := range people {
		for _, op := range p.Ops {
			if op.Identify == nil {
				continue
			}
			if c, ok := op.Identify.Traits["company"].(string); ok && p.ProfileID != "" {
				byCompany[c] = append(byCompany[c], p.ProfileID)
			}
		}
	}
	pipeline, err := svc.Deals.Get(ctx, tn, "pipeline", deal.DefaultKey)
	if err != nil {
		return 0, 0, 0, err
	}
	for ci, company := range companies {
		domain := strings.ToLower(company) + ".example"
		a, err := svc.Accounts.Create(ctx, tn, account.CreateInput{Name: company, Domains: []string{domain},
			Identifiers: []account.Identifier{{Type: account.CRMAccountID, Value: fmt.Sprintf("acc-%03d", ci+1)}},
			Traits:      map[string]any{"industry": industries[ci%len(industries)], "employees": 50 * (1 + r.IntN(40))}})
		if apperr.CodeOf(err) == apperr.Conflict {
			continue // loaded before
		}
		if err != nil {
			return accounts, deals, tickets, fmt.Errorf("seed account %s: %w", company, err)
		}
		accounts++
		contacts := byCompany[company]
		// Known at a company: leads, before their deals move some on.
		if _, err := svc.Lifecycle.Advance(ctx, tn, contacts, profile.Lead, lifecycle.CauseManual, "demo"); err != nil {
			return accounts, deals, tickets, fmt.Errorf("seed lifecycle stages at %s: %w", company, err)
		}
		n, err := seedTickets(ctx, svc, clk, tn, rt, company, contacts, opts.Now)
		if err != nil {
			return accounts, deals, tickets, err
		}
		tickets += n
		for _, pid := range contacts {
			if _, err := svc.Accounts.Link(ctx, tn, pid, a.ID, roles[r.IntN(len(roles))]); err != nil && apperr.CodeOf(err) != apperr.NotFound {
				return accounts, deals, tickets, fmt.Errorf("seed link to %s: %w", company, err)
			}
		}
		// One deal per stage for the first accounts, fewer for the rest.
		for si, st := range pipeline.Stages {
			if (ci+si)%3 == 2 {
				continue
			}
			closeAt := opts.Now.Add(time.Duration(10+r.IntN(80)) * 24 * time.Hour)
			in := deal.CreateInput{Name: fmt.Sprintf("%s %s", company, dealNames[(ci+si)%len(dealNames)]), Stage: st.Key,
				Amount: float64(1000 * (5 + r.IntN(95))), Currency: "EUR", ExpectedCloseAt: &closeAt,
				OwnerID: owners[r.IntN(len(owners))], AccountID: a.ID}
			if len(contacts) > 0 {
				in.ContactIDs = []string{contacts[r.IntN(len(contacts))]}
			}
			d, err := svc.Deals.Create(ctx, tn, in)
			if err != nil && apperr.CodeOf(err) != apperr.NotFound {
				return accounts, deals, tickets, fmt.Errorf("seed deal of %s: %w", company, err)
			}
			deals++
			// A next step for the open ones: some overdue already.
			if err == nil && d.Status == deal.Open {
				due := opts.Now.Add(time.Duration(rt.IntN(14)-4) * 24 * time.Hour)
				t := task.CreateInput{Subject: "Follow up: " + d.Name, DueAt: &due, Assignee: d.OwnerID, AccountID: a.ID, DealID: d.ID}
				if len(d.ContactIDs) > 0 {
					t.ProfileID = d.ContactIDs[0]
				}
				if _, err := svc.Tasks.Create(ctx, tn, t); err != nil && apperr.CodeOf(err) != apperr.NotFound {
					return accounts, deals, tickets, fmt.Errorf("seed task of %s: %w", company, err)
				}
			}
		}
	}
	// Tickets past a target are flagged, as the sweeper would.
	clk.Set(opts.Now)
	if _, err := svc.Tickets.Sweep(ctx, tn, svc.Tickets.Now()); err != nil {
		return accounts, deals, tickets, fmt.Errorf("seed ticket breaches: %w", err)
	}
	return accounts, deals, tickets, nil
}

// seedTickets opens two tickets for a company's people, hours or days
// ago: some answered, some resolved, some left to miss their targets
// (the sweep after the load flags those).
func seedTickets(ctx context.Context, svc *app.Services, clk *app.ManualClock, tn store.Tenant, r *rand.Rand, company string, contacts []string, now time.Time) (int, error) {
	if len(contacts) == 0 {
		return 0, nil
	}
	defer clk.Set(now)
	n := 0
	for i := range 2 {
		// The first is fresh (within its targets), the second older.
		opened := now.Add(-time.Duration(1+r.IntN(45)) * time.Minute)
		if i == 1 {
			opened = now.Add(-time.Duration(1+r.IntN(96)) * time.Hour)
		}
		clk.Set(opened)
		subject := ticketSubjects[r.IntN(len(ticketSubjects))]
		t, err := svc.Tickets.Open(ctx, tn, ticket.OpenInput{ProfileID: contacts[r.IntN(len(contacts))], Subject: subject,
			Body: "Reported by " + company + ".", Priority: ticket.Priorities[r.IntN(len(ticket.Priorities))],
			Channel: ticket.Channels[r.IntN(4)], Assignee: agents[r.IntN(len(agents))]})
		if apperr.CodeOf(err) == apperr.NotFound {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("seed ticket of %s: %w", company, err)
		}
		n++
		if i == 0 || r.IntN(4) == 0 {
			continue // unanswered
		}
		clk.Set(opened.Add(time.Duration(5+r.IntN(300)) * time.Minute))
		if _, _, err := svc.Tickets.AddComment(ctx, tn, ticket.CommentInput{TicketID: t.ID, Body: "Thanks for reporting this, we are looking into it.", Author: t.Assignee}); err != nil {
			return n, fmt.Errorf("seed ticket comment of %s: %w", company, err)
		}
		if r.IntN(2) == 0 {
			clk.Set(opened.Add(time.Duration(1+r.IntN(30)) * time.Hour))
			st := ticket.StatusResolved
			if _, err := svc.Tickets.Update(ctx, tn, t.ID, ticket.UpdateInput{Status: &st, Actor: t.Assignee}); err != nil {
				return n, fmt.Errorf("seed ticket resolution of %s: %w", company, err)
			}
		}
	}
	return n, nil
}

var (
	industries     = []string{"manufacturing", "logistics", "software", "pharma", "media", "energy", "finance", "food"}
	dealNames      = []string{"annual licence", "expansion", "pilot", "renewal", "support plan", "training"}
	owners         = []string{"rep-ana", "rep-bruno", "rep-carla"}
	ticketSubjects = []string{"Cannot log in", "Invoice is wrong", "Export times out", "Question about the renewal", "Feature request: SSO", "Data missing in report"}
)
