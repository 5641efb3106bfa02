package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/rollup"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Cursor lists of accounts.
const (
	accountsList = "accounts"
	contactsList = "contacts"
)

func toAccount(a *account.Account) *model.Account {
	domains := a.Domains
	if domains == nil {
		domains = []string{}
	}
	traits := a.Traits
	if traits == nil {
		traits = map[string]any{}
	}
	ids := make([]model.AccountIdentifier, len(a.Identifiers))
	for i, id := range a.Identifiers {
		ids[i] = model.AccountIdentifier{Type: id.Type, Value: id.Value}
	}
	return &model.Account{ID: a.ID, Name: a.Name, Domains: domains, Identifiers: ids, Traits: traits, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, Version: int(a.Version)}
}

func toAccountLink(l *account.LinkDoc) model.AccountLink {
	return model.AccountLink{AccountID: l.AccountID, Role: optional(l.Role), Source: model.AccountLinkSource(l.Source), LinkedAt: l.LinkedAt}
}

func toAccountIdentifiers(in []model.AccountIdentifierInput) []account.Identifier {
	out := make([]account.Identifier, len(in))
	for i, id := range in {
		out[i] = account.Identifier{Type: id.Type, Value: id.Value}
	}
	return out
}

// accountByArgs is account(id | identifier): nil when nothing matches.
func (r *Resolver) accountByArgs(ctx context.Context, tn store.Tenant, id *string, identifier *model.AccountIdentifierInput) (*model.Account, error) {
	if (id == nil) == (identifier == nil) {
		return nil, apperr.Invalid("", "give exactly one of id or identifier")
	}
	var (
		a   *account.Account
		err error
	)
	if id != nil {
		a, err = r.accounts.Live(ctx, tn, *id) // a merged id answers with its survivor
	} else {
		a, err = r.accounts.ByIdentifier(ctx, tn, "identifier", account.Identifier{Type: identifier.Type, Value: identifier.Value})
	}
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return toAccount(a), nil
}

// contacts is Account.contacts: a page of the account's links, each with
// its person (a link whose person is gone meanwhile is left out).
func (r *Resolver) contacts(ctx context.Context, accountID string, first *int, after *string) (*model.AccountContactConnection, error) {
	tn, n, key, err := r.pageRequest(ctx, contactsList, first, after)
	if err != nil {
		return nil, err
	}
	page, err := r.accounts.Contacts(ctx, tn, accountID, n, key)
	if err != nil {
		return nil, err
	}
	conn := &model.AccountContactConnection{Edges: []model.AccountContactEdge{}, Nodes: []model.Profile{}}
	conn.Count = func(ctx context.Context) (int64, error) { return r.accounts.CountContacts(ctx, tn, accountID) }
	var cursors []string
	for i, l := range page.Links {
		doc, err := r.profileDoc(ctx, tn, l.ProfileID)
		// A person erased, or merged away (their link moves with the
		// merge, and is shown there), since the link was read.
		if apperr.CodeOf(err) == apperr.NotFound || (err == nil && doc.ID != l.ProfileID) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p := toProfile(doc)
		c := wrapCursor(contactsList, page.Cursors[i])
		cursors = append(cursors, c)
		conn.Edges = append(conn.Edges, model.AccountContactEdge{Cursor: c, Role: optional(l.Role), Source: model.AccountLinkSource(l.Source), LinkedAt: l.LinkedAt, Node: p})
		conn.Nodes = append(conn.Nodes, *p)
	}
	conn.PageInfo = pageInfo(cursors, page.HasNext, key != "")
	if n := len(page.Cursors); n > 0 {
		// The page's last link, shown or not: paging goes on past
		// links left out.
		end := wrapCursor(contactsList, page.Cursors[n-1])
		conn.PageInfo.EndCursor = &end
	}
	return conn, nil
}

func toRollups(r *rollup.Rollups) *model.AccountRollups {
	money := func(ms []rollup.Money) []model.Money {
		out := make([]model.Money, len(ms))
		for i, m := range ms {
			out[i] = model.Money{Currency: m.Currency, Amount: m.Amount}
		}
		return out
	}
	out := &model.AccountRollups{ContactCount: int(r.ContactCount), OpenDeals: int(r.OpenDeals), WonDeals: int(r.WonDeals), LostDeals: int(r.LostDeals),
		OpenDealValue: money(r.OpenValue), WonRevenue: money(r.WonRevenue), LastActivityAt: optionalTime(r.LastActivityAt),
		AverageEngagement: r.AverageEngagement, MaxEngagement: r.MaxEngagement, OpenTickets: int(r.OpenTickets), BreachedTickets: int(r.BreachedTickets),
		Health: &model.AccountHealth{Score: r.Health.Score, Grade: model.AccountHealthGrade(r.Health.Grade), Explanation: r.Health.Explanation(),
			Reasons: make([]model.AccountHealthReason, len(r.Health.Reasons))}}
	for i, x := range r.Health.Reasons {
		out.Health.Reasons[i] = model.AccountHealthReason{Points: x.Points, Text: x.Text}
	}
	return out
}

// toAccountQuery converts the accounts list's arguments (checked by the
// service: its errors name them).
func toAccountQuery(search *string, filter *model.AccountFilterInput, orderBy *model.AccountOrderInput) account.ListQuery {
	q := account.ListQuery{Search: deref(search), Order: account.ByName}
	if orderBy != nil {
		q.Order = string(orderBy.Field)
		q.Desc = orderBy.Direction != nil && *orderBy.Direction == model.SortDirectionDesc
	}
	if filter != nil {
		q.Domain = deref(filter.Domain)
		for i := range filter.Traits {
			q.Traits = append(q.Traits, *toCond(&filter.Traits[i]))
		}
		if filter.CreatedFrom != nil {
			q.CreatedFrom = filter.CreatedFrom.UTC()
		}
		if filter.CreatedTo != nil {
			q.CreatedTo = filter.CreatedTo.UTC()
		}
	}
	return q
}
