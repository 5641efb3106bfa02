package rule

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Input is what a rule is evaluated against: one profile document.
type Input struct {
	Traits      map[string]any
	CreatedAt   time.Time
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	EventCount  int64
	// Features holds the profile's counters by feature key (Feature.Key);
	// a missing counter counts zero.
	Features map[string]Counter
	// Segment resolves inSegment references. For a dynamic segment return
	// its rule: it is evaluated on this same input, so nested segments are
	// always consistent and their windows feed nextEvalAt. For a static
	// segment return a nil Rule and the stored membership. When Segment is
	// nil or the id is unknown, the node is false.
	Segment func(id string) (SegmentRef, bool)
	// Consent is the profile's consent entries by ConsentKey, oldest first
	// (profile.Profile.Consent).
	Consent map[string][]ConsentEntry
	// ConsentDefaults holds the purposes allowed without a record (lawful
	// basis other than CONSENT); a purpose missing here needs a GRANTED
	// record.
	ConsentDefaults map[string]bool
	// Computed returns the value of a computed trait at a time (nil when
	// it has none) and the next moment after it that the value changes
	// with time alone (zero: never). Nil: every computed node is false.
	Computed func(key string, at time.Time) (any, time.Time)
	// Score returns the value of a built-in score (a computed key under
	// ScoresPrefix) at a time, and the earliest moment after it that its
	// comparison with any of thresholds can change with time alone (zero:
	// never). Scores such as churn risk change continuously, so unlike
	// Computed they report threshold crossings rather than every change.
	// Nil: score nodes are false.
	Score func(key string, at time.Time, thresholds []float64) (any, time.Time)
	// Holds tells whether the profile holds an identifier of a type. Nil:
	// it holds none.
	Holds func(typ string) bool
	// Lifecycle is the person's lifecycle stage ("" for none).
	Lifecycle string
	// Tickets are the person's tickets (nil: none).
	Tickets []TicketFact
	// Deals are the deals the person is a contact of (nil: none).
	Deals []DealFact
	// Accounts are the accounts the person is a contact of (nil: none).
	Accounts []AccountFact
}

// ScoresPrefix starts the computed keys that name built-in scores
// (package scores) rather than computed traits.
const ScoresPrefix = "scores."

// SegmentRef is a referenced segment: its rule (dynamic) or, when Rule is
// nil, the profile's stored membership (static).
type SegmentRef struct {
	Rule   *Rule
	Member bool
}

// Evaluate tells whether the profile in matches r at now, and nextEvalAt:
// the earliest moment after now at which the answer could change without
// any new write (a relative window edge, a consent record's expiry), zero
// if it cannot. Re-evaluating at nextEvalAt yields the next one. Only
// last-windows (event, lastEvent) and consent expiries depend on time;
// between windows, traits and profile fields (absolute values) do not. It never panics on unexpected value types.
func Evaluate(r Rule, in Input, now time.Time) (match bool, nextEvalAt time.Time) {
	e := evaluator{in: &in, now: now.UTC()}
	return e.node(&r, 0)
}

type evaluator struct {
	in  *Input
	now time.Time
}

// node returns the node's value and the earliest moment it could change
// (zero: never).
func (e *evaluator) node(r *Rule, nesting int) (bool, time.Time) {
	switch {
	case r.And != nil:
		return e.combine(r.And, nesting, true)
	case r.Or != nil:
		return e.combine(r.Or, nesting, false)
	case r.Not != nil:
		v, next := e.node(r.Not, nesting)
		return !v, next
	case r.Trait != nil:
		return matchCond(r.Trait, e.in.Traits), time.Time{}
	case r.Event != nil:
		return e.event(r.Event)
	case r.LastEvent != nil:
		k := r.LastEvent.key
		if k == "" {
			k = FeatureKey(r.LastEvent.Name, nil)
		}
		c := e.in.Features[k]
		return lastWindow(c, r.LastEvent.NotWithin, CountCond{Op: EQ, Value: 0}, e.now)
	case r.Profile != nil:
		return e.profile(r.Profile), time.Time{}
	case r.InSegment != "":
		if e.in.Segment == nil || nesting >= MaxNesting {
			return false, time.Time{}
		}
		ref, ok := e.in.Segment(r.InSegment)
		if !ok {
			return false, time.Time{}
		}
		if ref.Rule == nil {
			return ref.Member, time.Time{}
		}
		return e.node(ref.Rule, nesting+1)
	case r.Consent != nil:
		return e.consent(r.Consent)
	case r.Computed != nil:
		return e.computed(r.Computed)
	case r.Identifier != nil:
		held := e.in.Holds != nil && e.in.Holds(r.Identifier.Type)
		return held == r.Identifier.Want(), time.Time{}
	case r.Lifecycle != nil:
		return e.in.Lifecycle != "" && slices.Contains(r.Lifecycle.In, e.in.Lifecycle), time.Time{}
	case r.Ticket != nil:
		return slices.ContainsFunc(e.in.Tickets, r.Ticket.matches), time.Time{}
	case r.Deal != nil:
		return slices.ContainsFunc(e.in.Deals, r.Deal.matches), time.Time{}
	case r.Account != nil:
		return slices.ContainsFunc(e.in.Accounts, r.Account.matches), time.Time{}
	}
	return false, time.Time{} // empty
}

