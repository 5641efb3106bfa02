package app

import (
	"slices"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/accountfeed"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// Collections is Halo's schema: every domain's collections and indexes,
// each declared by the package that owns it.
var Collections = slices.Concat(
	profile.Collections, identity.Collections, timeline.Collections,
	segment.Collections, traits.Collections, consent.Collections,
	privacy.Collections, realtime.Collections, settings.Collections,
	journal.Collections, analytics.Collections, account.Collections, deal.Collections, task.Collections, ticket.Collections, lifecycle.Collections, accountfeed.Collections,
)

var _ []store.CollectionSpec = Collections
