// Package deal holds CRM pipelines and the deals moving through them:
// stages with win probabilities, versioned deal updates, stage history
// with the time spent in each stage, and the deals lists.
package deal

import "github.com/halo-cdp/halo/store"

// The collections package deal owns (internal/app/ownership_test.go
// checks that only this package reads or writes them).
const (
	Pipelines      = "pipelines"
	PipelinesByKey = "by_key" // unique (key)

	Deals           = "deals"
	DealsByStage    = "by_stage"    // (pipeline, stage, createdAt): a stage's deals, a board column
	DealsByStatus   = "by_status"   // (status, expectedCloseAt): open deals closing soonest
	DealsByOwner    = "by_owner"    // (ownerId, createdAt)
	DealsByAccount  = "by_account"  // (accountId, createdAt)
	DealsByPipeline = "by_pipeline" // (pipeline, createdAt)
	// DealsByAccountStatus counts an account's deals by status (account
	// rule nodes, for every contact re-decided).
	DealsByAccountStatus = "by_account_status" // (accountId, status)

	// Tallies keep each pipeline's summary figures (_id: the pipeline's
	// key), changed by every deal write (tally.go).
	Tallies = "deal_tallies"
	// TallyIntents mark deal writes between their deal and their tally.
	TallyIntents           = "deal_tally_intents"
	TallyIntentsByPipeline = "by_pipeline_at" // (pipeline, at)

	// DealContacts indexes deals by contact (_id: dealId/profileId): the
	// deals of a person, for segment rules.
	DealContacts          = "deal_contacts"
	DealContactsByProfile = "by_profile" // (profileId)
)

// Collections declares them and their indexes.
var Collections = []store.CollectionSpec{
	{Name: Pipelines, Indexes: []store.Index{
		{Name: PipelinesByKey, Fields: []string{"key"}, Unique: true},
	}},
	{Name: Deals, Indexes: []store.Index{
		{Name: DealsByStage, Fields: []string{"pipeline", "stage", "createdAt"}},
		{Name: DealsByStatus, Fields: []string{"status", "expectedCloseAt"}},
		{Name: DealsByOwner, Fields: []string{"ownerId", "createdAt"}},
		{Name: DealsByAccount, Fields: []string{"accountId", "createdAt"}},
		{Name: DealsByPipeline, Fields: []string{"pipeline", "createdAt"}},
		{Name: DealsByAccountStatus, Fields: []string{"accountId", "status"}},
	}},
	{Name: Tallies},
	{Name: TallyIntents, Indexes: []store.Index{
		{Name: TallyIntentsByPipeline, Fields: []string{"pipeline", "at"}},
	}},
	{Name: DealContacts, Indexes: []store.Index{
		{Name: DealContactsByProfile, Fields: []string{"profileId"}},
	}},
}
