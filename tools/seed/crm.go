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
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// The demo's CRM: one account per company trait (its domain
// <company>.example), each known person linked to their company's
// account with a role, deals for every account spread over every stage
// of the default pipeline, and a task (due soon, or overdue) for each
// open deal, so the CRM screens show something on the first start. An account found already (a re-run of an interrupted load)
// gets nothing twice.

var roles = []string{"buyer", "champion", "decision maker", "user", "finance"}

// seedCRM writes the demo accounts and deals; it returns how many of each
// it created.
func seedCRM(ctx context.Context, svc *app.Services, tn store.Tenant, people []*Person, opts Options) (accounts, deals int, err error) {
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
		return 0, 0, err
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
			return accounts, deals, fmt.Errorf("seed account %s: %w", company, err)
		}
		accounts++
		contacts := byCompany[company]
		for _, pid := range contacts {
			if _, err := svc.Accounts.Link(ctx, tn, pid, a.ID, roles[r.IntN(len(roles))]); err != nil && apperr.CodeOf(err) != apperr.NotFound {
				return accounts, deals, fmt.Errorf("seed link to %s: %w", company, err)
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
				return accounts, deals, fmt.Errorf("seed deal of %s: %w", company, err)
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
					return accounts, deals, fmt.Errorf("seed task of %s: %w", company, err)
				}
			}
		}
	}
	return accounts, deals, nil
}

var (
	industries = []string{"manufacturing", "logistics", "software", "pharma", "media", "energy", "finance", "food"}
	dealNames  = []string{"annual licence", "expansion", "pilot", "renewal", "support plan", "training"}
	owners     = []string{"rep-ana", "rep-bruno", "rep-carla"}
)
