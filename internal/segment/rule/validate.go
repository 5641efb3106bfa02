package rule

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// RootPath is the field path Validate's errors start with; callers that
// validate a rule under another input field replace this prefix.
const RootPath = "rule"

// Validate checks a rule tree before it is saved or previewed: exactly one
// node kind per node, operators and value types, windows, limits (depth,
// nodes) and inSegment references. resolveSegment returns the rule of a
// segment by id (nil rule and true for a static segment), false if there is
// no such segment. Use ValidateFor to also reject cycles through the
// segment being saved (Validate alone sees them only if resolveSegment
// returns the new rule for that segment's id). Errors are *apperr.Error (BAD_USER_INPUT) whose Field is a
// path such as "rule.and[1].event.window".
func Validate(r Rule, resolveSegment func(id string) (*Rule, bool)) error {
	return validate(r, Lookups{Segment: resolveSegment}, nil)
}

// Lookups are what validation checks a rule's references against.
type Lookups struct {
	// Segment returns the rule of a segment by id (nil rule and true for a
	// static segment), false if there is no such segment.
	Segment func(id string) (*Rule, bool)
	// Purpose tells whether a consent purpose exists. When nil, every
	// consent node is refused (no purposes to check against).
	Purpose func(key string) bool
	// Computed tells whether a computed trait is defined. When nil, every
	// computed node is refused.
	Computed func(key string) bool
	// IdentifierType tells whether an identifier type is declared in the
	// workspace. When nil, every identifier node is refused.
	IdentifierType func(name string) bool
	// LifecycleStage tells whether a lifecycle stage exists. When nil,
	// every lifecycleStage node is refused.
	LifecycleStage func(name string) bool
	// DealStage tells whether a pipeline exists (stage "") and has a
	// stage. When nil, every deal node naming a pipeline is refused.
	DealStage func(pipeline, stage string) bool
}

// ValidateWith is ValidateFor (selfID may be empty) with every lookup.
func ValidateWith(selfID string, r Rule, l Lookups) error {
	var chain []string
	if selfID != "" {
		chain = []string{selfID}
	}
	return validate(r, l, chain)
}

// ValidateFor is Validate for the rule of segment selfID (an update, or a
// create with the id already chosen): a reference back to selfID, direct or
// through other segments, is a cycle, reported from selfID.
func ValidateFor(selfID string, r Rule, resolveSegment func(id string) (*Rule, bool)) error {
	return ValidateWith(selfID, r, Lookups{Segment: resolveSegment})
}

func validate(r Rule, l Lookups, chain []string) error {
	v := validator{resolve: l.Segment, purpose: l.Purpose, computed: l.Computed, idType: l.IdentifierType, stage: l.LifecycleStage, dealStage: l.DealStage}
	if err := v.node(&r, RootPath, 1); err != nil {
		return err
	}
	return v.refs(&r, RootPath, chain, true)
}

type validator struct {
	resolve   func(string) (*Rule, bool)
	purpose   func(string) bool
	computed  func(string) bool
	idType    func(string) bool
	stage     func(string) bool
	dealStage func(pipeline, stage string) bool
	nodes     int
}

func kinds(r *Rule) []string {
	var k []string
	if r.And != nil {
		k = append(k, "and")
	}
	if r.Or != nil {
		k = append(k, "or")
	}
	if r.Not != nil {
		k = append(k, "not")
	}
	if r.Trait != nil {
		k = append(k, "trait")
	}
	if r.Event != nil {
		k = append(k, "event")
	}
	if r.LastEvent != nil {
		k = append(k, "lastEvent")
	}
	if r.Profile != nil {
		k = append(k, "profile")
	}
	if r.InSegment != "" {
		k = append(k, "inSegment")
	}
	if r.Computed != nil {
		k = append(k, "computed")
	}
	if r.Consent != nil {
		k = append(k, "consent")
	}
	if r.Identifier != nil {
		k = append(k, "identifier")
	}
	if r.Lifecycle != nil {
		k = append(k, "lifecycleStage")
	}
	if r.Ticket != nil {
		k = append(k, "ticket")
	}
	if r.Deal != nil {
		k = append(k, "deal")
	}
	if r.Account != nil {
		k = append(k, "account")
	}
	return k
}

