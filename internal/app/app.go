// Package app wires the domain packages together once, so the API
// (resolvers) and the tools (seed, load generator) run the same wiring.
package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
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

	// The life cycle (lifecycle.go): what Start needs, and what it
	// started for Close to stop.
	st      *store.Store
	logger  *slog.Logger
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
	segmentLimits segment.Limits
	store         *store.Store
	logger        *slog.Logger
	startup       []func(context.Context) error
}

// WithSegmentLimits sets the per-workspace caps of the segment engine
// (HALO_MAX_SEGMENTS, HALO_MAX_EVENT_FEATURES, HALO_MAX_RULE_EVENTS);
// zero fields, and no option, mean segment.DefaultLimits.
func WithSegmentLimits(l segment.Limits) Option {
	return func(o *options) { o.segmentLimits = l }
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
func New(now func() time.Time, opts ...Option) *Services {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	id := &identity.Resolver{
		Now: now,
		// Everything kept per profile must follow a merge.
		Movers:   []identity.Mover{timeline.MoveEvents},
		Unmovers: []identity.Unmover{timeline.UnmoveEvents},
		Count:    timeline.CountEvents,
	}
	seg := &segment.Engine{Now: now, Redirect: id.Redirect, Limits: o.segmentLimits}
	tr := &traits.Engine{Now: now, Settle: traits.CacheTTL, AfterWrite: seg.AfterWrite}
	seg.Computed = tr.Definitions
	seg.Scores = tr.Summary
	// New RFM boundaries (or typical gap) move many profiles' scores at
	// once: the segments that read them re-evaluate every profile.
	tr.AfterSummary = func(ctx context.Context, tn store.Tenant, touched rule.Touched) {
		if err := seg.RebuildTouched(ctx, tn, "scores", touched); err != nil {
			slog.ErrorContext(ctx, "segments: re-evaluate after new score summary", "workspace", tn.Workspace(), "err", err)
		}
	}
	// After a merge or unmerge moved events, computed traits are
	// recomputed from them before segments re-evaluate the profiles.
	id.AfterWrite = func(ctx context.Context, tn store.Tenant, ids []string, cause string, touched rule.Touched) {
		var err error
		switch cause {
		case "merge":
			err = tr.AfterMerge(ctx, tn, ids)
		case "unmerge":
			err = tr.Recompute(ctx, tn, ids)
		}
		if err != nil {
			slog.ErrorContext(ctx, "computed traits: recompute", "profiles", ids, "cause", cause, "err", err)
		}
		seg.AfterWrite(ctx, tn, ids, cause, touched)
	}
	cs := &consent.Service{Now: now, Identity: id, Segments: seg}
	seg.ConsentPurposes = cs.Allowances
	id.Movers = append(id.Movers, cs.MoveConsent)
	id.Unmovers = append(id.Unmovers, cs.UnmoveConsent)
	logger := o.logger
	if logger == nil {
		logger = slog.Default()
	}
	tl := &timeline.Service{Identity: id, Now: now}
	return &Services{
		Identity: id,
		Ingest:   ingest.New(ingest.Deps{Identity: id, Timeline: tl, Segments: seg, Traits: tr, Consent: cs, Now: now}),
		Timeline: tl,
		Segments: seg,
		Consent:  cs,
		Privacy:  &privacy.Service{Now: now, Identity: id, Segments: seg, Derived: tr.Derived},
		Traits:   tr,
		st:       o.store,
		logger:   logger,
		startup:  o.startup,
	}
}

// Publish makes every service tell p about the changes it writes
// (realtime: profile.updated, timeline.appended, membership.changed). Without it nothing is
// published (tools, the seed).
func (s *Services) Publish(p realtime.Publisher) {
	s.Identity.Changes = p
	s.Ingest.Changes = p
	s.Segments.Publisher = p
	s.Consent.Changes = p
	s.Privacy.Changes = p
}
