package segment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// CreateInput is a new segment.
type CreateInput struct {
	Name        string
	Description string
	Kind        string // Dynamic (default) or Static
	Rule        *rule.Rule
	// Guard checks Rule for the caller first (nil: not checked).
	Guard RuleGuard
}

// UpdateInput changes a segment; nil fields are kept.
type UpdateInput struct {
	Name        *string
	Description *string
	Rule        *rule.Rule
	// Guard checks Rule for the caller first (nil: not checked).
	Guard RuleGuard
}

func (e *Engine) resolver(ctx context.Context, tn store.Tenant) func(id string) (*rule.Rule, bool) {
	return func(id string) (*rule.Rule, bool) {
		var s Segment
		if err := tn.C(Segments).Get(ctx, id, &s); err != nil || s.Status != Active {
			return nil, false
		}
		if s.Kind == Static {
			return nil, true
		}
		r := s.Rule
		return &r, true
	}
}

// lookups are the references a rule is validated against: segments and
// consent purposes.
func (e *Engine) lookups(ctx context.Context, tn store.Tenant) (rule.Lookups, error) {
	l := rule.Lookups{Segment: e.resolver(ctx, tn)}
	if e.purposes != nil {
		purposes, err := e.purposes.Allowances(ctx, tn)
		if err != nil {
			return l, fmt.Errorf("load consent purposes: %w", err)
		}
		l.Purpose = func(key string) bool { _, ok := purposes[key]; return ok }
	}
	if e.traits != nil {
		defs, err := e.traits.Definitions(ctx, tn)
		if err != nil {
			return l, fmt.Errorf("load computed traits: %w", err)
		}
		l.Computed = func(key string) bool { return defs.Get(key) != nil || e.traits != nil && scores.IsKey(key) }
	}
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return l, fmt.Errorf("load identifier types: %w", err)
	}
	names := types.Names()
	l.IdentifierType = func(name string) bool { return slices.Contains(names, name) }
	l.LifecycleStage = profile.IsLifecycleStage
	pipelines, err := deal.AllPipelines(ctx, tn)
	if err != nil {
		return l, err
	}
	l.DealStage = func(pipeline, stage string) bool {
		for _, p := range pipelines {
			if p.Key == pipeline {
				if stage == "" {
					return true // the pipeline alone
				}
				_, ok := p.Stage(stage)
				return ok
			}
		}
		return false
	}
	return l, nil
}

// evalEnv is what evaluation needs besides the profile and the segments:
// the consent purposes allowed without a record, the computed trait
// definitions and the workspace's score summary (each nil when no segment
// reads them).
type evalEnv struct {
	consent  map[string]bool
	computed *agg.Set
	// scores is the workspace summary, nil before the first one (the
	// scores are still known then: RFM is unknown, the typical gap the
	// default); withScores tells whether score nodes can be evaluated.
	scores     *scores.Workspace
	withScores bool
}

// newEvalEnv loads what evaluation needs beyond the profile: the consent
// purposes allowed without a record when consent is read, the computed
// trait definitions when computed is (each left nil otherwise: no read).
func (e *Engine) newEvalEnv(ctx context.Context, tn store.Tenant, consent, computed bool) (evalEnv, error) {
	var (
		env evalEnv
		err error
	)
	if consent && e.purposes != nil {
		if env.consent, err = e.purposes.Allowances(ctx, tn); err != nil {
			return env, err
		}
	}
	if computed && e.traits != nil {
		if env.computed, err = e.traits.Definitions(ctx, tn); err != nil {
			return env, err
		}
	}
	if computed && e.traits != nil {
		if env.scores, err = e.traits.Summary(ctx, tn); err != nil {
			return env, err
		}
		env.withScores = true
	}
	return env, nil
}

// segmentsEnv is newEvalEnv for what the dynamic segments of segs read.
func (e *Engine) segmentsEnv(ctx context.Context, tn store.Tenant, segs []*Segment) (evalEnv, error) {
	var consent, computed bool
	for _, s := range segs {
		if s.Kind == Dynamic {
			consent = consent || len(s.Deps.Purposes) > 0
			computed = computed || len(s.Deps.Computed) > 0
		}
	}
	return e.newEvalEnv(ctx, tn, consent, computed)
}

