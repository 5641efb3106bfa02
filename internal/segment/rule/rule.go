// Package rule holds the segment rule tree, its validation, the
// per-profile event features the rules are evaluated from, and the one
// evaluator used both in real time (after each write) and in bulk
// (preview, counts, rebuilds). It is pure: no store, no GraphQL.
//
// # Window semantics
//
// Time windows are counted in whole units, so that per-profile counters in
// buckets answer them exactly:
//
//   - last {n, DAYS} covers the current UTC day and the n−1 UTC days before
//     it, whole days (an occurrence later today, up to the 24 h ingest allows
//     in the future, is already inside). 1 ≤ n ≤ MaxLastDays.
//   - last {n, HOURS} is last {60·n, MINUTES}; 1 ≤ n ≤ MaxLastHours.
//   - last {n, MINUTES} covers the current UTC minute and the n−1 minutes
//     before it, whole minutes. 1 ≤ n ≤ MaxLastMinutes.
//   - between {from, to} covers from ≤ occurredAt < to; from and to must be
//     UTC midnights (whole days), from < to, at most MaxBetweenDays apart.
//     It does not depend on the evaluation time.
//   - no window: every occurrence ever counted.
//
// lastEvent {name, notWithin} holds when no event of that name (any
// properties) occurred in the window last notWithin; a profile that never
// did it matches. Combine with an event node for "did it, but not lately".
//
// A window edge moves only at a UTC minute or midnight, which is what
// Evaluate's nextEvalAt reports.
package rule

import (
	"time"
)

// Rule is one node of a segment rule tree. Exactly one field is set. It is
// stored as is in segment documents (bson) and shown to API clients (json).
type Rule struct {
	And       []Rule          `bson:"and,omitempty" json:"and,omitempty"`
	Or        []Rule          `bson:"or,omitempty" json:"or,omitempty"`
	Not       *Rule           `bson:"not,omitempty" json:"not,omitempty"`
	Trait     *TraitCond      `bson:"trait,omitempty" json:"trait,omitempty"`
	Event     *EventCond      `bson:"event,omitempty" json:"event,omitempty"`
	LastEvent *InactivityCond `bson:"lastEvent,omitempty" json:"lastEvent,omitempty"`
	Profile   *ProfileCond    `bson:"profile,omitempty" json:"profile,omitempty"`
	// InSegment is the id of another segment the profile must belong to.
	InSegment string `bson:"inSegment,omitempty" json:"inSegment,omitempty"`

	// Consent holds when the profile's consent for a purpose and channel
	// has a status now (see ConsentCond).
	Consent *ConsentCond `bson:"consent,omitempty" json:"consent,omitempty"`

	// Computed compares a computed trait's value now (see ComputedCond).
	Computed *ComputedCond `bson:"computed,omitempty" json:"computed,omitempty"`

	// Identifier holds when the profile holds (or, Exists false, holds
	// no) identifier of a type (see IdentifierCond).
	Identifier *IdentifierCond `bson:"identifier,omitempty" json:"identifier,omitempty"`

	// Lifecycle holds when the person's lifecycle stage is one of a list
	// (see LifecycleCond).
	Lifecycle *LifecycleCond `bson:"lifecycleStage,omitempty" json:"lifecycleStage,omitempty"`

	// Ticket holds when the person has a ticket matching every field set
	// (see TicketCond).
	Ticket *TicketCond `bson:"ticket,omitempty" json:"ticket,omitempty"`

	// Deal holds when the person is a contact of a deal matching every
	// field set (see DealCond).
	Deal *DealCond `bson:"deal,omitempty" json:"deal,omitempty"`

	// Account holds when the person is a contact of an account matching
	// every condition (see AccountCond).
	Account *AccountCond `bson:"account,omitempty" json:"account,omitempty"`
}

// AccountCond tests the accounts the person is a contact of: it holds
// when one of them matches every trait condition and every roll-up
// condition ("works at a gold account with an open deal" is {traits:
// [{key: "tier", op: EQ, value: "gold"}], rollups: [{field: OPEN_DEALS,
// op: GTE, value: 1}]}). Trait conditions have the trait node's
// semantics, on the account's traits. Nothing set: a contact of an
// account.
type AccountCond struct {
	Traits  []TraitCond  `bson:"traits,omitempty" json:"traits,omitempty"`
	Rollups []RollupCond `bson:"rollups,omitempty" json:"rollups,omitempty"`
}

