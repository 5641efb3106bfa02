// Package account holds CRM accounts (companies): their documents, their
// identifiers (domains, CRM ids), and the links between accounts and the
// people who work there, made by hand or by a person's email domain.
package account

import "github.com/halo-cdp/halo/store"

// The collections package account owns. Only this package reads or writes
// them (internal/app/ownership_test.go checks it); the others call its
// functions.
const (
	Accounts          = "accounts"
	AccountsByName    = "by_name"    // (nameKey): search by the start of the name, list by name
	AccountsByCreated = "by_created" // (createdAt): list by creation
	AccountsByUpdated = "by_updated" // (updatedAt): list by last change

	AccountIdentities          = "account_identities"
	AccountIdentitiesByValue   = "by_type_value" // unique (type, value): one account per domain
	AccountIdentitiesByAccount = "by_account"    // (accountId, type)

	AccountLinks          = "account_links" // _id: accountId/profileId
	AccountLinksByAccount = "by_account"    // (accountId, linkedAt): an account's contacts, oldest first
	AccountLinksByProfile = "by_profile"    // (profileId): a person's accounts

	// AccountMerges records the merges of duplicate accounts (_id: the
	// source's id: an account is merged away once).
	AccountMerges         = "account_merges"
	AccountMergesByTarget = "by_target" // (targetId, at)
)

// Collections declares them and their indexes (internal/app.Collections
// gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Accounts, Indexes: []store.Index{
		{Name: AccountsByName, Fields: []string{"nameKey"}},
		{Name: AccountsByCreated, Fields: []string{"createdAt"}},
		{Name: AccountsByUpdated, Fields: []string{"updatedAt"}},
	}},
	{Name: AccountIdentities, Indexes: []store.Index{
		{Name: AccountIdentitiesByValue, Fields: []string{"type", "value"}, Unique: true},
		{Name: AccountIdentitiesByAccount, Fields: []string{"accountId", "type"}},
	}},
	{Name: AccountLinks, Indexes: []store.Index{
		{Name: AccountLinksByAccount, Fields: []string{"accountId", "linkedAt"}},
		{Name: AccountLinksByProfile, Fields: []string{"profileId"}},
	}},
	{Name: AccountMerges, Indexes: []store.Index{
		{Name: AccountMergesByTarget, Fields: []string{"targetId", "at"}},
	}},
}