const kindList = "and, or, not, trait, event, lastEvent, profile, inSegment, consent, computed, identifier, lifecycleStage, ticket, deal, account"

func (v *validator) node(r *Rule, path string, depth int) error {
	v.nodes++
	if v.nodes > MaxNodes {
		return apperr.Invalid(path, "a rule has at most %d nodes", MaxNodes)
	}
	if depth > MaxDepth {
		return apperr.Invalid(path, "a rule is at most %d levels deep", MaxDepth)
	}
	k := kinds(r)
	if len(k) == 0 {
		return apperr.Invalid(path, "exactly one of %s must be set (none is)", kindList)
	}
	if len(k) > 1 {
		return apperr.Invalid(path, "exactly one of %s must be set (got %s)", kindList, strings.Join(k, ", "))
	}
	switch {
	case r.And != nil || r.Or != nil:
		list, name := r.And, "and"
		if r.Or != nil {
			list, name = r.Or, "or"
		}
		if len(list) == 0 {
			return apperr.Invalid(path+"."+name, "needs at least one rule")
		}
		for i := range list {
			if err := v.node(&list[i], fmt.Sprintf("%s.%s[%d]", path, name, i), depth+1); err != nil {
				return err
			}
		}
	case r.Not != nil:
		return v.node(r.Not, path+".not", depth+1)
	case r.Trait != nil:
		return validCond(r.Trait, path+".trait")
	case r.Event != nil:
		return validEvent(r.Event, path+".event")
	case r.LastEvent != nil:
		p := path + ".lastEvent"
		if err := validName(r.LastEvent.Name, p+".name"); err != nil {
			return err
		}
		return validLast(&r.LastEvent.NotWithin, p+".notWithin")
	case r.Profile != nil:
		return validProfile(r.Profile, path+".profile")
	case r.InSegment != "":
		if len(r.InSegment) > MaxNameLen {
			return apperr.Invalid(path+".inSegment", "is too long")
		}
	case r.Computed != nil:
		p := path + ".computed"
		if err := validCond(r.Computed, p); err != nil {
			return err
		}
		if v.computed == nil || !v.computed(r.Computed.Key) {
			return apperr.Invalid(p+".key", "unknown computed trait %q", r.Computed.Key)
		}
	case r.Consent != nil:
		return v.consent(r.Consent, path+".consent")
	case r.Identifier != nil:
		p := path + ".identifier.type"
		switch t := r.Identifier.Type; {
		case t == "":
			return apperr.Invalid(p, "must not be empty")
		case len(t) > MaxKeyLen:
			return apperr.Invalid(p, "is longer than %d bytes", MaxKeyLen)
		case v.idType == nil || !v.idType(t):
			return apperr.Invalid(p, "unknown identifier type %q", t)
		}
	case r.Lifecycle != nil:
		p := path + ".lifecycleStage.in"
		if len(r.Lifecycle.In) == 0 || len(r.Lifecycle.In) > 16 {
			return apperr.Invalid(p, "lists 1 to 16 stages")
		}
		for i, st := range r.Lifecycle.In {
			if v.stage == nil || !v.stage(st) {
				return apperr.Invalid(fmt.Sprintf("%s[%d]", p, i), "unknown lifecycle stage %q", st)
			}
		}
	case r.Deal != nil:
		return v.deal(r.Deal, path+".deal")
	case r.Account != nil:
		return validAccount(r.Account, path+".account")
	case r.Ticket != nil:
		p := path + ".ticket"
		for _, l := range []struct {
			field      string
			got, known []string
		}{{"statuses", r.Ticket.Statuses, TicketStatuses}, {"priorities", r.Ticket.Priorities, TicketPriorities}} {
			if len(l.got) > len(l.known) {
				return apperr.Invalid(p+"."+l.field, "lists at most %d values", len(l.known))
			}
			for i, x := range l.got {
				if !slices.Contains(l.known, x) {
					return apperr.Invalid(fmt.Sprintf("%s.%s[%d]", p, l.field, i), "unknown value %q", x)
				}
			}
		}
	}
	return nil
}

// MaxAccountConds bounds an account node's trait and roll-up conditions.
const MaxAccountConds = 16

