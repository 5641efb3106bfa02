package rule

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment/rule/ruletest"
	"github.com/halo-cdp/halo/internal/traits/scores"
)

// The property the issue asks for: membership computed incrementally
// (events fed one by one into feature counters, then Evaluate) equals a
// from-scratch evaluation over the raw events, for random rules and random
// event streams, at many evaluation times. The reference evaluator below
// never touches a Counter and shares no code with the package's
// evaluator: trait and property conditions go through ruletest.Match, an
// operator evaluator written independently from the documented semantics
// (so that a wrong operator in matchCond fails here), and count and
// profile comparisons are spelled out. nextEvalAt is checked against the
// reference too: the answer must not change before it, and must not change
// at all when it is zero.
//
// Every run covers the fixed seeds ruletest.FixedSeeds and one random seed,
// casesPerSeed cases each (each seed is logged). HALO_PROP_SEED=<n> replays
// one seed; HALO_PROP_CASES=<n> changes the count per seed.
func TestPropertyIncrementalEqualsFromScratch(t *testing.T) {
	cases := 500 // per seed; 4 seeds a run
	if s := os.Getenv("HALO_PROP_CASES"); s != "" {
		cases, _ = strconv.Atoi(s)
	}
	for _, seed := range ruletest.Seeds(t, "HALO_PROP_SEED") {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5e6))
			stats := propStats{}
			for i := 0; i < cases; i++ {
				g := gen{rng: rng, base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(400*24)) * time.Hour)}
				if msg := g.runCase(&stats); msg != "" {
					t.Fatalf("case %d: %s\n%s", i, msg, ruletest.Replay("HALO_PROP_SEED", seed))
				}
			}
			if stats.evals == 0 || stats.trues == 0 || stats.trues == stats.evals || stats.timed == 0 {
				t.Fatalf("degenerate generator: %+v (seed %d)", stats, seed)
			}
			t.Logf("seed %d: %d cases, %d events, %d evaluations (%d true), %d with a nextEvalAt", seed, cases, stats.events, stats.evals, stats.trues, stats.timed)
		})
	}
}

// TestPropertyConditionsMatchReference: a single trait or property
// condition, random over every operator, on random documents (scalars,
// arrays of mixed elements, bson.A, null, timestamps, nested objects),
// decides as the independent reference ruletest.Match does, through
// matchCond and through Feature.Matches. It pins the operator semantics
// directly, where the rule-level property test above only sees an
// operator through a whole rule. Seeds as above.
func TestPropertyConditionsMatchReference(t *testing.T) {
	const pairs = 20000 // per seed
	for _, seed := range ruletest.Seeds(t, "HALO_PROP_SEED") {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			g := gen{rng: rand.New(rand.NewPCG(seed, 0x0b5))}
			trues := map[Op]int{}
			for i := 0; i < pairs; i++ {
				c, doc := g.cond(), g.doc()
				want := refMatch(&c, doc)
				if got := matchCond(&c, doc); got != want {
					t.Fatalf("pair %d: %s %s %#v %#v on %#v: matchCond %v, reference %v\n%s",
						i, c.Key, c.Op, c.Value, c.Values, doc, got, want, ruletest.Replay("HALO_PROP_SEED", seed))
				}
				if got := FeatureOf("e", []PropertyCond{c}).Matches("e", doc); got != want {
					t.Fatalf("pair %d: property %s %s %#v %#v on %#v: Feature.Matches %v, reference %v\n%s",
						i, c.Key, c.Op, c.Value, c.Values, doc, got, want, ruletest.Replay("HALO_PROP_SEED", seed))
				}
				if want {
					trues[c.Op]++
				}
			}
			for _, op := range []Op{EQ, NE, In, NotIn, GT, GTE, LT, LTE, Exists, Contains, StartsWith} {
				if trues[op] == 0 {
					t.Errorf("degenerate generator: %s never holds (seed %d)", op, seed)
				}
			}
		})
	}
}

type propStats struct{ events, evals, trues, timed int }

type rawEvent struct {
	name  string
	props map[string]any
	at    time.Time
}

