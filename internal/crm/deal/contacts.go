package deal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// contactRow says that a person is a contact of a deal: the index of a
// person's deals (a deal lists its contacts, which no index reads).
type contactRow struct {
	ID        string `bson:"_id"`
	DealID    string `bson:"dealId"`
	ProfileID string `bson:"profileId"`
}

// indexContacts makes sure each of profileIDs has a row for deal
// dealID, before the deal is written. Rows are never removed when a
// contact leaves a deal (removing one could race with a write adding the
// person back): Facts checks that the deal still lists the person, and an
// erasure deletes the person's rows.
func indexContacts(ctx context.Context, tn store.Tenant, dealID string, profileIDs []string) error {
	c := tn.C(DealContacts)
	for _, p := range profileIDs {
		if err := c.Insert(ctx, contactRow{ID: dealID + "/" + p, DealID: dealID, ProfileID: p}); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
			return fmt.Errorf("index contact %s of deal %s: %w", p, dealID, err)
		}
	}
	return nil
}

// indexed is the settings key marking a workspace whose deals all have
// their rows (deals stored before the index existed get theirs once).
const indexedKey = "crm.dealContactsIndexed"

// indexedWorkspaces caches the workspaces known indexed in this process.
var indexedWorkspaces sync.Map

// ensureIndexed gives every deal of the workspace its rows, once.
func ensureIndexed(ctx context.Context, tn store.Tenant) error {
	if _, ok := indexedWorkspaces.Load(tn.Workspace()); ok {
		return nil
	}
	var mark struct {
		ID  string `bson:"_id"`
		Key string `bson:"key"`
	}
	err := settings.Find(ctx, tn, indexedKey, &mark)
	if errors.Is(err, store.ErrNotFound) {
		err = tn.C(Deals).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
			var d Deal
			if err := bson.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("decode deal: %w", err)
			}
			return indexContacts(ctx, tn, d.ID, d.ContactIDs)
		})
		if err == nil {
			mark.ID, mark.Key = store.NewID(), indexedKey
			if err = settings.Insert(ctx, tn, mark); errors.Is(err, store.ErrDuplicateKey) {
				err = nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("index the deals' contacts: %w", err)
	}
	indexedWorkspaces.Store(tn.Workspace(), true)
	return nil
}

// decide re-decides the segments that read deals of d's contacts (those
// it had, was, and those it has). A failure is logged by the engine.
func (s *Service) decide(ctx context.Context, tn store.Tenant, d *Deal, was []string) {
	if s.segments == nil {
		return
	}
	var people []*profile.Profile
	seen := map[string]bool{}
	for _, id := range append(slices.Clone(d.ContactIDs), was...) {
		p, err := profile.Resolve(ctx, tn, id, s.redirect)
		if err != nil {
			if apperr.CodeOf(err) != apperr.NotFound {
				slog.ErrorContext(ctx, "deals: read a contact to decide their segments", "deal", d.ID, "err", err)
			}
			continue
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			people = append(people, p)
		}
	}
	if len(people) > 0 {
		s.segments.AfterProfiles(context.WithoutCancel(ctx), tn, people, "deal", rule.Touched{Deals: true})
	}
}

// fact is what segment rules read of deal d.
func fact(d *Deal) rule.DealFact {
	return rule.DealFact{Pipeline: d.Pipeline, Stage: d.Stage, Status: d.Status, Currency: d.Currency, Amount: d.AmountUnits()}
}

// Facts lists what segment rules read of the deals whose contacts include
// any of profileIDs (a person and the profiles merged into them), each
// deal once.
func Facts(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]rule.DealFact, error) {
	if err := ensureIndexed(ctx, tn); err != nil {
		return nil, err
	}
	var dealIDs []any
	for in := range store.InLists(profileIDs) {
		docs, err := tn.C(DealContacts).Find(ctx, store.Query{Index: DealContactsByProfile, In: in})
		if err != nil {
			return nil, fmt.Errorf("deals of %v: %w", profileIDs, err)
		}
		for _, doc := range docs {
			var r contactRow
			if err := doc.Decode(&r); err != nil {
				return nil, fmt.Errorf("decode deal contact: %w", err)
			}
			if !slices.Contains(dealIDs, any(r.DealID)) {
				dealIDs = append(dealIDs, r.DealID)
			}
		}
	}
	var out []rule.DealFact
	for len(dealIDs) > 0 {
		n := min(len(dealIDs), store.MaxIn)
		docs, err := tn.C(Deals).Find(ctx, store.Query{Index: store.ByID, In: dealIDs[:n]})
		if err != nil {
			return nil, fmt.Errorf("load deals: %w", err)
		}
		dealIDs = dealIDs[n:]
		for _, doc := range docs {
			var d Deal
			if err := doc.Decode(&d); err != nil {
				return nil, fmt.Errorf("decode deal: %w", err)
			}
			// A row a crash left names a deal that no longer lists them.
			if slices.ContainsFunc(d.ContactIDs, func(c string) bool { return slices.Contains(profileIDs, c) }) {
				out = append(out, fact(&d))
			}
		}
	}
	return out, nil
}

// AllFacts lists what segment rules read of every deal of the workspace,
// by contact id (one pass: a preview, an ad-hoc list).
func AllFacts(ctx context.Context, tn store.Tenant) (map[string][]rule.DealFact, error) {
	out := map[string][]rule.DealFact{}
	err := tn.C(Deals).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var d Deal
		if err := bson.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode deal: %w", err)
		}
		for _, c := range d.ContactIDs {
			out[c] = append(out[c], fact(&d))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read deals: %w", err)
	}
	return out, nil
}

// AccountCounts are an account's deals by status, as account rule nodes
// read them.
type AccountCounts struct{ Open, Won, Lost int64 }

func (c *AccountCounts) add(status string) {
	switch status {
	case Open:
		c.Open++
	case Won:
		c.Won++
	case Lost:
		c.Lost++
	}
}

// CountsOf counts account accountID's deals by status: three index
// counts.
func CountsOf(ctx context.Context, tn store.Tenant, accountID string) (AccountCounts, error) {
	var c AccountCounts
	for _, x := range []struct {
		status string
		n      *int64
	}{{Open, &c.Open}, {Won, &c.Won}, {Lost, &c.Lost}} {
		n, err := tn.C(Deals).Count(ctx, store.Query{Index: DealsByAccountStatus, Eq: []any{accountID, x.status}})
		if err != nil {
			return c, fmt.Errorf("count the deals of account %s: %w", accountID, err)
		}
		*x.n = n
	}
	return c, nil
}

// CountsByAccount counts every account's deals by status (one pass: a
// preview, an ad-hoc list).
func CountsByAccount(ctx context.Context, tn store.Tenant) (map[string]AccountCounts, error) {
	out := map[string]AccountCounts{}
	err := tn.C(Deals).Each(ctx, store.Query{Index: store.ByID, Limit: 1000}, func(raw bson.Raw) error {
		d, err := summaryFields(raw)
		if err != nil || d.AccountID == "" {
			return err
		}
		c := out[d.AccountID]
		c.add(d.Status)
		out[d.AccountID] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count deals by account: %w", err)
	}
	return out, nil
}