func validAccount(c *AccountCond, p string) error {
	if len(c.Traits) > MaxAccountConds {
		return apperr.Invalid(p+".traits", "lists at most %d conditions", MaxAccountConds)
	}
	for i := range c.Traits {
		if err := validCond(&c.Traits[i], fmt.Sprintf("%s.traits[%d]", p, i)); err != nil {
			return err
		}
	}
	if len(c.Rollups) > MaxAccountConds {
		return apperr.Invalid(p+".rollups", "lists at most %d conditions", MaxAccountConds)
	}
	for i, r := range c.Rollups {
		rp := fmt.Sprintf("%s.rollups[%d]", p, i)
		switch {
		case !slices.Contains(RollupFields, r.Field):
			return apperr.Invalid(rp+".field", "unknown roll-up %q", r.Field)
		case !slices.Contains([]Op{EQ, NE, GT, GTE, LT, LTE}, r.Op):
			return apperr.Invalid(rp+".op", "must be one of EQ, NE, GT, GTE, LT, LTE")
		case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
			return apperr.Invalid(rp+".value", "must be a finite number")
		}
	}
	return nil
}

func (v *validator) deal(c *DealCond, p string) error {
	if c.Pipeline != "" && (v.dealStage == nil || !v.dealStage(c.Pipeline, "")) {
		return apperr.Invalid(p+".pipeline", "unknown pipeline %q", c.Pipeline)
	}
	if len(c.Stages) > 0 && c.Pipeline == "" {
		return apperr.Invalid(p+".pipeline", "is required with stages (stage keys belong to a pipeline)")
	}
	if len(c.Stages) > 32 {
		return apperr.Invalid(p+".stages", "lists at most 32 stages")
	}
	for i, st := range c.Stages {
		if st == "" || !v.dealStage(c.Pipeline, st) {
			return apperr.Invalid(fmt.Sprintf("%s.stages[%d]", p, i), "pipeline %s has no stage %q", c.Pipeline, st)
		}
	}
	for i, st := range c.Statuses {
		if !slices.Contains(DealStatuses, st) {
			return apperr.Invalid(fmt.Sprintf("%s.statuses[%d]", p, i), "unknown status %q", st)
		}
	}
	if len(c.Statuses) > len(DealStatuses) {
		return apperr.Invalid(p+".statuses", "lists at most %d values", len(DealStatuses))
	}
	if c.Amount != nil {
		if !slices.Contains([]Op{EQ, NE, GT, GTE, LT, LTE}, c.Amount.Op) {
			return apperr.Invalid(p+".amount.op", "must be one of EQ, NE, GT, GTE, LT, LTE")
		}
		if math.IsNaN(c.Amount.Value) || math.IsInf(c.Amount.Value, 0) {
			return apperr.Invalid(p+".amount.value", "must be a finite number")
		}
	}
	if c.Currency != "" && (len(c.Currency) != 3 || strings.Trim(c.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		return apperr.Invalid(p+".currency", "must be an ISO 4217 code, e.g. EUR")
	}
	return nil
}

func (v *validator) consent(c *ConsentCond, path string) error {
	switch {
	case c.Purpose == "":
		return apperr.Invalid(path+".purpose", "must not be empty")
	case len(c.Purpose) > MaxKeyLen:
		return apperr.Invalid(path+".purpose", "is longer than %d bytes", MaxKeyLen)
	case v.purpose == nil || !v.purpose(c.Purpose):
		return apperr.Invalid(path+".purpose", "unknown purpose %q", c.Purpose)
	}
	if c.Channel != "" && !slices.Contains(ConsentChannels, c.Channel) {
		return apperr.Invalid(path+".channel", "must be one of %s", strings.Join(ConsentChannels, ", "))
	}
	if c.Status != "" && !slices.Contains(ConsentStatuses, c.Status) {
		return apperr.Invalid(path+".status", "must be one of %s", strings.Join(ConsentStatuses, ", "))
	}
	return nil
}

// refs checks that every inSegment reference exists, that chains stay
// within MaxNesting and that there is no cycle. chain holds the segment ids
// being followed.
func (v *validator) refs(r *Rule, path string, chain []string, top bool) error {
	var err error
	walk(r, path, func(n *Rule, p string) bool {
		if err != nil || n.InSegment == "" {
			return err == nil
		}
		id := n.InSegment
		for i, c := range chain {
			if c == id {
				err = apperr.Invalid(p+".inSegment", "segment reference cycle: %s", strings.Join(append(append([]string{}, chain[i:]...), id), " → "))
				return false
			}
		}
		if len(chain)+1 > MaxNesting {
			err = apperr.Invalid(p+".inSegment", "segments nest at most %d deep", MaxNesting)
			return false
		}
		var (
			sub *Rule
			ok  bool
		)
		if v.resolve != nil {
			sub, ok = v.resolve(id)
		}
		if !ok {
			if top {
				err = apperr.Invalid(p+".inSegment", "segment %q does not exist", id)
			} else {
				err = apperr.Invalid(p+".inSegment", "segment %q refers to segment %q, which does not exist", chain[len(chain)-1], id)
			}
			return false
		}
		if sub != nil {
			err = v.refs(sub, p+".inSegment", append(chain[:len(chain):len(chain)], id), false)
		}
		return err == nil
	})
	return err
}

// walk calls f on every node of r, depth first, with its path; f returns
// false to stop descending into that node.
func walk(r *Rule, path string, f func(n *Rule, path string) bool) {
	if !f(r, path) {
		return
	}
	for i := range r.And {
		walk(&r.And[i], fmt.Sprintf("%s.and[%d]", path, i), f)
	}
	for i := range r.Or {
		walk(&r.Or[i], fmt.Sprintf("%s.or[%d]", path, i), f)
	}
	if r.Not != nil {
		walk(r.Not, path+".not", f)
	}
}

func validName(name, path string) error {
	if strings.TrimSpace(name) == "" {
		return apperr.Invalid(path, "must not be empty")
	}
	if len(name) > MaxNameLen {
		return apperr.Invalid(path, "is longer than %d bytes", MaxNameLen)
	}
	return nil
}

// ValidatePath checks a dot path into a document (a trait key, an event
// property), naming field in errors.
func ValidatePath(key, field string) error {
	if key == "" {
		return apperr.Invalid(field, "must not be empty")
	}
	if len(key) > MaxKeyLen {
		return apperr.Invalid(field, "is longer than %d bytes", MaxKeyLen)
	}
	for _, seg := range strings.Split(key, ".") {
		if seg == "" {
			return apperr.Invalid(field, "has an empty segment in dot path %q", key)
		}
		if strings.HasPrefix(seg, "$") {
			return apperr.Invalid(field, "segments must not start with '$'")
		}
	}
	return nil
}

// ValidateFilter checks an event filter outside a rule (analytics): a
// name and property filters, as an event node has them.
func ValidateFilter(name string, where []PropertyCond, path string) error {
	return validEvent(&EventCond{Name: name, Where: where}, path)
}

func validCond(c *TraitCond, path string) error {
	if err := ValidatePath(c.Key, path+".key"); err != nil {
		return err
	}
	vp := path + ".value"
	switch c.Op {
	case In, NotIn:
		if c.Value != nil {
			return apperr.Invalid(vp, "%s takes values, not value", c.Op)
		}
		if len(c.Values) == 0 {
			return apperr.Invalid(path+".values", "%s needs at least one value", c.Op)
		}
		if len(c.Values) > MaxValues {
			return apperr.Invalid(path+".values", "at most %d values", MaxValues)
		}
		for i, x := range c.Values {
			if !isScalar(x) {
				return apperr.Invalid(fmt.Sprintf("%s.values[%d]", path, i), "must be a string, number, boolean or time")
			}
		}
		return nil
	}
	if c.Values != nil {
		return apperr.Invalid(path+".values", "only IN and NOT_IN take values")
	}
	switch c.Op {
	case EQ, NE, Contains:
		if !isScalar(c.Value) {
			return apperr.Invalid(vp, "%s needs a string, number, boolean or time", c.Op)
		}
	case GT, GTE, LT, LTE:
		_, num := toNumber(c.Value)
		_, str := c.Value.(string)
		if !num && !str && !isTimeValue(c.Value) {
			return apperr.Invalid(vp, "%s needs a number, string or time", c.Op)
		}
	case Exists:
		if _, ok := c.Value.(bool); c.Value != nil && !ok {
			return apperr.Invalid(vp, "EXISTS takes no value, or a boolean")
		}
	case StartsWith:
		if s, ok := c.Value.(string); !ok || s == "" {
			return apperr.Invalid(vp, "STARTS_WITH needs a non-empty string")
		}
	case "":
		return apperr.Invalid(path+".op", "must be set")
	default:
		return apperr.Invalid(path+".op", "unknown operator %q", c.Op)
	}
	return nil
}

func validEvent(e *EventCond, path string) error {
	if err := validName(e.Name, path+".name"); err != nil {
		return err
	}
	if len(e.Where) > MaxWhere {
		return apperr.Invalid(path+".where", "at most %d property filters", MaxWhere)
	}
	for i := range e.Where {
		if err := validCond(&e.Where[i], fmt.Sprintf("%s.where[%d]", path, i)); err != nil {
			return err
		}
	}
	if e.Count != nil {
		if !countOp(e.Count.Op) {
			return apperr.Invalid(path+".count.op", "must be one of EQ, NE, GT, GTE, LT, LTE")
		}
		if e.Count.Value < 0 || e.Count.Value > MaxCount {
			return apperr.Invalid(path+".count.value", "must be between 0 and %d", MaxCount)
		}
	}
	if w := e.Window; w != nil {
		wp := path + ".window"
		switch {
		case w.Last != nil && w.Between != nil:
			return apperr.Invalid(wp, "exactly one of last, between must be set (got both)")
		case w.Last != nil:
			return validLast(w.Last, wp+".last")
		case w.Between != nil:
			b := w.Between
			if !isMidnight(b.From) {
				return apperr.Invalid(wp+".between.from", "must be a UTC midnight (windows are whole UTC days)")
			}
			if !isMidnight(b.To) {
				return apperr.Invalid(wp+".between.to", "must be a UTC midnight (windows are whole UTC days)")
			}
			if !b.From.Before(b.To) {
				return apperr.Invalid(wp+".between", "from must be before to")
			}
			if b.To.Sub(b.From) > MaxBetweenDays*24*time.Hour {
				return apperr.Invalid(wp+".between", "spans at most %d days", MaxBetweenDays)
			}
		default:
			return apperr.Invalid(wp, "exactly one of last, between must be set (none is)")
		}
	}
	return nil
}

func isMidnight(t time.Time) bool {
	return !t.IsZero() && t.Equal(t.UTC().Truncate(24*time.Hour))
}

func countOp(op Op) bool {
	switch op {
	case EQ, NE, GT, GTE, LT, LTE:
		return true
	}
	return false
}

func validLast(l *Last, path string) error {
	max := 0
	switch l.Unit {
	case Minutes:
		max = MaxLastMinutes
	case Hours:
		max = MaxLastHours
	case Days:
		max = MaxLastDays
	case "":
		return apperr.Invalid(path+".unit", "must be set")
	default:
		return apperr.Invalid(path+".unit", "must be one of MINUTES, HOURS, DAYS")
	}
	if l.Amount < 1 || l.Amount > max {
		return apperr.Invalid(path+".amount", "must be between 1 and %d for %s", max, l.Unit)
	}
	return nil
}

func validProfile(p *ProfileCond, path string) error {
	if !countOp(p.Op) {
		return apperr.Invalid(path+".op", "must be one of EQ, NE, GT, GTE, LT, LTE")
	}
	switch p.Field {
	case CreatedAt, FirstSeenAt, LastSeenAt:
		if _, ok := toInstant(p.Value); !ok {
			return apperr.Invalid(path+".value", "%s needs a time (RFC 3339)", p.Field)
		}
	case EventCount:
		n, ok := toNumber(p.Value)
		if !ok || (!n.isInt && n.f != math.Trunc(n.f)) {
			return apperr.Invalid(path+".value", "EVENT_COUNT needs an integer")
		}
	case "":
		return apperr.Invalid(path+".field", "must be set")
	default:
		return apperr.Invalid(path+".field", "must be one of CREATED_AT, FIRST_SEEN_AT, LAST_SEEN_AT, EVENT_COUNT")
	}
	return nil
}
