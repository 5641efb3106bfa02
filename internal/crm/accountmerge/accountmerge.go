// Package accountmerge merges duplicate accounts: the account's own side
// first (identifiers, traits, people; the source goes), then every object
// of the other CRM domains that names the source (deals, tickets, tasks),
// then the merge record is finished. A repeat after a crash carries on.
package accountmerge

import (
	"context"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/accountfeed"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/store"
)

// Merge merges account sourceID into targetID and returns the target as
// it is after (errors name mergeAccounts' arguments).
func Merge(ctx context.Context, tn store.Tenant, accounts *account.Service, sourceID, targetID, reason, actor string) (*account.Account, error) {
	if _, err := accounts.Absorb(ctx, tn, sourceID, targetID, reason, actor); err != nil {
		return nil, err
	}
	// The source is gone: nothing new can name it from here on.
	for _, move := range []func(context.Context, store.Tenant, string, string) error{deal.MoveAccount, ticket.MoveAccount, task.MoveAccount, accountfeed.MoveAccount} {
		if err := move(ctx, tn, sourceID, targetID); err != nil {
			return nil, err
		}
	}
	if err := accounts.Finish(ctx, tn, sourceID); err != nil {
		return nil, err
	}
	// The source's people, deals and tickets now count for the target.
	accounts.RedecideContacts(ctx, tn, "account merge", targetID)
	return accounts.Get(ctx, tn, targetID)
}