// Rebuild re-evaluates every profile against every active segment (cause
// names why): for a change that can move any membership, such as a
// consent purpose's new lawful basis.
func (e *Engine) Rebuild(ctx context.Context, tn store.Tenant, cause string) error {
	return e.rebuild(ctx, tn, nil, cause)
}

// RebuildTouched re-evaluates every live profile for the active segments
// a workspace-wide change described by t can affect (new RFM boundaries,
// say); without such segments it reads nothing.
func (e *Engine) RebuildTouched(ctx context.Context, tn store.Tenant, cause string, t rule.Touched) error {
	a, err := e.active(ctx, tn)
	if err != nil {
		return err
	}
	if len(affected(a.segs, t, false)) == 0 {
		return nil
	}
	return profile.EachLivePage(ctx, tn, func(page []*profile.Profile) error {
		return e.reevaluatePage(ctx, tn, page, nil, nil, cause, t)
	})
}

// reevaluatePage re-evaluates a page of live profiles for what t can
// affect, in the same write first setting their counters of feats to
// counters (by profile; none when feats is empty).
func (e *Engine) reevaluatePage(ctx context.Context, tn store.Tenant, page []*profile.Profile, feats []rule.Feature, counters map[string]map[string]rule.Counter, cause string, t rule.Touched) error {
	ids := make([]string, len(page))
	for i, p := range page {
		ids[i] = p.ID
	}
	var prep func(*Decider, *profile.Profile) (bool, error)
	if len(feats) > 0 {
		prep = func(_ *Decider, p *profile.Profile) (bool, error) {
			setCounters(p, feats, counters[p.ID])
			return true, nil
		}
	}
	return e.settle(ctx, tn, ids, page, cause, t, prep)
}

// setCounters sets p's counters of feats to those in counters, removing
// the ones counters lacks.
func setCounters(p *profile.Profile, feats []rule.Feature, counters map[string]rule.Counter) {
	for _, f := range feats {
		if c, ok := counters[f.Key]; ok {
			p.Features[f.Key] = c
		} else {
			delete(p.Features, f.Key)
		}
	}
}

func checkName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", apperr.Invalid(field, "must not be blank")
	case len(name) > rule.MaxNameLen || !utf8.ValidString(name):
		return "", apperr.Invalid(field, "must be valid text of at most %d bytes", rule.MaxNameLen)
	}
	return name, nil
}

// Create saves a new segment, backfills the features its rule counts and
// builds its membership (dynamic). Field paths of errors start at input.
// Over the workspace's Limits nothing is saved (BAD_USER_INPUT), as for
// an Update adding features over them.
func (e *Engine) Create(ctx context.Context, tn store.Tenant, in CreateInput) (*Segment, error) {
	if err := guard(ctx, tn, in.Guard, in.Rule, "input.rule"); err != nil {
		return nil, err
	}
	name, err := checkName("input.name", in.Name)
	if err != nil {
		return nil, err
	}
	if len(in.Description) > MaxDescription {
		return nil, apperr.Invalid("input.description", "at most %d bytes", MaxDescription)
	}
	kind := in.Kind
	if kind == "" {
		kind = Dynamic
	}
	now := e.now().Truncate(time.Millisecond)
	s := &Segment{ID: store.NewID(), Name: name, Description: in.Description, Kind: kind, Status: Active, Version: 1, CreatedAt: now, UpdatedAt: now, Features: []rule.Feature{}}
	switch kind {
	case Dynamic:
		if in.Rule == nil {
			return nil, apperr.Invalid("input.rule", "a dynamic segment needs a rule")
		}
		if err := e.setRule(ctx, tn, s, *in.Rule); err != nil {
			return nil, err
		}
	case Static:
		if in.Rule != nil {
			return nil, apperr.Invalid("input.rule", "a static segment has no rule")
		}
	default:
		return nil, apperr.Invalid("input.kind", "unknown kind %q", kind)
	}
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	if err := e.withinLimits(ctx, tn, s, in.Rule, func() error {
		if err := e.register(ctx, tn); err != nil {
			return err
		}
		if kind == Dynamic {
			if err := e.saveBuild(ctx, tn, s, toCount(a, s), "segment.created"); err != nil {
				return err
			}
		}
		if err := tn.C(Segments).Insert(ctx, s); err != nil {
			if errors.Is(err, store.ErrDuplicateKey) {
				return apperr.New(apperr.Conflict, "a segment named %q exists already", name)
			}
			return fmt.Errorf("save segment: %w", err)
		}
		e.invalidate(tn.Workspace())
		return nil
	}); err != nil {
		return nil, err
	}
	if kind == Dynamic {
		return e.awaitBuild(ctx, tn, s)
	}
	return s, nil
}

