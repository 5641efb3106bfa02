package segment

import (
	"context"
	"fmt"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Limits caps what segments may cost a workspace. Every distinct feature
// (an event node's name and filters, a lastEvent name) of an active dynamic
// segment is a counter on every profile document, backfilled from every
// stored event when it first appears and updated by every ingest: without
// caps, segments of 99 or-ed events with distinct filters made each
// createSegment slower than the last (1.5 s, then 30 s by the 12th) and
// grew the database by about 40 MB each (issue 14, item 7).
//
// A zero field takes its DefaultLimits value.
type Limits struct {
	// Segments is the most active segments (dynamic and static) a
	// workspace may have. Archived segments do not count.
	Segments int
	// EventFeatures is the most distinct features the active dynamic
	// segments of a workspace may count together. A feature shared by
	// several segments counts once.
	EventFeatures int
	// RuleEvents is the most event and lastEvent nodes one rule may have
	// (repeated ones included; segmentPreview too).
	RuleEvents int
}

// DefaultLimits are the caps when none are configured:
//
//   - 500 active segments: ten times the 50 of the ingest benchmarks and
//     the scale; each active segment is evaluated on the writes
//     that touch what it reads, and its members are kept.
//   - 200 distinct event features: about 40 features of a 50-segment
//     workspace (the benchmarks' mixed set counts 30 over 10 event names;
//     the e2e and property tests fewer than 40) with room to spare, while a
//     profile stays within a few hundred counters (each up to 400 day and
//     2,880 minute buckets, a few hundred bytes for a typical profile):
//     the issue grew by ~40 MB per 99 features, so 200 bounds the counters
//     at about 80 MB on that data set.
//   - 20 event nodes per rule: hand-written audiences use a handful (the
//     benchmarks and tests at most 10); 20 leaves room for an "any of these
//     events" list while one call can add at most a tenth of the feature
//     cap (the rules had 99).
var DefaultLimits = Limits{Segments: 500, EventFeatures: 200, RuleEvents: 20}

// orDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) orDefaults() Limits {
	if l.Segments <= 0 {
		l.Segments = DefaultLimits.Segments
	}
	if l.EventFeatures <= 0 {
		l.EventFeatures = DefaultLimits.EventFeatures
	}
	if l.RuleEvents <= 0 {
		l.RuleEvents = DefaultLimits.RuleEvents
	}
	return l
}

// checkRuleSize refuses a rule over the RuleEvents cap (field paths under
// rule.RootPath).
func (l Limits) checkRuleSize(r rule.Rule) error {
	return rule.CheckEventNodes(r, l.orDefaults().RuleEvents)
}

// check refuses saving s, as it would be stored, beside the workspace's
// active segments (s's stored version among them when it is an update):
//   - a segment not active yet over the Segments cap (field "input");
//   - a change adding features no active segment counts, when the
//     features counted afterwards would be more than EventFeatures
//     (field "input.rule").
//
// A change adding no feature always passes, so lowering the caps below
// what a workspace holds never blocks renames or rules that only drop or
// reuse features. Errors are BAD_USER_INPUT.
func (l Limits) check(active []*Segment, s *Segment) error {
	l = l.orDefaults()
	var others []*Segment
	var prev *Segment
	for _, a := range active {
		if a.ID == s.ID {
			prev = a
			continue
		}
		others = append(others, a)
	}
	if prev == nil && len(others)+1 > l.Segments {
		return apperr.Invalid("input", "this workspace has %d active segments, the most it may have; archive one to make room", len(others))
	}
	if s.Kind != Dynamic {
		return nil
	}
	counted := map[string]bool{}
	for _, a := range others {
		if a.Kind == Dynamic {
			for _, f := range a.Features {
				counted[f.Key] = true
			}
		}
	}
	before := map[string]bool{}
	if prev != nil && prev.Kind == Dynamic {
		for _, f := range prev.Features {
			before[f.Key] = true
		}
	}
	added := false
	after := len(counted)
	for _, f := range s.Features {
		if !counted[f.Key] {
			counted[f.Key] = true
			after++
			added = added || !before[f.Key]
		}
	}
	if added && after > l.EventFeatures {
		return apperr.Invalid("input.rule", "with this rule the active segments of this workspace would count %d distinct events (each event name with its filters, each lastEvent name), more than the %d allowed; reuse the events other segments count, or archive segments", after, l.EventFeatures)
	}
	return nil
}

// withinLimits checks s (with its new rule, nil when the rule does not
// change) against the engine's Limits and, when it fits, runs save, which
// must store s. The check and save run under the engine's slot lock, on
// the active segments read from the store (not the cache), so concurrent
// creates through this process cannot overshoot a cap; through several
// instances at the same moment, each may add one.
func (e *Engine) withinLimits(ctx context.Context, tn store.Tenant, s *Segment, rl *rule.Rule, save func() error) error {
	if rl != nil {
		if err := e.limits.checkRuleSize(*rl); err != nil {
			return fieldErr(err, "input.rule")
		}
	}
	e.slots.Lock()
	defer e.slots.Unlock()
	active, err := loadActive(ctx, tn)
	if err != nil {
		return err
	}
	if err := e.limits.check(active, s); err != nil {
		return err
	}
	return save()
}

// loadActive reads the workspace's active segments from the store.
func loadActive(ctx context.Context, tn store.Tenant) ([]*Segment, error) {
	docs, err := tn.C(Segments).Find(ctx, store.Query{Index: SegmentsByStatus, Eq: []any{Active}})
	if err != nil {
		return nil, fmt.Errorf("load segments: %w", err)
	}
	out := make([]*Segment, 0, len(docs))
	for _, d := range docs {
		var s Segment
		if err := d.Decode(&s); err != nil {
			return nil, fmt.Errorf("decode segment: %w", err)
		}
		out = append(out, &s)
	}
	return out, nil
}