type gen struct {
	rng  *rand.Rand
	base time.Time
}

const span = 60 * 24 * time.Hour

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

var names = []string{"a", "b", "c"}

// stamps are RFC 3339 timestamps, some the same instant in another
// offset, some equal as instants but not as strings.
var stamps = []string{"2025-06-01T10:00:00Z", "2025-06-01T12:00:00+02:00", "2025-06-01T10:00:00.5Z", "2025-05-31T23:00:00-01:00"}

// elems are array elements, overlapping the condition values.
var elems = []any{"x", "y", "pro", "p", int64(1), 1.0, 1.5, true, nil, []any{"x"}}

func (g *gen) value() any {
	switch g.pick(10) {
	case 7:
		if e := elems[g.pick(len(elems))]; isScalarGen(e) {
			return e
		}
		return "x"
	case 8:
		return stamps[g.pick(len(stamps))]
	case 9:
		t, _ := time.Parse(time.RFC3339Nano, stamps[g.pick(len(stamps))])
		return t
	case 0:
		return []string{"free", "pro", "team"}[g.pick(3)]
	case 1:
		return int64(g.pick(101))
	case 2:
		return float64(g.pick(101)) + 0.5
	case 3:
		return float64(g.pick(101)) // equal to an int64
	case 4:
		return []string{"PT", "ES"}[g.pick(2)]
	case 5:
		return g.chance(0.5)
	}
	return []string{"x", "y"}[g.pick(2)]
}

func isScalarGen(v any) bool {
	switch v.(type) {
	case string, int64, float64, bool:
		return true
	}
	return false
}

// doc is a random traits or properties document.
func (g *gen) doc() map[string]any {
	d := map[string]any{}
	if g.chance(0.8) {
		d["plan"] = []string{"free", "pro", "team"}[g.pick(3)]
	} else if g.chance(0.3) {
		d["plan"] = nil // null is missing
	}
	if g.chance(0.8) {
		if g.chance(0.5) {
			d["amount"] = int64(g.pick(101))
		} else {
			d["amount"] = float64(g.pick(201)) / 2
		}
	}
	if g.chance(0.5) { // an array, maybe empty, of mixed elements
		var tags []any
		for n := g.pick(4); n > 0; n-- {
			tags = append(tags, elems[g.pick(len(elems))])
		}
		d["tags"] = tags
		if g.chance(0.3) {
			d["tags"] = bson.A(tags)
		}
	}
	if g.chance(0.4) {
		if g.chance(0.5) {
			d["since"] = stamps[g.pick(len(stamps))]
		} else {
			d["since"] = []any{stamps[g.pick(len(stamps))], stamps[g.pick(len(stamps))]}
		}
	}
	if g.chance(0.6) {
		d["geo"] = map[string]any{"country": []string{"PT", "ES"}[g.pick(2)]}
	}
	return d
}

func (g *gen) cond() TraitCond {
	c := TraitCond{Key: []string{"plan", "amount", "tags", "tags", "since", "geo.country", "geo", "missing"}[g.pick(8)]}
	ops := []Op{EQ, NE, In, NotIn, GT, GTE, LT, LTE, Exists, Contains, StartsWith}
	c.Op = ops[g.pick(len(ops))]
	switch c.Op {
	case In, NotIn:
		for n := 1 + g.pick(3); n > 0; n-- {
			c.Values = append(c.Values, g.value())
		}
	case GT, GTE, LT, LTE:
		for {
			c.Value = g.value()
			if _, ok := c.Value.(bool); !ok {
				break
			}
		}
	case Exists:
		if g.chance(0.3) {
			c.Value = g.chance(0.5)
		}
	case StartsWith:
		c.Value = []string{"p", "t", "P", "fr", "x", "2025-06"}[g.pick(6)]
	default:
		c.Value = g.value()
	}
	return c
}

func (g *gen) last() Last {
	switch g.pick(3) {
	case 0:
		return Last{Amount: 1 + g.pick(60), Unit: Days}
	case 1:
		return Last{Amount: 1 + g.pick(MaxLastHours), Unit: Hours}
	}
	return Last{Amount: []int{1, 5, 30, 90, 720, MaxLastMinutes, 1 + g.pick(MaxLastMinutes)}[g.pick(7)], Unit: Minutes}
}