// RollupCond compares one of an account's counted roll-ups: Op is EQ,
// NE, GT, GTE, LT or LTE.
type RollupCond struct {
	Field RollupField `bson:"field" json:"field"`
	Op    Op          `bson:"op" json:"op"`
	Value float64     `bson:"value" json:"value"`
}

// RollupField names an account roll-up a rule can compare. They are the
// counts CRM writes change (links, deals, tickets); the activity,
// engagement and health roll-ups, which move with every contact's events
// and with time alone, are not among them.
type RollupField string

// The roll-ups of RollupCond.
const (
	RollupContacts        RollupField = "CONTACTS"
	RollupOpenDeals       RollupField = "OPEN_DEALS"
	RollupWonDeals        RollupField = "WON_DEALS"
	RollupLostDeals       RollupField = "LOST_DEALS"
	RollupOpenTickets     RollupField = "OPEN_TICKETS"
	RollupBreachedTickets RollupField = "BREACHED_TICKETS"
)

// RollupFields lists them.
var RollupFields = []RollupField{RollupContacts, RollupOpenDeals, RollupWonDeals, RollupLostDeals, RollupOpenTickets, RollupBreachedTickets}

// AccountFact is what an account node reads of one of the person's
// accounts.
type AccountFact struct {
	Traits  map[string]any
	Rollups map[RollupField]int64
}

// matches tells whether account f satisfies c.
func (c *AccountCond) matches(f AccountFact) bool {
	for i := range c.Traits {
		if !matchCond(&c.Traits[i], f.Traits) {
			return false
		}
	}
	for _, r := range c.Rollups {
		if !amountHolds(r.Op, float64(f.Rollups[r.Field]), r.Value) {
			return false
		}
	}
	return true
}

// DealCond tests the deals the person is a contact of: it holds when one
// of them matches every field set ("has an open deal in negotiation over
// 10,000 EUR" is {pipeline: "sales", stages: ["negotiation"], statuses:
// ["OPEN"], amount: {op: GT, value: 10000}, currency: "EUR"}). Stages are
// a pipeline's keys: they need Pipeline. The amount is in units of the
// deal's currency, and with no Currency compares deals in any currency.
// No field set: the person is a contact of a deal.
type DealCond struct {
	Pipeline string      `bson:"pipeline,omitempty" json:"pipeline,omitempty"`
	Stages   []string    `bson:"stages,omitempty" json:"stages,omitempty"`
	Statuses []string    `bson:"statuses,omitempty" json:"statuses,omitempty"`
	Amount   *AmountCond `bson:"amount,omitempty" json:"amount,omitempty"`
	Currency string      `bson:"currency,omitempty" json:"currency,omitempty"`
}

// AmountCond compares an amount: Op is EQ, NE, GT, GTE, LT or LTE.
type AmountCond struct {
	Op    Op      `bson:"op" json:"op"`
	Value float64 `bson:"value" json:"value"`
}

// DealFact is what a deal node reads of one deal.
type DealFact struct {
	Pipeline, Stage, Status, Currency string
	Amount                            float64
}

// DealStatuses are the deal statuses (package crm/deal's).
var DealStatuses = []string{"OPEN", "WON", "LOST"}

// matches tells whether deal f satisfies c.
func (c *DealCond) matches(f DealFact) bool {
	switch {
	case c.Pipeline != "" && f.Pipeline != c.Pipeline,
		len(c.Stages) > 0 && !contains(c.Stages, f.Stage),
		len(c.Statuses) > 0 && !contains(c.Statuses, f.Status),
		c.Currency != "" && f.Currency != c.Currency:
		return false
	}
	return c.Amount == nil || amountHolds(c.Amount.Op, f.Amount, c.Amount.Value)
}

func amountHolds(op Op, a, b float64) bool {
	switch op {
	case EQ:
		return a == b
	case NE:
		return a != b
	case GT:
		return a > b
	case GTE:
		return a >= b
	case LT:
		return a < b
	case LTE:
		return a <= b
	}
	return false
}