// setRule validates rule for segment s (field paths under input.rule) and
// sets it with the features it counts and what it depends on.
func (e *Engine) setRule(ctx context.Context, tn store.Tenant, s *Segment, rl rule.Rule) error {
	l, err := e.lookups(ctx, tn)
	if err != nil {
		return err
	}
	if err := rule.ValidateWith(s.ID, rl, l); err != nil {
		return fieldErr(err, "input.rule")
	}
	s.Rule = rl
	s.Features = rule.Features(rl)
	s.Deps = rule.DependsOn(rl)
	return nil
}

// toCount lists the features of s's rule its build must count from the
// events: all but those another active segment, built already, has kept
// counted on every profile.
func toCount(a *activeSet, s *Segment) []rule.Feature {
	var kept []rule.Feature
	for _, o := range a.segs {
		if _, building := a.building[o.ID]; o.ID != s.ID && o.Kind == Dynamic && !building {
			kept = append(kept, o.Features...)
		}
	}
	return newFeatures(s.Features, kept)
}

// newFeatures lists the features of fs that are not in maintained.
func newFeatures(fs, maintained []rule.Feature) []rule.Feature {
	have := map[string]bool{}
	for _, f := range maintained {
		have[f.Key] = true
	}
	var out []rule.Feature
	for _, f := range fs {
		if !have[f.Key] {
			out = append(out, f)
		}
	}
	return out
}

// Update changes a segment's name, description or rule. A new rule bumps
// the version, backfills new features and re-evaluates every profile.
// An archived segment cannot be updated (CONFLICT).
func (e *Engine) Update(ctx context.Context, tn store.Tenant, id string, in UpdateInput) (*Segment, error) {
	if err := guard(ctx, tn, in.Guard, in.Rule, "input.rule"); err != nil {
		return nil, err
	}
	s, err := e.Get(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	if s.Status == Archived {
		return nil, apperr.New(apperr.Conflict, "segment %s is archived", id)
	}
	if in.Name != nil {
		if s.Name, err = checkName("input.name", *in.Name); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		if len(*in.Description) > MaxDescription {
			return nil, apperr.Invalid("input.description", "at most %d bytes", MaxDescription)
		}
		s.Description = *in.Description
	}
	if in.Rule != nil {
		if s.Kind == Static {
			return nil, apperr.Invalid("input.rule", "a static segment has no rule")
		}
		if err := e.setRule(ctx, tn, s, *in.Rule); err != nil {
			return nil, err
		}
	}
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	prev := s.Version
	s.Version++
	s.UpdatedAt = e.now().Truncate(time.Millisecond)
	if err := e.withinLimits(ctx, tn, s, in.Rule, func() error {
		if in.Rule != nil {
			if err := e.saveBuild(ctx, tn, s, toCount(a, s), "segment.updated"); err != nil {
				return err
			}
		}
		if err := tn.C(Segments).Replace(ctx, s, prev); err != nil {
			switch {
			case errors.Is(err, store.ErrDuplicateKey):
				return apperr.New(apperr.Conflict, "a segment named %q exists already", s.Name)
			case errors.Is(err, store.ErrConflict):
				return apperr.New(apperr.Conflict, "segment %s was changed concurrently; retry", id)
			}
			return fmt.Errorf("save segment: %w", err)
		}
		e.invalidate(tn.Workspace())
		return nil
	}); err != nil {
		return nil, err
	}
	if in.Rule != nil {
		return e.awaitBuild(ctx, tn, s)
	}
	return s, nil
}

// Archive stops a segment: its members stay as they are (no one exits)
// and no membership of it changes any more. Repeating it is harmless.
func (e *Engine) Archive(ctx context.Context, tn store.Tenant, id string) (*Segment, error) {
	s, err := e.Get(ctx, tn, id)
	if err != nil || s.Status == Archived {
		return s, err
	}
	prev := s.Version
	s.Status, s.Version, s.UpdatedAt = Archived, s.Version+1, e.now().Truncate(time.Millisecond)
	if err := tn.C(Segments).Replace(ctx, s, prev); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, apperr.New(apperr.Conflict, "segment %s was changed concurrently; retry", id)
		}
		return nil, fmt.Errorf("archive segment: %w", err)
	}
	e.invalidate(tn.Workspace())
	return s, nil
}