// combine evaluates and (all) or or (!all). For and: when true, it can
// change as soon as any child changes; when false, not before every false
// child has changed (never if one of them never changes). Or is the dual.
func (e *evaluator) combine(list []Rule, nesting int, all bool) (bool, time.Time) {
	var (
		decided     bool      // some child has the deciding value (false for and)
		decidedNext time.Time // latest change among deciding children
		forever     bool      // a deciding child never changes
		minNext     time.Time // earliest change among all children
	)
	for i := range list {
		v, next := e.node(&list[i], nesting)
		if v != all {
			decided = true
			if next.IsZero() {
				forever = true
				break
			}
			if next.After(decidedNext) {
				decidedNext = next
			}
		}
		if !next.IsZero() && (minNext.IsZero() || next.Before(minNext)) {
			minNext = next
		}
	}
	switch {
	case forever:
		return !all, time.Time{}
	case decided:
		return !all, decidedNext
	}
	return all, minNext
}

func (e *evaluator) event(ev *EventCond) (bool, time.Time) {
	k := ev.key
	if k == "" {
		k = FeatureKey(ev.Name, ev.Where)
	}
	c := e.in.Features[k]
	cc := DefaultCount
	if ev.Count != nil {
		cc = *ev.Count
	}
	w := ev.Window
	switch {
	case w == nil:
		return countHolds(cc, c.Total), time.Time{}
	case w.Last != nil:
		return lastWindow(c, *w.Last, cc, e.now)
	case w.Between != nil:
		n := c.Days.Sum(dayIndex(w.Between.From), dayIndex(w.Between.To)-1)
		return countHolds(cc, n), time.Time{}
	}
	return countHolds(cc, c.Total), time.Time{}
}

