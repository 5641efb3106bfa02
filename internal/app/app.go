// Package app wires the domain packages together once, so the API
// (resolvers) and the tools (seed, load generator) run the same wiring.
package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/internal/merge"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

// Services are the domain services of one process.
type Services struct {
	Identity *identity.Resolver
	// Ingest is the write path (identify, track, trackBatch,
	// logInteraction), step by step over the other services.
	Ingest   *ingest.Pipeline
	Timeline *timeline.Service
	// Segments is the segment engine: identity and timeline call it after
	// every write that can change memberships.
	Segments *segment.Engine
	Consent  *consent.Service
	Privacy  *privacy.Service
	// Traits maintains computed traits and the built-in scores: ingest
	// counts them, merges recompute them, segment rules read them.
	Traits *traits.Engine
	// Analytics answers dashboards from rollups of the stored events,
	// which Start's roller keeps behind the write path.
	Analytics *analytics.Service
	// Accounts are the CRM's companies and their people.
	Accounts *account.Service
	// Deals are the CRM's pipelines and deals.
	Deals *deal.Service
	// Lifecycle moves people's lifecycle stages (by hand; forward with
	// deals and orders).
	Lifecycle *lifecycle.Service
	// Tasks are the CRM's next steps.
	Tasks *task.Service
	// Tickets are the CRM's service requests; Start's sweeper flags
	// their missed targets.
	Tickets *ticket.Service

	// relay is the publisher every service was built with (Publish).
	relay *realtime.Relay
	// journal is the write path's journal of this instance: Start beats
	// it and recovers what crashes left uncounted (ingest.Recover).
	journal *journal.Journal

	// The life cycle (lifecycle.go): what Start needs, and what it
	// started for Close to stop.
	st      *store.Store
	logger  *slog.Logger
	retain  time.Duration // outbox retention (0: the hub's default)
	startup []func(context.Context) error

	mu       sync.Mutex
	started  bool
	closed   bool
	hub      *realtime.Hub
	closeHub func() // hub.Close, once; every caller waits for it
	stop     context.CancelFunc
	loops    sync.WaitGroup
}

// Option adjusts the services New wires.
type Option func(*options)

type options struct {
	segmentLimits    segment.Limits
	segmentBuildWait time.Duration
	segmentSettle    *time.Duration
	traitsSettle     *time.Duration
	outboxRetention  time.Duration
	journalEvery     time.Duration
	store            *store.Store
	logger           *slog.Logger
	startup          []func(context.Context) error
}

// WithSegmentBuildWait sets how long a segment save waits for the
// segment's build before answering with it still BUILDING (default
// segment.DefaultBuildWait).
func WithSegmentBuildWait(d time.Duration) Option {
	return func(o *options) { o.segmentBuildWait = d }
}

// WithOutboxRetention sets how long the outbox keeps changes (default
// realtime.DefaultRetention).
func WithOutboxRetention(d time.Duration) Option {
	return func(o *options) { o.outboxRetention = d }
}

// WithJournalEvery sets how often the write path's journal is written
// (default journal.DefaultEvery); an instance silent for three intervals
// is taken for dead and its interrupted calls recounted.
func WithJournalEvery(d time.Duration) Option {
	return func(o *options) { o.journalEvery = d }
}

// WithSegmentBuildSettle sets how long a segment build that counts new
// features waits before counting (segment.Deps.BuildSettle; tests with
// one engine use zero).
func WithSegmentBuildSettle(d time.Duration) Option {
	return func(o *options) { o.segmentSettle = &d }
}

// WithSegmentLimits sets the per-workspace caps of the segment engine
// (HALO_MAX_SEGMENTS, HALO_MAX_EVENT_FEATURES, HALO_MAX_RULE_EVENTS);
// zero fields, and no option, mean segment.DefaultLimits.
func WithSegmentLimits(l segment.Limits) Option {
	return func(o *options) { o.segmentLimits = l }
}

// WithTraitsSettle sets how long a computed trait backfill waits after
// its definition is saved (default traits.CacheTTL, so every instance's
// definition cache knows it first); tests of one process use 0.
func WithTraitsSettle(d time.Duration) Option {
	return func(o *options) { o.traitsSettle = &d }
}

// WithStore gives the services the store Start recovers merges in and
// the background work runs over. Start needs it; tools and tests that only
// call the services do without.
func WithStore(st *store.Store) Option {
	return func(o *options) { o.store = st }
}