func (g *gen) someTime() time.Time {
	return g.base.Add(time.Duration(g.rng.Int64N(int64(span + 5*24*time.Hour)))).Truncate(time.Millisecond)
}

func (g *gen) rule(depth int) Rule {
	if depth < 4 && g.chance(0.45) {
		switch g.pick(3) {
		case 0:
			return Rule{Not: ptr(g.rule(depth + 1))}
		default:
			kids := make([]Rule, 2+g.pick(2))
			for i := range kids {
				kids[i] = g.rule(depth + 1)
			}
			if g.chance(0.5) {
				return Rule{And: kids}
			}
			return Rule{Or: kids}
		}
	}
	switch g.pick(15) {
	case 14:
		c := &AccountCond{}
		for n := g.pick(3); n > 0; n-- {
			c.Traits = append(c.Traits, g.cond())
		}
		for n := g.pick(3); n > 0; n-- {
			c.Rollups = append(c.Rollups, RollupCond{Field: RollupFields[g.pick(len(RollupFields))],
				Op: []Op{EQ, NE, GT, GTE, LT, LTE}[g.pick(6)], Value: float64(g.pick(4))})
		}
		return Rule{Account: c}
	case 13:
		c := &DealCond{}
		if g.chance(0.5) {
			c.Pipeline = "sales"
			if g.chance(0.5) {
				c.Stages = []string{dealStages[g.pick(len(dealStages))]}
			}
		}
		if g.chance(0.4) {
			c.Statuses = []string{DealStatuses[g.pick(3)]}
		}
		if g.chance(0.5) {
			c.Amount = &AmountCond{Op: []Op{EQ, NE, GT, GTE, LT, LTE}[g.pick(6)], Value: float64(g.pick(4) * 500)}
		}
		if g.chance(0.3) {
			c.Currency = []string{"EUR", "USD"}[g.pick(2)]
		}
		return Rule{Deal: c}
	case 12:
		c := &TicketCond{}
		if g.chance(0.5) {
			c.Open = ptr(g.chance(0.5))
		}
		if g.chance(0.3) {
			c.Statuses = []string{TicketStatuses[g.pick(5)]}
		}
		if g.chance(0.3) {
			c.Priorities = []string{TicketPriorities[g.pick(4)], TicketPriorities[g.pick(4)]}
		}
		if g.chance(0.5) {
			c.Breached = ptr(g.chance(0.5))
		}
		return Rule{Ticket: c}
	case 11:
		var in []string
		for _, st := range lifecycleStages {
			if g.chance(0.4) {
				in = append(in, st)
			}
		}
		if len(in) == 0 {
			in = []string{lifecycleStages[g.pick(len(lifecycleStages))]}
		}
		return Rule{Lifecycle: &LifecycleCond{In: in}}
	case 10:
		c := &IdentifierCond{Type: idTypes[g.pick(len(idTypes))]}
		if g.chance(0.4) {
			c.Exists = ptr(g.chance(0.5))
		}
		return Rule{Identifier: c}
	case 3:
		return Rule{Computed: ptr(g.scoreCond())}
	case 4:
		return Rule{Consent: &ConsentCond{Purpose: purposes[g.pick(2)], Channel: []string{"", AnyChannel, "EMAIL"}[g.pick(3)],
			Status: []string{"", Granted, Denied, Withdrawn}[g.pick(4)]}}
	case 0:
		return Rule{Trait: ptr(g.cond())}
	case 1:
		return Rule{LastEvent: &InactivityCond{Name: names[g.pick(3)], NotWithin: g.last()}}
	case 2:
		p := ProfileCond{Field: []ProfileField{CreatedAt, FirstSeenAt, LastSeenAt, EventCount}[g.pick(4)], Op: []Op{EQ, NE, GT, GTE, LT, LTE}[g.pick(6)]}
		if p.Field == EventCount {
			p.Value = int64(g.pick(40))
		} else {
			p.Value = g.someTime().Format(time.RFC3339Nano)
		}
		return Rule{Profile: &p}
	}
	ev := EventCond{Name: names[g.pick(3)]}
	for n := g.pick(3); n > 0 && g.chance(0.7); n-- {
		ev.Where = append(ev.Where, g.cond())
	}
	if g.chance(0.7) {
		ev.Count = &CountCond{Op: []Op{EQ, NE, GT, GTE, LT, LTE}[g.pick(6)], Value: g.pick(5)}
	}
	switch g.pick(5) {
	case 0:
	case 1:
		from := g.someTime().Truncate(24 * time.Hour)
		ev.Window = &Window{Between: &Between{From: from, To: from.Add(time.Duration(1+g.pick(30)) * 24 * time.Hour)}}
	default:
		ev.Window = &Window{Last: ptr(g.last())}
	}
	return Rule{Event: &ev}
}