// AddStatic adds profiles to a static segment (at most MaxStaticBatch;
// every id must name a live profile, else nothing is written). Merged-away
// ids follow the merge.
func (e *Engine) AddStatic(ctx context.Context, tn store.Tenant, segmentID string, profileIDs []string) (*Segment, error) {
	return e.static(ctx, tn, segmentID, profileIDs, true)
}

// RemoveStatic removes profiles from a static segment.
func (e *Engine) RemoveStatic(ctx context.Context, tn store.Tenant, segmentID string, profileIDs []string) (*Segment, error) {
	return e.static(ctx, tn, segmentID, profileIDs, false)
}

func (e *Engine) static(ctx context.Context, tn store.Tenant, segmentID string, profileIDs []string, add bool) (*Segment, error) {
	if len(profileIDs) > MaxStaticBatch {
		return nil, apperr.Invalid("profileIds", "at most %d profiles per call, got %d", MaxStaticBatch, len(profileIDs))
	}
	s, err := e.Get(ctx, tn, segmentID)
	if err != nil {
		return nil, err
	}
	if s.Kind != Static {
		return nil, apperr.Invalid("segmentId", "segment %s is not static", segmentID)
	}
	if s.Status == Archived {
		return nil, apperr.New(apperr.Conflict, "segment %s is archived", segmentID)
	}
	ids := make([]string, 0, len(profileIDs))
	profiles := make([]*profile.Profile, 0, len(profileIDs))
	seen := map[string]bool{}
	for i, id := range profileIDs {
		p, err := profile.Resolve(ctx, tn, id, e.redirect)
		if err != nil {
			if apperr.CodeOf(err) == apperr.NotFound {
				return nil, apperr.Invalid(fmt.Sprintf("profileIds[%d]", i), "profile %s not found", id)
			}
			return nil, err
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			ids = append(ids, p.ID)
			profiles = append(profiles, p)
		}
	}
	// Each profile's membership changes in a write of its own, which also
	// re-evaluates the dynamic segments that may nest this one.
	var t rule.Touched
	if a, err := e.active(ctx, tn); err != nil {
		return nil, err
	} else if slices.ContainsFunc(a.segs, func(o *Segment) bool { return len(o.Deps.Segments) > 0 }) {
		t.All = true
	}
	if err := e.settle(ctx, tn, ids, profiles, "manual", t, func(d *Decider, p *profile.Profile) (bool, error) {
		return d.move(p, s.ID, add), nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// move is one membership transition to write.
type move struct {
	segmentID, profileID string
	enter                bool
}

// apply writes moves made at `at` for cause: the memberships first (an
// enter that finds the membership there already, or an exit that finds it
// gone — a repeat or a concurrent twin got there first — records nothing),
// then the ENTERED/EXITED records and their notifications, each set in one
// store call. A failed membership write keeps its record out but does not
// stop the others from being recorded; the first failure is returned.
func (e *Engine) apply(ctx context.Context, tn store.Tenant, moves []move, at time.Time, cause string) error {
	if len(moves) == 0 {
		return nil
	}
	var (
		failed   error
		enters   []any
		enterIdx []int
	)
	done := make([]bool, len(moves))
	for i, m := range moves {
		if m.enter {
			enters = append(enters, Member{ID: memberID(m.segmentID, m.profileID), SegmentID: m.segmentID, ProfileID: m.profileID, EnteredAt: at})
			enterIdx = append(enterIdx, i)
			continue
		}
		err := tn.C(Memberships).Delete(ctx, memberID(m.segmentID, m.profileID))
		switch {
		case err == nil:
			done[i] = true
		case !errors.Is(err, store.ErrNotFound) && failed == nil:
			failed = fmt.Errorf("exit segment %s: %w", m.segmentID, err)
		}
	}
	if len(enters) > 0 {
		errs, err := tn.C(Memberships).InsertMany(ctx, enters)
		if err != nil {
			return errors.Join(failed, fmt.Errorf("enter segments: %w", err))
		}
		for j, i := range enterIdx {
			switch err := errAt(errs, j); {
			case err == nil:
				done[i] = true
			case !errors.Is(err, store.ErrDuplicateKey) && failed == nil:
				failed = fmt.Errorf("enter segment %s: %w", moves[i].segmentID, err)
			}
		}
	}
	var (
		records []any
		notes   []realtime.Change
	)
	for i, m := range moves {
		if !done[i] {
			continue
		}
		kind := Exited
		if m.enter {
			kind = Entered
		}
		c := Change{ID: store.NewID(), SegmentID: m.segmentID, ProfileID: m.profileID, Kind: kind, At: at, Cause: cause}
		records = append(records, c)
		notes = append(notes, realtime.Change{
			Kind: realtime.MembershipChanged, ProfileID: m.profileID, SegmentID: m.segmentID,
			Payload: map[string]any{realtime.PayloadKind: kind, realtime.PayloadCause: cause, realtime.PayloadChangeID: c.ID},
		})
	}
	if len(records) == 0 {
		return failed
	}
	errs, err := tn.C(MembershipChanges).InsertMany(ctx, records)
	if err != nil {
		return errors.Join(failed, fmt.Errorf("record membership changes: %w", err))
	}
	for j := range records {
		if err := errAt(errs, j); err != nil {
			return errors.Join(failed, fmt.Errorf("record membership change: %w", err))
		}
	}
	realtime.Notify(ctx, e.publisher, tn, notes...)
	return failed
}

func errAt(errs []error, i int) error {
	if i < len(errs) {
		return errs[i]
	}
	return nil
}

// AfterWrite re-evaluates the profiles a write touched (the hook identity
// calls), for the segments what it touched can affect. A failure is
// logged, never returned: the write itself succeeded. After a merge or
// unmerge, the profiles' feature counters are recomputed from their
// events first.
func (e *Engine) AfterWrite(ctx context.Context, tn store.Tenant, profileIDs []string, cause string, touched rule.Touched) {
	a, err := e.active(ctx, tn)
	if err != nil {
		slog.ErrorContext(ctx, "segments: load", "err", err)
		return
	}
	segs, feats := a.segs, a.features
	if len(segs) == 0 {
		return
	}
	if (cause == "merge" || cause == "unmerge") && len(feats) > 0 {
		for _, pid := range profileIDs {
			if err := e.recompute(ctx, tn, pid, feats); err != nil && !errors.Is(err, store.ErrNotFound) {
				slog.ErrorContext(ctx, "segments: recompute features", "profile", pid, "err", err)
			}
		}
	}
	if err := e.reevaluateAll(ctx, tn, profileIDs, nil, cause, touched); err != nil {
		slog.ErrorContext(ctx, "segments: re-evaluate", "profiles", profileIDs, "cause", cause, "err", err)
	}
}

// recompute sets the profile's counters of feats from its stored events
// (after a merge or an unmerge moved events). It bumps ComputedEpoch, as
// a build does: an ingest write whose events were stored before this
// count and are counted after it (on this profile, or redirected here
// from a profile merged into it) then recounts instead of adding them a
// second time (TestWritePathIsExact found that double count).
func (e *Engine) recompute(ctx context.Context, tn store.Tenant, profileID string, feats []rule.Feature) error {
	_, err := profile.UpdateAny(ctx, tn, profileID, e.now(), func(p *profile.Profile) error {
		counters, err := countEvents(ctx, tn, profileID, feats)
		if err != nil {
			return err
		}
		setCounters(p, feats, counters)
		p.ComputedEpoch++
		return nil
	})
	return err
}

// Recount sets p's counters of feats from its stored events (ingest,
// when a from-events write may have counted its new events already).
func Recount(ctx context.Context, tn store.Tenant, p *profile.Profile, feats []rule.Feature) error {
	counters, err := countEvents(ctx, tn, p.ID, feats)
	if err != nil {
		return err
	}
	setCounters(p, feats, counters)
	return nil
}

// countEvents counts a profile's stored events for feats.
func countEvents(ctx context.Context, tn store.Tenant, profileID string, feats []rule.Feature) (map[string]rule.Counter, error) {
	out := map[string]rule.Counter{}
	err := timeline.EventsOf(ctx, tn, profileID, func(ev *timeline.Event) error {
		countInto(out, feats, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func countInto(out map[string]rule.Counter, feats []rule.Feature, ev *timeline.Event) {
	for _, f := range feats {
		if f.Matches(ev.Name, ev.Properties) {
			c := out[f.Key]
			c.Add(ev.OccurredAt)
			out[f.Key] = c
		}
	}
}

// input is the evaluator's view of a profile; member tells whether it is
// a member of a static segment (its stored membership).
func input(p *profile.Profile, byID map[string]*Segment, member func(segmentID string) bool, holds func(idType string) bool, crm crmFacts, env evalEnv) rule.Input {
	var score func(string, time.Time, []float64) (any, time.Time)
	if env.withScores {
		score = func(key string, at time.Time, thresholds []float64) (any, time.Time) {
			return scores.Get(key, p.Tally.Input(at, p.FirstSeenAt, p.LastSeenAt, env.scores), thresholds)
		}
	}
	var computed func(string, time.Time) (any, time.Time)
	if env.computed.Len() > 0 {
		computed = func(key string, at time.Time) (any, time.Time) {
			d := env.computed.Get(key)
			if d == nil {
				return nil, time.Time{}
			}
			return d.ValueIn(p.Computed, at)
		}
	}
	return rule.Input{
		Traits: p.Traits, CreatedAt: p.CreatedAt, FirstSeenAt: p.FirstSeenAt, LastSeenAt: p.LastSeenAt,
		EventCount: p.EventCount, Features: p.Features, Consent: p.Consent, ConsentDefaults: env.consent, Computed: computed, Score: score,
		Holds: holds, Lifecycle: p.Lifecycle, Tickets: crm.tickets, Deals: crm.deals, Accounts: crm.accounts,
		Segment: func(id string) (rule.SegmentRef, bool) {
			s, ok := byID[id]
			if !ok {
				return rule.SegmentRef{}, false
			}
			if s.Kind == Static {
				return rule.SegmentRef{Member: member(id)}, true
			}
			return rule.SegmentRef{Rule: &s.Rule}, true
		},
	}
}

// evaluate runs the dynamic segments of segs on p and returns the matches
// and the earliest nextEvalAt (profile.NoEval if none). byID holds every
// active segment (inSegment references); f what p's rules read besides
// its document (factsOf: only what segments of segs need); env what the
// rules read besides the profile (newEvalEnv).
func evaluate(p *profile.Profile, segs []*Segment, byID map[string]*Segment, member map[string]bool, f facts, env evalEnv, now time.Time) (map[string]bool, time.Time) {
	in := input(p, byID, func(id string) bool { return member[id] }, func(t string) bool { return slices.Contains(f.held, t) }, f.crm, env)
	match := make(map[string]bool, len(segs))
	next := profile.NoEval
	for _, s := range segs {
		if s.Kind != Dynamic {
			continue
		}
		ok, n := rule.Evaluate(s.Rule, in, now)
		match[s.ID] = ok
		if !n.IsZero() && n.Before(next) {
			next = n
		}
	}
	return match, next
}

// Reevaluate brings a profile's memberships of the active dynamic
// segments up to date: ENTERED/EXITED records, membership.changed, and
// the profile's nextEvalAt. A profile that no longer exists (merged away)
// exits every active segment.
func (e *Engine) Reevaluate(ctx context.Context, tn store.Tenant, profileID, cause string) error {
	return e.reevaluateAll(ctx, tn, []string{profileID}, nil, cause, rule.Touched{All: true})
}

// AfterProfiles re-evaluates profiles as a write just left them (ingest
// calls it with the documents its compare-and-swap wrote), only for the
// segments that what the write touched can affect. A failure is logged.
func (e *Engine) AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched) {
	ids := make([]string, len(profiles))
	for i, p := range profiles {
		ids[i] = p.ID
	}
	if err := e.reevaluateAll(ctx, tn, ids, profiles, cause, touched); err != nil {
		slog.ErrorContext(ctx, "segments: re-evaluate", "profiles", len(ids), "cause", cause, "err", err)
	}
}

// affected lists the active dynamic segments a write that touched t can
// change the answer of: those whose deps t affects, and transitively the
// segments nesting one of them (inSegment evaluates the nested rule on the
// same profile, so its answer moves with it). All of them if full.
func affected(segs []*Segment, t rule.Touched, full bool) []*Segment {
	hit := map[string]bool{}
	var out []*Segment
	for _, s := range segs {
		if s.Kind == Dynamic && (full || s.Deps.Affected(t) || slices.Contains(t.Segments, s.ID)) {
			hit[s.ID] = true
			out = append(out, s)
		}
	}
	for grew := len(out) > 0 && len(out) < len(segs); grew; {
		grew = false
		for _, s := range segs {
			if s.Kind != Dynamic || hit[s.ID] {
				continue
			}
			for _, ref := range s.Deps.Segments {
				if hit[ref] {
					hit[s.ID], grew = true, true
					out = append(out, s)
					break
				}
			}
		}
	}
	return out
}

// reevaluateAll re-evaluates the segments t can affect on the profiles
// ids (profiles[i], when given, is ids[i] as just written).
func (e *Engine) reevaluateAll(ctx context.Context, tn store.Tenant, ids []string, profiles []*profile.Profile, cause string, t rule.Touched) error {
	return e.settle(ctx, tn, ids, profiles, cause, t, nil)
}

// settle decides the memberships of the profiles ids (seeds[i], when
// given, is ids[i] as just read or written) for what t can affect, each
// in a compare-and-swap of its own (decide.go), side by side, then hands
// their moves off together. prep, when set, changes each profile first in
// the same write and tells whether it did. A profile that no longer
// exists (merged away) exits every active segment. A profile's failure is
// logged and the others go on; the first is returned.
func (e *Engine) settle(ctx context.Context, tn store.Tenant, ids []string, seeds []*profile.Profile, cause string, t rule.Touched, prep func(*Decider, *profile.Profile) (bool, error)) error {
	d, err := e.Decider(ctx, tn, cause)
	if err != nil {
		return err
	}
	written := make([]*profile.Profile, len(ids))
	errs := make([]error, len(ids))
	parallel(len(ids), func(i int) {
		var seed *profile.Profile
		if i < len(seeds) {
			seed = seeds[i]
		}
		written[i], errs[i] = d.settle(ctx, tn, ids[i], seed, t, prep)
	})
	var (
		failed error
		gone   []move
	)
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			ms, err := e.goneExits(ctx, tn, d.a, ids[i])
			failed = cmp.Or(failed, err)
			gone = append(gone, ms...)
		default:
			slog.ErrorContext(ctx, "segments: re-evaluate", "profile", ids[i], "cause", cause, "err", err)
			failed = cmp.Or(failed, err)
		}
	}
	if err := e.HandOff(ctx, tn, written); err != nil {
		failed = cmp.Or(failed, err)
	}
	if err := e.apply(ctx, tn, gone, d.now.Truncate(time.Millisecond), cause); err != nil {
		failed = cmp.Or(failed, err)
	}
	return failed
}

// errUnchanged stops a compare-and-swap that would write nothing new.
var errUnchanged = errors.New("segment: nothing to write")

// settle is Engine.settle for one profile: it returns the document as
// written (or as read, when nothing changed).
func (d *Decider) settle(ctx context.Context, tn store.Tenant, id string, seed *profile.Profile, t rule.Touched, prep func(*Decider, *profile.Profile) (bool, error)) (*profile.Profile, error) {
	var same *profile.Profile
	fn := func(p *profile.Profile) error {
		changed, err := d.load(ctx, tn, p)
		if err != nil {
			return err
		}
		if prep != nil {
			c, err := prep(d, p)
			if err != nil {
				return err
			}
			changed = changed || c
		}
		decided, err := d.Decide(ctx, tn, p, t)
		if err != nil {
			return err
		}
		if !changed && !decided {
			same = p
			return errUnchanged
		}
		return nil
	}
	var (
		p   *profile.Profile
		err error
	)
	if seed != nil {
		p, err = profile.UpdateAnyFrom(ctx, tn, seed, d.now, fn)
	} else {
		p, err = profile.UpdateAny(ctx, tn, id, d.now, fn)
	}
	if errors.Is(err, errUnchanged) {
		return same, nil
	}
	return p, err
}

// goneExits are the moves of a profile that no longer exists (merged
// away): out of every active segment the collection says it is in.
func (e *Engine) goneExits(ctx context.Context, tn store.Tenant, a *activeSet, profileID string) ([]move, error) {
	current, err := e.ProfileSegments(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	var moves []move
	for _, m := range current {
		if s, ok := a.byID[m.SegmentID]; ok && s.Status == Active {
			moves = append(moves, move{segmentID: s.ID, profileID: profileID})
		}
	}
	return moves, nil
}

// parallel runs fn(0..n-1), at most parallelWrites at once, and waits:
// the profiles of one call are written side by side so that the store
// commits their writes together (and, on MongoDB, their round trips
// overlap).
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, parallelWrites)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// parallelWrites bounds the profile writes a call runs at once.
const parallelWrites = 32

// rebuild backfills feats (new features) on every profile from stored
// events, then re-evaluates every profile, a page of profiles at a time
// (their moves written together). Profiles are visited by creation;
// events are read once, in one pass over the events index.
func (e *Engine) rebuild(ctx context.Context, tn store.Tenant, feats []rule.Feature, cause string) error {
	var counters map[string]map[string]rule.Counter
	if len(feats) > 0 {
		var err error
		if counters, err = scanEvents(ctx, tn, feats); err != nil {
			return err
		}
	}
	return profile.EachLivePage(ctx, tn, func(page []*profile.Profile) error {
		return e.reevaluatePage(ctx, tn, page, feats, counters, cause, rule.Touched{All: true})
	})
}

// scanEvents counts every stored event of the workspace for feats, by
// profile.
func scanEvents(ctx context.Context, tn store.Tenant, feats []rule.Feature) (map[string]map[string]rule.Counter, error) {
	names := map[string]bool{}
	for _, f := range feats {
		names[f.Name] = true
	}
	out := map[string]map[string]rule.Counter{}
	err := timeline.ScanEvents(ctx, tn, func(name string) bool { return names[name] }, func(ev *timeline.Event) error {
		m := out[ev.ProfileID]
		if m == nil {
			m = map[string]rule.Counter{}
			out[ev.ProfileID] = m
		}
		countInto(m, feats, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Reading tells whether a write that touched t can change any active
// segment of the workspace: a write whose re-decision would read many
// people (an account's contacts) asks first.
func (e *Engine) Reading(ctx context.Context, tn store.Tenant, t rule.Touched) (bool, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return false, err
	}
	return len(affected(a.segs, t, false)) > 0, nil
}

// Redecide re-decides profiles ids (read afresh) for what t can affect:
// the people a change elsewhere concerns (an account's contacts). A
// failure is logged.
func (e *Engine) Redecide(ctx context.Context, tn store.Tenant, ids []string, cause string, t rule.Touched) {
	if err := e.reevaluateAll(ctx, tn, ids, nil, cause, t); err != nil {
		slog.ErrorContext(ctx, "segments: re-decide", "profiles", len(ids), "cause", cause, "err", err)
	}
}
