// Package ingest is Halo's write path: what happens to an identify, a
// track, a trackBatch and a logInteraction, step by step, in order. Each
// step is a call into the domain that owns it; nothing here stores a
// document itself, and no domain calls back up into this package.
//
// track and trackBatch (track.go), the whole story:
//
//  0. the call is journaled (journal) before its event ids are drawn,
//     and ended once its events are counted: a call cut between storing
//     and counting (a crash, a failed write) is recounted by Recover
//     (recover.go), here or on another instance;
//  1. consent carried on the call is checked (consent), with its scope;
//  2. every input is validated (timeline), then suppression is checked
//     for all identifiers at once (identity): a refused call stores
//     nothing;
//  3. each messageId is looked up (timeline): a replay by the same person
//     is a duplicate, anything else CONFLICT;
//  4. identity is resolved once per identifier set (identity: normalise,
//     look up, stitch or merge, apply traits); a person who gained an
//     email joins the account holding its domain (crm/account);
//  5. the events are appended in one InsertMany (timeline);
//  6. each touched profile is updated in one compare-and-swap
//     (profiles.go): its counters (timeline), the segment features
//     (segment), computed traits and score tally (traits) and, from all
//     of that, its segment memberships: the segments that read what
//     changed are evaluated on the document being written (segment);
//  7. the membership moves those writes decided are handed off: history
//     records, the members index, notifications (segment);
//  8. timeline.appended and profile.updated go to the outbox (realtime),
//     in step 7's outbox write, after the membership changes;
//  9. the consent carried on the call is recorded (consent).
//
// identify (identify.go) is steps 1, 4, 7 and 9 for one person, its
// memberships decided in step 4's write (the one applying its traits),
// and its emails' accounts joined whether or not they are new (a link
// removed by hand stays removed only until the person identifies again);
// logInteraction (interaction.go) is steps 0, 3, 5, 6, 7 and 8 for one
// item.
package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// Pipeline runs the write path over the domain services.
type Pipeline struct {
	identity *identity.Resolver
	timeline *timeline.Service
	segments *segment.Engine
	traits   *traits.Engine
	consent  *consent.Service
	accounts *account.Service
	now      func() time.Time
	changes  realtime.Publisher
	journal  *journal.Journal
}

// Deps are the services the write path calls.
type Deps struct {
	Identity *identity.Resolver
	Timeline *timeline.Service
	Segments *segment.Engine
	Traits   *traits.Engine
	Consent  *consent.Service
	// Accounts links people to the accounts of their email domains; nil
	// links nothing.
	Accounts *account.Service
	Now      func() time.Time
	// Changes is told of every append and profile change the path makes
	// (timeline.appended, profile.updated).
	Changes realtime.Publisher
	// Journal journals the calls that store events, so that what a crash
	// left uncounted is recounted (Recover); nil journals nothing.
	Journal *journal.Journal
}

// New builds the write path.
func New(d Deps) *Pipeline {
	return &Pipeline{identity: d.Identity, timeline: d.Timeline, segments: d.Segments, traits: d.Traits, consent: d.Consent, accounts: d.Accounts, now: d.Now, changes: d.Changes, journal: d.Journal}
}

// joinAccounts links profileID to the accounts holding the domains of the
// emails among ids (step 4). The person is stored by then: a failure is
// logged, not returned (the links are derived; the person's next
// identify makes them).
func (p *Pipeline) joinAccounts(ctx context.Context, tn store.Tenant, profileID string, ids []identity.Identifier) {
	if p.accounts == nil {
		return
	}
	var emails []string
	for _, id := range ids {
		if id.Type == identity.Email {
			emails = append(emails, id.Value)
		}
	}
	if err := p.accounts.LinkEmails(context.WithoutCancel(ctx), tn, profileID, emails); err != nil {
		slog.ErrorContext(ctx, "accounts: link a person by their email's domain", "profile", profileID, "err", err)
	}
}