func ptr[T any](v T) *T { return &v }

// Consent: records for two purposes on ANY and EMAIL arrive with the
// events, some backdated, some expiring; the profile keeps them as
// ingest does (InsertConsent, pruned at arrival); the reference reads
// the whole log.
var purposes = []string{"marketing", "analytics"}

type consentRec struct {
	key string
	e   ConsentEntry
}

type refProfile struct {
	traits  map[string]any
	created time.Time
	allowed map[string]bool
	// attached lists the identifier types given to the profile, in
	// order, repeats included.
	attached []string
	// stage is the lifecycle stage last set ("" before any).
	stage string
	// tickets are the person's tickets now; deals the deals they are a
	// contact of.
	tickets []TicketFact
	deals   []DealFact
	// accounts are the accounts the person is a contact of now.
	accounts []AccountFact
}

// dealStages are the stages the generated rules and deals use.
var dealStages = []string{"qualification", "proposal", "won"}

// lifecycleStages are the stages the generated rules and streams use.
var lifecycleStages = []string{"LEAD", "SQL", "CUSTOMER", "CHURNED"}

// idTypes are the identifier types the generated rules and streams use.
var idTypes = []string{"email", "phone", "userId"}

func (g *gen) consentRec(arrival time.Time, n int) consentRec {
	e := ConsentEntry{ID: fmt.Sprintf("c%04d", n), Status: ConsentStatuses[g.pick(3)], RecordedAt: arrival,
		CapturedAt: arrival.Add(-time.Duration(g.rng.Int64N(int64(10 * 24 * time.Hour)))).Truncate(time.Millisecond)}
	if g.chance(0.6) {
		e.ExpiresAt = e.CapturedAt.Add(time.Hour + time.Duration(g.rng.Int64N(int64(30*24*time.Hour)))).Truncate(time.Millisecond)
	}
	return consentRec{key: ConsentKey(purposes[g.pick(2)], []string{AnyChannel, "EMAIL"}[g.pick(2)]), e: e}
}

// refConsent decides a consent node from the whole log: per key, the
// newest record (capturedAt, then recordedAt, then id) still live at now;
// the channel's own, else ANY's; else the lawful basis.
func refConsent(c *ConsentCond, allowed bool, log []consentRec, now time.Time) bool {
	current := func(key string) (ConsentEntry, bool) {
		var best ConsentEntry
		found := false
		for _, r := range log {
			e := r.e
			if r.key != key || !(e.ExpiresAt.IsZero() || now.Before(e.ExpiresAt)) {
				continue
			}
			newer := !found || e.CapturedAt.After(best.CapturedAt) ||
				e.CapturedAt.Equal(best.CapturedAt) && (e.RecordedAt.After(best.RecordedAt) || e.RecordedAt.Equal(best.RecordedAt) && e.ID > best.ID)
			if newer {
				best, found = e, true
			}
		}
		return best, found
	}
	channel, status := c.Channel, c.Status
	if channel == "" {
		channel = AnyChannel
	}
	if status == "" {
		status = Granted
	}
	e, ok := current(ConsentKey(c.Purpose, channel))
	if !ok && channel != AnyChannel {
		e, ok = current(ConsentKey(c.Purpose, AnyChannel))
	}
	if status == Granted {
		if ok {
			return e.Status == Granted
		}
		return allowed
	}
	return ok && e.Status == status
}