// WithLogger sets the logger of the start-up and background work and of
// the realtime hub (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithStartup adds work Start runs after merge recovery and before it
// starts the background work (the server's demo data load): it may read
// profiles, and nothing in the background competes with it (for the
// score summary's lease, for one). Its error ends Start.
func WithStartup(fn func(ctx context.Context) error) Option {
	return func(o *options) { o.startup = append(o.startup, fn) }
}

// New wires the services with a clock (time.Now in production). They
// are usable at once; the background work waits for Start (WithStore).
//
// Each service is built once, by its constructor, from what it needs (as
// interfaces its own package defines), in dependency order; nothing is
// changed after. Two pairs need each other at run time, and are built so:
//   - segments read computed trait definitions and score summaries, and
//     traits, after a backfill or a new summary, make segments
//     re-evaluate: traits.New passes the traits engine in to the
//     function that builds the segment engine over it (traits.Deps);
//   - segments evaluate consent nodes with the consent purposes, and the
//     consent service re-evaluates segments after a consent change: the
//     purposes catalog is built first, the segment engine reads it, and
//     the consent service (built after) defines purposes in it.
//
// The realtime hub is made by Start; the services publish to a relay
// (realtime.Relay) built here, which Start (or Publish) points at it.
func New(now func() time.Time, opts ...Option) *Services {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	settle := traits.CacheTTL
	if o.traitsSettle != nil {
		settle = *o.traitsSettle
	}
	relay := realtime.NewRelay()
	purposes := consent.NewCatalog()
	var seg *segment.Engine
	tr := traits.New(traits.Deps{Now: now, Settle: settle, Segments: func(tr *traits.Engine) traits.Segments {
		seg = segment.New(segment.Deps{Now: now, Publisher: relay, Redirect: identity.Redirect, Purposes: purposes, Traits: tr, Limits: o.segmentLimits, BuildWait: o.segmentBuildWait, BuildSettle: o.segmentSettle})
		return seg
	}})
	// Merges and unmerges: identity runs the crash-safe process and calls
	// the other domains' steps, in order, through the coordinator.
	// Leases between instances: the wall clock, like event ids.
	an := analytics.New(analytics.Deps{Leases: time.Now, Now: now, Purposes: purposes})
	merges := merge.New(merge.Deps{Consent: consent.NewMover(now), Traits: tr, Segments: seg, Activity: an})
	id := identity.New(identity.Deps{Now: now, Changes: relay, Followers: merges})
	cs := consent.New(consent.Deps{Now: now, Identity: id, Segments: seg, Catalog: purposes, Changes: relay})
	tl := timeline.New(timeline.Deps{Identity: id, Now: now})
	accounts := account.New(account.Deps{Now: now, Changes: relay, Segments: seg})
	jn := journal.New(o.journalEvery)
	pipe := ingest.New(ingest.Deps{Identity: id, Timeline: tl, Segments: seg, Traits: tr, Consent: cs, Accounts: accounts, Now: now, Changes: relay, Journal: jn})
	// The CRM objects tell their story on people's timelines through the
	// write path, as any interaction.
	stages := lifecycle.New(lifecycle.Deps{Now: now, Segments: seg, Changes: relay})
	deals := deal.New(deal.Deps{Now: now, Lifecycle: stages, Timeline: pipe, Changes: relay, Segments: seg})
	tasks := task.New(task.Deps{Now: now, Timeline: pipe})
	tickets := ticket.New(ticket.Deps{Now: now, Accounts: accounts, Timeline: pipe, Changes: relay, Segments: seg})
	logger := o.logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Services{
		Identity:  id,
		Ingest:    pipe,
		Accounts:  accounts,
		Deals:     deals,
		Lifecycle: stages,
		Tasks:     tasks,
		Tickets:   tickets,
		Timeline:  tl,
		Segments:  seg,
		Consent:   cs,
		Privacy:   privacy.New(privacy.Deps{Now: now, Identity: id, Segments: seg, Derived: tr.Derived, Events: an}),
		Traits:    tr,
		Analytics: an,
		relay:     relay,
		journal:   jn,
		st:        o.store,
		logger:    logger,
		retain:    o.outboxRetention,
		startup:   o.startup,
	}
}

// Publish makes every service tell p about the changes it writes
// (realtime: profile.updated, timeline.appended, membership.changed,
// consent.changed), replacing the publisher before: it points the relay
// the services were built with at p. Start points it at its hub; without
// either, nothing is published (tools, the seed).
func (s *Services) Publish(p realtime.Publisher) {
	s.relay.To(p)
}