// lastWindow evaluates a count over a last-window and finds the first unit
// boundary after now where the comparison flips: as time passes, buckets
// leave the window (bucket b leaves at the start of unit b+W) and future
// buckets enter it (at the start of their unit).
func lastWindow(c Counter, l Last, cc CountCond, now time.Time) (bool, time.Time) {
	var (
		buckets Buckets
		width   int64
		idx     int64
		unitSec int64
	)
	switch l.Unit {
	case Days:
		buckets, width, idx, unitSec = c.Days, int64(l.Amount), dayIndex(now), 86400
	case Hours:
		buckets, width, idx, unitSec = c.Minutes, int64(l.Amount)*60, minuteIndex(now), 60
	case Minutes:
		buckets, width, idx, unitSec = c.Minutes, int64(l.Amount), minuteIndex(now), 60
	default:
		return false, time.Time{}
	}
	if width < 1 {
		return false, time.Time{}
	}
	type step struct{ at, delta int64 }
	var (
		count int64
		steps []step
	)
	lo := idx - width + 1
	for _, x := range buckets[buckets.find(lo):] {
		if x.At <= idx {
			count += x.N
		} else {
			steps = append(steps, step{x.At, x.N})
		}
		steps = append(steps, step{x.At + width, -x.N})
	}
	cur := countHolds(cc, count)
	if len(steps) == 0 {
		return cur, time.Time{}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	for i := 0; i < len(steps); {
		at := steps[i].at
		for ; i < len(steps) && steps[i].at == at; i++ {
			count += steps[i].delta
		}
		if countHolds(cc, count) != cur {
			return cur, time.Unix(at*unitSec, 0).UTC()
		}
	}
	return cur, time.Time{}
}

// maxComputedSteps bounds how many of a computed value's future changes
// are tried for the one that flips the comparison; past it, the next
// change itself is reported (early is safe: re-evaluation finds nothing).
const maxComputedSteps = 64

// computed compares a computed value now and walks its future changes
// (window edges) to the first that flips the comparison.
func (e *evaluator) computed(c *ComputedCond) (bool, time.Time) {
	if e.in.Computed == nil && !strings.HasPrefix(c.Key, ScoresPrefix) {
		return false, time.Time{}
	}
	holds := func(v any) bool { return matchCond(c, map[string]any{c.Key: v}) }
	if strings.HasPrefix(c.Key, ScoresPrefix) {
		if e.in.Score == nil {
			return false, time.Time{}
		}
		// Score keys have dots, which matchCond would read as a path.
		v, next := e.in.Score(c.Key, e.now, thresholds(c))
		cc := *c
		cc.Key = "score"
		return matchCond(&cc, map[string]any{"score": v}), next
	}
	v, next := e.in.Computed(c.Key, e.now)
	cur := holds(v)
	for i := 0; !next.IsZero(); i++ {
		if i == maxComputedSteps {
			return cur, next
		}
		var nv any
		at := next
		nv, next = e.in.Computed(c.Key, at)
		if holds(nv) != cur {
			return cur, at
		}
	}
	return cur, time.Time{}
}

// thresholds are the numbers a condition compares with: where a
// continuous score's comparison can flip.
func thresholds(c *ComputedCond) []float64 {
	var out []float64
	for _, v := range append([]any{c.Value}, c.Values...) {
		if n, ok := toNumber(v); ok {
			out = append(out, n.float())
		}
	}
	return out
}

func (e *evaluator) profile(p *ProfileCond) bool {
	var t time.Time
	switch p.Field {
	case EventCount:
		n, ok := toNumber(p.Value)
		return ok && cmpHolds(p.Op, cmpNumbers(number{i: e.in.EventCount, isInt: true}, n))
	case CreatedAt:
		t = e.in.CreatedAt
	case FirstSeenAt:
		t = e.in.FirstSeenAt
	case LastSeenAt:
		t = e.in.LastSeenAt
	default:
		return false
	}
	v, ok := toInstant(p.Value)
	return ok && cmpHolds(p.Op, t.Compare(v))
}

// Deps is what a rule reads, so that the membership engine re-evaluates a
// segment only after writes that can affect it. Every list is sorted and
// without duplicates.
type Deps struct {
	// TraitKeys are dot paths; see TouchesTrait.
	TraitKeys []string
	// EventNames are the names of event and lastEvent nodes.
	EventNames []string
	// Features are the keys of the counters the rule reads (Features(r)).
	Features []string
	// ProfileFields: LAST_SEEN_AT, FIRST_SEEN_AT and EVENT_COUNT change
	// with every event, whatever its name; CREATED_AT never changes.
	ProfileFields []ProfileField
	// Segments are the directly referenced segment ids; a caller unions
	// their own Deps (transitively) or re-evaluates dependents when a
	// referenced segment's membership changes.
	Segments []string
	// Purposes are the purposes of consent nodes.
	Purposes []string
	// Computed are the keys of computed nodes.
	Computed []string
	// IdentifierTypes are the types of identifier nodes.
	IdentifierTypes []string
	// Lifecycle: the rule reads the lifecycle stage.
	Lifecycle bool
	// Tickets: the rule reads the person's tickets.
	Tickets bool
	// Deals: the rule reads the deals the person is a contact of.
	Deals bool
	// Accounts: the rule reads the accounts the person is a contact of.
	Accounts bool
	// Timed: the rule has a last-window or a consent node, so its answer
	// can change with time alone (Evaluate reports when, as nextEvalAt).
	Timed bool
}

// DependsOn lists what r reads (not following inSegment).
func DependsOn(r Rule) Deps {
	traits, names, fields, segs, purposes, computed, idTypes := set{}, set{}, set{}, set{}, set{}, set{}, set{}
	var d Deps
	walk(&r, "", func(n *Rule, _ string) bool {
		switch {
		case n.Trait != nil:
			traits.add(n.Trait.Key)
		case n.Event != nil:
			names.add(n.Event.Name)
			if n.Event.Window != nil && n.Event.Window.Last != nil {
				d.Timed = true
			}
		case n.LastEvent != nil:
			names.add(n.LastEvent.Name)
			d.Timed = true
		case n.Profile != nil:
			fields.add(string(n.Profile.Field))
		case n.InSegment != "":
			segs.add(n.InSegment)
		case n.Consent != nil:
			purposes.add(n.Consent.Purpose)
			d.Timed = true
		case n.Computed != nil:
			computed.add(n.Computed.Key)
			d.Timed = true // a windowed value moves with time
		case n.Identifier != nil:
			idTypes.add(n.Identifier.Type)
		case n.Lifecycle != nil:
			d.Lifecycle = true
		case n.Ticket != nil:
			d.Tickets = true
		case n.Deal != nil:
			d.Deals = true
		case n.Account != nil:
			d.Accounts = true
		}
		return true
	})
	d.TraitKeys, d.EventNames, d.Segments, d.Purposes, d.Computed = traits.sorted(), names.sorted(), segs.sorted(), purposes.sorted(), computed.sorted()
	d.IdentifierTypes = idTypes.sorted()
	for _, f := range fields.sorted() {
		d.ProfileFields = append(d.ProfileFields, ProfileField(f))
	}
	for _, f := range Features(r) {
		d.Features = append(d.Features, f.Key)
	}
	return d
}

// TouchesTrait tells whether a write to trait key (a dot path) can change
// a trait the rule reads: the same key, a parent or a child of one.
func (d Deps) TouchesTrait(key string) bool {
	for _, k := range d.TraitKeys {
		if k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// Prepare caches the feature key of every event and lastEvent node of r
// in the node, so Evaluate does not compute it per call. A prepared rule
// must not be changed afterwards (nor prepared concurrently with use).
func Prepare(r *Rule) {
	walk(r, "", func(n *Rule, _ string) bool {
		switch {
		case n.Event != nil:
			n.Event.key = FeatureKey(n.Event.Name, n.Event.Where)
		case n.LastEvent != nil:
			n.LastEvent.key = FeatureKey(n.LastEvent.Name, nil)
		}
		return true
	})
}

// Touched is what one write changed on a profile, to pick the segments
// to re-evaluate (Deps.Affected). The zero value changed nothing.
type Touched struct {
	// All: unknown or broad change (new profile, identify, merge):
	// every segment is affected.
	All bool
	// TraitKeys are the trait paths written.
	TraitKeys []string
	// EventNames are the names of the events counted; Seen is set with
	// them (lastSeenAt, firstSeenAt and eventCount changed).
	EventNames []string
	Seen       bool
	// Purposes are the purposes whose consent changed.
	Purposes []string
	// Computed are the computed traits whose state the write changed.
	Computed []string
	// Segments are segments whose rule is new to the profile (a build's
	// visit): they, and the segments that read them, are affected.
	Segments []string
	// Identifiers: the profile was given an identifier of a type it may
	// not have held (identifiers only move otherwise with merges and
	// unmerges, which set All).
	Identifiers bool
	// Lifecycle: the lifecycle stage changed.
	Lifecycle bool
	// Tickets: one of the person's tickets was opened or changed.
	Tickets bool
	// Deals: a deal the person is (or was) a contact of changed.
	Deals bool
	// Accounts: an account the person is (or was) a contact of, or one
	// of its counted roll-ups, changed.
	Accounts bool
}

// Affected tells whether a write that changed t can change the answer of
// a rule with these deps (not following inSegment: the caller handles
// membership changes of referenced segments).
func (d Deps) Affected(t Touched) bool {
	if t.All {
		return true
	}
	for _, k := range t.TraitKeys {
		if d.TouchesTrait(k) {
			return true
		}
	}
	if t.Seen {
		for _, f := range d.ProfileFields {
			if f != CreatedAt {
				return true
			}
		}
	}
	for _, n := range t.EventNames {
		for _, m := range d.EventNames {
			if n == m {
				return true
			}
		}
	}
	for _, p := range t.Purposes {
		for _, q := range d.Purposes {
			if p == q {
				return true
			}
		}
	}
	for _, k := range t.Computed {
		for _, q := range d.Computed {
			if k == q {
				return true
			}
		}
	}
	return t.Identifiers && len(d.IdentifierTypes) > 0 || t.Lifecycle && d.Lifecycle || t.Tickets && d.Tickets || t.Deals && d.Deals || t.Accounts && d.Accounts
}

type set map[string]bool

func (s set) add(k string) { s[k] = true }

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