// Built-in scores: events named orderName are orders worth their amount.
// The workspace summary is fixed (its refresh is not what is tested).
const orderName = "a"

var propWorkspace = &scores.Workspace{
	Recency: scores.Cuts{3, 10, 25, 50}, Frequency: scores.Cuts{1, 2, 4, 7}, Monetary: scores.Cuts{40, 120, 300, 600},
	TypicalGap: 6 * 24 * time.Hour, Buyers: 100,
}

func orderValue(props map[string]any) float64 {
	switch v := props["amount"].(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// scoreCond compares a built-in score with a value around its range.
func (g *gen) scoreCond() ComputedCond {
	keys := []string{scores.KeyChurnRisk, scores.KeyEngagement, scores.KeyLifetimeValue, scores.KeyRecency,
		scores.KeyFrequency, scores.KeyOrders, scores.KeyRevenue, scores.KeyLabel}
	c := ComputedCond{Key: keys[g.pick(len(keys))], Op: []Op{EQ, NE, GT, GTE, LT, LTE, In}[g.pick(7)]}
	var value func() any
	switch c.Key {
	case scores.KeyChurnRisk:
		value = func() any { return g.rng.Float64() }
	case scores.KeyEngagement:
		value = func() any { return float64(g.pick(60)) }
	case scores.KeyLifetimeValue, scores.KeyRevenue:
		value = func() any { return float64(g.pick(1500)) }
	case scores.KeyLabel:
		c.Op = []Op{EQ, NE, In}[g.pick(3)]
		value = func() any { return scores.Labels[g.pick(len(scores.Labels))] }
	default: // scores 1–5, orders
		value = func() any { return int64(g.pick(7)) }
	}
	if c.Op == In {
		c.Values = []any{value(), value()}
	} else {
		c.Value = value()
	}
	return c
}

// refScore is a score at now from scratch: the tally recounted over the
// events seen.
func refScore(key string, created time.Time, evs []rawEvent, now time.Time) any {
	var t scores.Tally
	for _, e := range evs {
		t.Add(e.at, e.name == orderName, orderValue(e.props), now)
	}
	v, _ := scores.Get(key, t.Input(now, created, created, propWorkspace), nil)
	return v
}

// stream returns events in arrival order with their arrival times: mostly
// on time, some late (backdated up to 20 days), some ahead (up to 24 h),
// with sub-day clusters.
func (g *gen) stream() (evs []rawEvent, arrivals []time.Time) {
	n := g.pick(120)
	var times []time.Time
	for len(times) < n {
		t := g.base.Add(time.Duration(g.rng.Int64N(int64(span))))
		times = append(times, t)
		if g.chance(0.3) { // a burst within minutes or hours
			for k := g.pick(8); k > 0; k-- {
				step := time.Duration(g.rng.Int64N(int64([]time.Duration{2 * time.Minute, 3 * time.Hour}[g.pick(2)])))
				t = t.Add(step)
				times = append(times, t)
			}
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for _, arrival := range times {
		at := arrival
		switch {
		case g.chance(0.12):
			at = at.Add(-time.Duration(g.rng.Int64N(int64(20 * 24 * time.Hour))))
		case g.chance(0.06):
			at = at.Add(time.Duration(g.rng.Int64N(int64(MaxAhead))))
		}
		evs = append(evs, rawEvent{name: names[g.pick(3)], props: g.doc(), at: at.Truncate(time.Millisecond)})
		arrivals = append(arrivals, arrival)
	}
	return evs, arrivals
}

func (g *gen) runCase(st *propStats) string {
	r := g.rule(1)
	if err := ValidateWith("", r, Lookups{Computed: scores.IsKey, Purpose: func(p string) bool { return slices.Contains(purposes, p) },
		IdentifierType: func(t string) bool { return slices.Contains(idTypes, t) },
		LifecycleStage: func(s string) bool { return slices.Contains(lifecycleStages, s) },
		DealStage:      func(p, s string) bool { return p == "sales" && (s == "" || slices.Contains(dealStages, s)) }}); err != nil {
		return fmt.Sprintf("generated an invalid rule: %v", err)
	}
	traits := g.doc()
	created := g.base.Add(-time.Duration(g.rng.Int64N(int64(48 * time.Hour))))
	evs, arrivals := g.stream()
	st.events += len(evs)

	// Incremental state: what the profile document holds.
	feats := Features(r)
	in := Input{Traits: traits, CreatedAt: created, FirstSeenAt: created, LastSeenAt: created, Features: map[string]Counter{},
		Consent: map[string][]ConsentEntry{}, ConsentDefaults: map[string]bool{}}
	rp := &refProfile{traits: traits, created: created, allowed: in.ConsentDefaults}
	held := map[string]bool{}
	in.Holds = func(t string) bool { return held[t] }
	for _, p := range purposes {
		in.ConsentDefaults[p] = g.chance(0.5)
	}
	var log []consentRec
	seenConsent := func() []consentRec { return log }
	var tally scores.Tally
	in.Score = func(key string, at time.Time, th []float64) (any, time.Time) {
		return scores.Get(key, tally.Input(at, created, created, propWorkspace), th)
	}

	check := func(seen []rawEvent, now time.Time) string {
		got, next := Evaluate(r, in, now)
		want := refEval(r, rp, seenConsent(), seen, now)
		st.evals++
		if want {
			st.trues++
		}
		if got != want {
			return fmt.Sprintf("at %s after %d events: incremental %v, from scratch %v\nrule %s", now, len(seen), got, want, show(r))
		}
		if next.IsZero() {
			for _, d := range []time.Duration{time.Millisecond, 90 * time.Minute, 3 * 24 * time.Hour, 100 * 24 * time.Hour} {
				if refEval(r, rp, seenConsent(), seen, now.Add(d)) != got {
					return fmt.Sprintf("at %s: nextEvalAt zero, but the answer changes by now+%s\nrule %s", now, d, show(r))
				}
			}
			return ""
		}
		st.timed++
		if !next.After(now) {
			return fmt.Sprintf("nextEvalAt %s not after now %s", next, now)
		}
		probes := []time.Time{next.Add(-time.Millisecond), now.Add(time.Duration(g.rng.Int64N(int64(next.Sub(now)))))}
		for _, p := range probes {
			if refEval(r, rp, seenConsent(), seen, p) != got {
				return fmt.Sprintf("at %s: answer %v changes at %s, before nextEvalAt %s\nrule %s", now, got, p, next, show(r))
			}
		}
		// Re-evaluating at nextEvalAt (what the sweeper does) agrees too.
		if g, _ := Evaluate(r, in, next); g != refEval(r, rp, seenConsent(), seen, next) {
			return fmt.Sprintf("at nextEvalAt %s: incremental and from scratch differ\nrule %s", next, show(r))
		}
		return ""
	}

	for i, e := range evs {
		for _, f := range feats {
			if f.Matches(e.name, e.props) {
				c := in.Features[f.Key]
				c.Add(e.at)
				in.Features[f.Key] = c
			}
		}
		tally.Add(e.at, e.name == orderName, orderValue(e.props), arrivals[i])
		if g.chance(0.1) {
			t := idTypes[g.pick(len(idTypes))]
			rp.attached = append(rp.attached, t)
			held[t] = true
		}
		if g.chance(0.08) {
			rp.stage = lifecycleStages[g.pick(len(lifecycleStages))]
			in.Lifecycle = rp.stage
		}
		// A ticket opened, or one changed.
		if g.chance(0.1) {
			f := TicketFact{Status: TicketStatuses[g.pick(5)], Priority: TicketPriorities[g.pick(4)], Breached: g.chance(0.3)}
			if len(rp.tickets) > 0 && g.chance(0.5) {
				rp.tickets[g.pick(len(rp.tickets))] = f
			} else {
				rp.tickets = append(rp.tickets, f)
			}
			in.Tickets = slices.Clone(rp.tickets)
		}
		// A deal made, or one changed.
		if g.chance(0.1) {
			f := DealFact{Pipeline: []string{"sales", "renewals"}[g.pick(2)], Stage: dealStages[g.pick(3)], Status: DealStatuses[g.pick(3)],
				Currency: []string{"EUR", "USD"}[g.pick(2)], Amount: float64(g.pick(5) * 500)}
			if len(rp.deals) > 0 && g.chance(0.5) {
				rp.deals[g.pick(len(rp.deals))] = f
			} else {
				rp.deals = append(rp.deals, f)
			}
			in.Deals = slices.Clone(rp.deals)
		}
		// A link made or dropped, an account's traits or counts changed.
		if g.chance(0.1) {
			f := AccountFact{Traits: g.doc(), Rollups: map[RollupField]int64{}}
			for _, k := range RollupFields {
				if g.chance(0.6) {
					f.Rollups[k] = int64(g.pick(4))
				}
			}
			switch {
			case len(rp.accounts) > 0 && g.chance(0.2):
				rp.accounts = rp.accounts[1:]
			case len(rp.accounts) > 0 && g.chance(0.5):
				rp.accounts[g.pick(len(rp.accounts))] = f
			default:
				rp.accounts = append(rp.accounts, f)
			}
			in.Accounts = slices.Clone(rp.accounts)
		}
		for g.chance(0.15) {
			rec := g.consentRec(arrivals[i], len(log))
			log = append(log, rec)
			in.Consent[rec.key] = InsertConsent(in.Consent[rec.key], rec.e, arrivals[i])
		}
		in.EventCount++
		if e.at.Before(in.FirstSeenAt) {
			in.FirstSeenAt = e.at
		}
		if e.at.After(in.LastSeenAt) {
			in.LastSeenAt = e.at
		}
		if i == len(evs)-1 || g.chance(0.12) {
			now := arrivals[i]
			for _, d := range []time.Duration{0, time.Duration(g.rng.Int64N(int64(90 * time.Minute))),
				time.Duration(g.rng.Int64N(int64(3 * 24 * time.Hour))), time.Duration(g.rng.Int64N(int64(70 * 24 * time.Hour)))} {
				if msg := check(evs[:i+1], now.Add(d)); msg != "" {
					return msg
				}
			}
		}
	}
	if len(evs) == 0 {
		return check(nil, g.someTime())
	}
	return ""
}

// refEval evaluates r from scratch over the raw events.
func refEval(r Rule, rp *refProfile, log []consentRec, evs []rawEvent, now time.Time) bool {
	traits, created := rp.traits, rp.created
	switch {
	case r.And != nil:
		for _, k := range r.And {
			if !refEval(k, rp, log, evs, now) {
				return false
			}
		}
		return true
	case r.Or != nil:
		for _, k := range r.Or {
			if refEval(k, rp, log, evs, now) {
				return true
			}
		}
		return false
	case r.Not != nil:
		return !refEval(*r.Not, rp, log, evs, now)
	case r.Trait != nil:
		return refMatch(r.Trait, traits)
	case r.Consent != nil:
		return refConsent(r.Consent, rp.allowed[r.Consent.Purpose], log, now)
	case r.Identifier != nil:
		want := r.Identifier.Exists == nil || *r.Identifier.Exists
		return slices.Contains(rp.attached, r.Identifier.Type) == want
	case r.Account != nil:
		for _, f := range rp.accounts {
			ok := true
			for i := range r.Account.Traits {
				ok = ok && refMatch(&r.Account.Traits[i], f.Traits)
			}
			for _, c := range r.Account.Rollups {
				ok = ok && refHolds(c.Op, cmp.Compare(float64(f.Rollups[c.Field]), c.Value))
			}
			if ok {
				return true
			}
		}
		return false
	case r.Deal != nil:
		c := r.Deal
		for _, f := range rp.deals {
			if c.Pipeline != "" && f.Pipeline != c.Pipeline || len(c.Stages) > 0 && !slices.Contains(c.Stages, f.Stage) ||
				len(c.Statuses) > 0 && !slices.Contains(c.Statuses, f.Status) || c.Currency != "" && f.Currency != c.Currency {
				continue
			}
			if c.Amount == nil || refHolds(c.Amount.Op, cmp.Compare(f.Amount, c.Amount.Value)) {
				return true
			}
		}
		return false
	case r.Ticket != nil:
		for _, f := range rp.tickets {
			c := r.Ticket
			open := f.Status != "RESOLVED" && f.Status != "CLOSED"
			if (c.Open == nil || *c.Open == open) && (len(c.Statuses) == 0 || slices.Contains(c.Statuses, f.Status)) &&
				(len(c.Priorities) == 0 || slices.Contains(c.Priorities, f.Priority)) && (c.Breached == nil || *c.Breached == f.Breached) {
				return true
			}
		}
		return false
	case r.Lifecycle != nil:
		for _, st := range r.Lifecycle.In {
			if st == rp.stage {
				return true
			}
		}
		return false
	case r.Computed != nil:
		c := *r.Computed
		c.Key = "score"
		return refMatch(&c, map[string]any{"score": refScore(r.Computed.Key, created, evs, now)})
	case r.LastEvent != nil:
		return refCount(evs, r.LastEvent.Name, nil, &Window{Last: &r.LastEvent.NotWithin}, now) == 0
	case r.Event != nil:
		cc := CountCond{Op: GTE, Value: 1}
		if r.Event.Count != nil {
			cc = *r.Event.Count
		}
		n := refCount(evs, r.Event.Name, r.Event.Where, r.Event.Window, now)
		return refHolds(cc.Op, cmp.Compare(n, cc.Value))
	case r.Profile != nil:
		first, last := created, created
		for _, e := range evs {
			if e.at.Before(first) {
				first = e.at
			}
			if e.at.After(last) {
				last = e.at
			}
		}
		var c int
		switch r.Profile.Field {
		case EventCount:
			c = cmp.Compare(int64(len(evs)), r.Profile.Value.(int64))
		default:
			v, _ := time.Parse(time.RFC3339Nano, r.Profile.Value.(string))
			c = map[ProfileField]time.Time{CreatedAt: created, FirstSeenAt: first, LastSeenAt: last}[r.Profile.Field].Compare(v)
		}
		return refHolds(r.Profile.Op, c)
	}
	panic("unexpected node")
}

// refCount counts matching events in the window, by the documented
// semantics: whole units, the current one and the n−1 before it.
func refCount(evs []rawEvent, name string, where []PropertyCond, w *Window, now time.Time) int {
	var from, to time.Time
	if w != nil && w.Last != nil {
		unit, n := time.Minute, w.Last.Amount
		switch w.Last.Unit {
		case Days:
			unit = 24 * time.Hour
		case Hours:
			n *= 60
		}
		to = now.UTC().Truncate(unit).Add(unit)
		from = to.Add(-time.Duration(n) * unit)
	}
	if w != nil && w.Between != nil {
		from, to = w.Between.From, w.Between.To
	}
	n := 0
next:
	for _, e := range evs {
		if e.name != name || (!from.IsZero() && (e.at.Before(from) || !e.at.Before(to))) {
			continue
		}
		for i := range where {
			if !refMatch(&where[i], e.props) {
				continue next
			}
		}
		n++
	}
	return n
}

// refMatch is the independent operator evaluator (not matchCond).
func refMatch(c *TraitCond, doc map[string]any) bool {
	return ruletest.Match(c.Key, string(c.Op), c.Value, c.Values, doc)
}

// refHolds tells whether a comparison result r (-1, 0, 1) satisfies op,
// spelled out here rather than calling cmpHolds.
func refHolds(op Op, r int) bool {
	switch op {
	case EQ:
		return r == 0
	case NE:
		return r == -1 || r == 1
	case GT:
		return r == 1
	case GTE:
		return r == 1 || r == 0
	case LT:
		return r == -1
	case LTE:
		return r == -1 || r == 0
	}
	panic("unexpected comparison " + op)
}

func show(r Rule) string {
	b, _ := jsonMarshal(r)
	return string(b)
}

var jsonMarshal = func(v any) ([]byte, error) { return json.Marshal(v) }