// TicketCond tests the person's tickets: it holds when one of them
// matches every field set ("has an open breached ticket" is {open: true,
// breached: true}). Open true is a status NEW, OPEN or PENDING; false,
// RESOLVED or CLOSED. No field set: the person has a ticket.
type TicketCond struct {
	Open       *bool    `bson:"open,omitempty" json:"open,omitempty"`
	Statuses   []string `bson:"statuses,omitempty" json:"statuses,omitempty"`
	Priorities []string `bson:"priorities,omitempty" json:"priorities,omitempty"`
	Breached   *bool    `bson:"breached,omitempty" json:"breached,omitempty"`
}

// TicketFact is what a ticket node reads of one ticket.
type TicketFact struct {
	Status, Priority string
	Breached         bool
}

// The ticket statuses and priorities (package crm/ticket's; its tests
// check they agree).
var (
	TicketStatuses   = []string{"NEW", "OPEN", "PENDING", "RESOLVED", "CLOSED"}
	TicketPriorities = []string{"URGENT", "HIGH", "NORMAL", "LOW"}
)

// matches tells whether ticket f satisfies c.
func (c *TicketCond) matches(f TicketFact) bool {
	open := f.Status != "RESOLVED" && f.Status != "CLOSED"
	switch {
	case c.Open != nil && *c.Open != open,
		len(c.Statuses) > 0 && !contains(c.Statuses, f.Status),
		len(c.Priorities) > 0 && !contains(c.Priorities, f.Priority),
		c.Breached != nil && *c.Breached != f.Breached:
		return false
	}
	return true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// LifecycleCond tests the person's lifecycle stage (profile.Lifecycle):
// it holds when the stage is one of In. A person without a stage matches
// no list.
type LifecycleCond struct {
	In []string `bson:"in" json:"in"`
}

// IdentifierCond tests whether the profile holds at least one identifier
// of Type (email, phone, userId, a custom type): "known people with an
// email". Identifiers are not traits, so a trait node cannot ask it.
// Exists false (nil means true) inverts it. It reads which types are
// held, never the values, so it compares no personal data.
type IdentifierCond struct {
	Type   string `bson:"type" json:"type"`
	Exists *bool  `bson:"exists,omitempty" json:"exists,omitempty"`
}

// Want is what the node asks for: holding the type (true) or not.
func (c *IdentifierCond) Want() bool { return c.Exists == nil || *c.Exists }

// ComputedCond compares the value of the computed trait Key (package
// traits) with the trait operators and semantics of TraitCond: a null
// value (AVG of nothing, say) is missing; a list value (UNIQUE_LIST)
// matches element-wise. A windowed computed value changes with time alone;
// Evaluate reports when that flips the comparison, as nextEvalAt.
type ComputedCond = TraitCond

// Op is a comparison operator.
type Op string

// Operators. Traits and event properties take all of them; event counts
// and profile fields take EQ, NE, GT, GTE, LT and LTE.
const (
	EQ         Op = "EQ"
	NE         Op = "NE"
	In         Op = "IN"
	NotIn      Op = "NOT_IN"
	GT         Op = "GT"
	GTE        Op = "GTE"
	LT         Op = "LT"
	LTE        Op = "LTE"
	Exists     Op = "EXISTS"
	Contains   Op = "CONTAINS"
	StartsWith Op = "STARTS_WITH"
)

// TraitCond compares a trait with a value.
//
// Key is a dot path into nested traits ("address.city"); paths go through
// objects only. Value semantics (see also match.go):
//   - numbers compare numerically whatever their Go type (int64 vs float64);
//     strings compare exactly (EQ) or byte-wise (GT…); two strings that are
//     both RFC 3339 timestamps, or a string and a time value, compare as
//     instants; values of different kinds are never equal nor ordered;
//   - when the trait is an array, EQ, IN, GT, GTE, LT, LTE, STARTS_WITH and
//     CONTAINS match if any element matches (MongoDB style);
//   - NE is exactly "not EQ" and NOT_IN "not IN": a missing trait matches
//     them; every other operator is false on a missing trait;
//   - EXISTS: the key is present and not null (Value false inverts it);
//   - CONTAINS: substring of a string trait (case-sensitive), or an element
//     equal to Value in an array trait; STARTS_WITH: string prefix.
type TraitCond struct {
	Key string `bson:"key" json:"key"`
	Op  Op     `bson:"op" json:"op"`
	// Value is the operand of every operator but IN and NOT_IN.
	Value any `bson:"value,omitempty" json:"value,omitempty"`
	// Values is the list IN and NOT_IN look in.
	Values []any `bson:"values,omitempty" json:"values,omitempty"`
}

// PropertyCond filters events on a property, with the same operators and
// semantics as a trait condition (Key is a dot path into properties).
type PropertyCond = TraitCond

// EventCond counts the events of a name whose properties match every Where
// filter, within Window, and compares the count (default: at least one).
type EventCond struct {
	Name   string         `bson:"name" json:"name"`
	Where  []PropertyCond `bson:"where,omitempty" json:"where,omitempty"`
	Count  *CountCond     `bson:"count,omitempty" json:"count,omitempty"`
	Window *Window        `bson:"window,omitempty" json:"window,omitempty"`

	key string // FeatureKey(Name, Where), set by Prepare
}

// CountCond compares a count: Op is EQ, NE, GT, GTE, LT or LTE.
type CountCond struct {
	Op    Op  `bson:"op" json:"op"`
	Value int `bson:"value" json:"value"`
}

// DefaultCount is the count condition of an event node that sets none.
var DefaultCount = CountCond{Op: GTE, Value: 1}

// Window limits which occurrences count: exactly one of Last or Between.
type Window struct {
	Last    *Last    `bson:"last,omitempty" json:"last,omitempty"`
	Between *Between `bson:"between,omitempty" json:"between,omitempty"`
}

// Unit is the unit of a relative window.
type Unit string

// Units.
const (
	Minutes Unit = "MINUTES"
	Hours   Unit = "HOURS"
	Days    Unit = "DAYS"
)

// Last is a relative window: the current unit and the Amount−1 before it.
type Last struct {
	Amount int  `bson:"amount" json:"amount"`
	Unit   Unit `bson:"unit" json:"unit"`
}

// Between is an absolute window [From, To), whole UTC days.
type Between struct {
	From time.Time `bson:"from" json:"from"`
	To   time.Time `bson:"to" json:"to"`
}

// InactivityCond holds when no event Name occurred within NotWithin.
type InactivityCond struct {
	Name      string `bson:"name" json:"name"`
	NotWithin Last   `bson:"notWithin" json:"notWithin"`

	key string // FeatureKey(Name, nil), set by Prepare
}

// ProfileField is a profile attribute a rule can compare.
type ProfileField string

// Profile fields.
const (
	CreatedAt   ProfileField = "CREATED_AT"
	FirstSeenAt ProfileField = "FIRST_SEEN_AT"
	LastSeenAt  ProfileField = "LAST_SEEN_AT"
	EventCount  ProfileField = "EVENT_COUNT"
)

// ProfileCond compares a profile field with an absolute value: an instant
// (time.Time or RFC 3339 string) for the time fields, an integer for
// EVENT_COUNT. Op is EQ, NE, GT, GTE, LT or LTE.
type ProfileCond struct {
	Field ProfileField `bson:"field" json:"field"`
	Op    Op           `bson:"op" json:"op"`
	Value any          `bson:"value" json:"value"`
}

// Limits of a rule tree and its windows.
const (
	MaxDepth       = 10   // levels of one rule tree (the root is level 1)
	MaxNodes       = 100  // nodes of one rule tree
	MaxNesting     = 10   // segments in an inSegment chain
	MaxWhere       = 20   // property filters per event node
	MaxValues      = 1000 // values of IN / NOT_IN
	MaxCount       = 1_000_000
	MaxKeyLen      = 256
	MaxNameLen     = 256
	MaxLastDays    = 365
	MaxLastHours   = 24
	MaxLastMinutes = 24 * 60
	MaxBetweenDays = 366
)

// ValidTrait checks a trait condition as a trait node's, errors naming
// path (for filters outside rules: an accounts list's traits).
func ValidTrait(c *TraitCond, path string) error { return validCond(c, path) }

// MatchTrait tells whether traits satisfy c, as a trait node would.
func MatchTrait(c *TraitCond, traits map[string]any) bool { return matchCond(c, traits) }
