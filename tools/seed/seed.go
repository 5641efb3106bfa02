// Package seed generates Halo's deterministic demo data — profiles with
// anonymous and known identifiers, web events over 180 days, CRM
// interactions, consent decisions, accounts and deals — and loads it through the domain
// services, exactly as API calls would. The same seed and anchor time give the same data; message
// ids are derived from the seed, so loading twice stores everything once.
package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Options sizes the demo data.
type Options struct {
	Seed     uint64    // same seed, same data
	Profiles int       // default 1000
	Events   int       // approximate behavioural events, default 25000
	Now      time.Time // anchor: data spans the 180 days before it; default today 00:00 UTC
	Days     int       // default 180
}

// Stats says what Load wrote.
type Stats struct {
	Profiles, Events, Interactions, Merges, Consents int
	Accounts, Deals, Tickets                         int
	ComputedTraits, Segments                         int
}

// Load writes demo data into workspace.
func Load(ctx context.Context, st *store.Store, workspace string, opts Options) (Stats, error) {
	if opts.Profiles <= 0 {
		opts.Profiles = 1000
	}
	if opts.Events <= 0 {
		opts.Events = 25000
	}
	if opts.Days <= 0 {
		opts.Days = 180
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC().Truncate(24 * time.Hour)
	}
	people := Generate(opts)
	// The clock is set to each replayed call's time, so createdAt and
	// receivedAt look like the history being replayed.
	clk := app.NewManualClock(opts.Now)
	// Segments made here build at once, and Load waits for them (their
	// feature counters need no settling: nothing else writes meanwhile).
	svc := app.New(clk.Now, app.WithSegmentBuildSettle(0))
	tn := st.Tenant(workspace)
	var stats Stats
	for _, p := range people {
		for _, op := range p.Ops {
			clk.Set(op.At)
			switch {
			case op.Identify != nil:
				res, err := svc.Identity.Resolve(ctx, tn, identity.Request{
					Identifiers: op.Identify.Identifiers, Traits: op.Identify.Traits, SeenAt: op.At, Actor: "seed",
				})
				if err != nil {
					return stats, fmt.Errorf("seed identify %s: %w", p.Key, err)
				}
				stats.Merges += len(res.Merged)
				p.ProfileID = res.Profile.ID
			case op.Track != nil:
				res, err := svc.Ingest.TrackEvents(ctx, tn, "seed", "inputs", op.Track)
				if err != nil {
					return stats, fmt.Errorf("seed events of %s: %w", p.Key, err)
				}
				for _, r := range res {
					if !r.Duplicate {
						stats.Events++
					}
				}
				p.ProfileID = res[len(res)-1].Profile.ID
			case op.Interaction != nil:
				in := *op.Interaction
				in.ProfileID = p.ProfileID
				if _, err := svc.Ingest.LogInteraction(ctx, tn, in); err != nil {
					return stats, fmt.Errorf("seed interaction of %s: %w", p.Key, err)
				}
				stats.Interactions++
			case len(op.Consent) > 0:
				n, err := seedConsent(ctx, svc, tn, p.ProfileID, op.Consent)
				if err != nil {
					return stats, fmt.Errorf("seed consent of %s: %w", p.Key, err)
				}
				stats.Consents += n
			}
		}
	}
	clk.Set(opts.Now)
	var err error
	if stats.Accounts, stats.Deals, stats.Tickets, err = seedCRM(ctx, svc, clk, tn, people, opts); err != nil {
		return stats, err
	}
	if stats.ComputedTraits, stats.Segments, err = seedAudience(ctx, svc, tn); err != nil {
		return stats, err
	}
	// The RFM boundaries of the loaded history, so that scores are known
	// at once (a summary refreshed during the replay saw only part of it).
	svc.Traits.Wait()
	clk.Set(opts.Now)
	if _, err := svc.Traits.RefreshSummary(ctx, tn, true); err != nil {
		return stats, fmt.Errorf("seed score summary: %w", err)
	}
	svc.Traits.Wait()
	n, err := profile.Count(ctx, tn)
	if err != nil {
		return stats, err
	}
	stats.Profiles = int(n)
	return stats, nil
}

// Person is one generated person and what they do, in time order.
type Person struct {
	Key       string
	Ops       []Op
	ProfileID string
}

// Op is one call: an identify, a batch of tracked events, an interaction,
// or consent decisions.
type Op struct {
	At          time.Time
	Identify    *IdentifyOp
	Track       []timeline.TrackInput
	Interaction *timeline.InteractionInput
	Consent     []consent.Choice
}

// IdentifyOp is an identify call.
type IdentifyOp struct {
	Identifiers []identity.Identifier
	Traits      map[string]any
}

// Generate builds the people and their calls; it writes nothing.
func Generate(opts Options) []*Person {
	r := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed))
	start := opts.Now.Add(-time.Duration(opts.Days) * 24 * time.Hour)
	perPerson := max(1, opts.Events/opts.Profiles)
	msg := 0
	nextMsg := func() string {
		msg++
		return fmt.Sprintf("seed-%d-%06d", opts.Seed, msg)
	}
	people := make([]*Person, 0, opts.Profiles)
	for i := 0; i < opts.Profiles; i++ {
		first := firstNames[r.IntN(len(firstNames))]
		last := lastNames[r.IntN(len(lastNames))]
		p := &Person{Key: fmt.Sprintf("person-%d", i)}
		anon := identity.Identifier{Type: identity.AnonymousID, Value: fmt.Sprintf("anon-%d-%08x", opts.Seed, r.Uint32())}
		known := r.Float64() < 0.7
		email := identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), i, domains[r.IntN(len(domains))])}
		userID := identity.Identifier{Type: identity.UserID, Value: fmt.Sprintf("u%05d", i)}
		// Activity: a first visit somewhere in the window, then sessions.
		firstSeen := start.Add(time.Duration(r.Int64N(int64(opts.Now.Sub(start)) * 3 / 4)))
		n := perPerson/2 + r.IntN(perPerson+1)
		times := make([]time.Time, n)
		for j := range times {
			times[j] = firstSeen.Add(time.Duration(r.Int64N(int64(opts.Now.Sub(firstSeen)))))
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		identifyAt := firstSeen.Add(time.Duration(r.IntN(72)) * time.Hour)
		if identifyAt.After(opts.Now) {
			identifyAt = opts.Now
		}
		channel := channels[r.IntN(len(channels))]
		var before, after []timeline.TrackInput
		for _, t := range times {
			name, props := event(r)
			ids := []identity.Identifier{anon}
			if known && t.After(identifyAt) {
				ids = []identity.Identifier{userID}
			}
			at := t
			in := timeline.TrackInput{MessageID: nextMsg(), Identifiers: ids, Name: name, Properties: props, OccurredAt: &at, Channel: channel}
			if known && t.After(identifyAt) {
				after = append(after, in)
			} else {
				before = append(before, in)
			}
		}
		p.Ops = append(p.Ops, trackOps(before)...)
		if known {
			traits := map[string]any{
				"firstName": first, "lastName": last, "name": first + " " + last,
				"city": cities[r.IntN(len(cities))], "plan": plans[r.IntN(len(plans))],
				"company": companies[r.IntN(len(companies))], "newsletter": r.Float64() < 0.5,
			}
			ids := []identity.Identifier{anon, email, userID}
			if r.Float64() < 0.4 {
				ids = append(ids, identity.Identifier{Type: identity.Phone, Value: fmt.Sprintf("+1555%07d", i)})
			}
			if r.Float64() < 0.3 {
				ids = append(ids, identity.Identifier{Type: identity.CRMID, Value: fmt.Sprintf("crm-%05d", i)})
			}
			p.Ops = append(p.Ops, Op{At: identifyAt, Identify: &IdentifyOp{Identifiers: ids, Traits: traits}})
			p.Ops = append(p.Ops, consentOps(opts, i, identifyAt, traits["newsletter"] == true)...)
			// Some people also browse on a second device, which is stitched
			// (merged) when they log in there.
			if r.Float64() < 0.05 {
				second := identity.Identifier{Type: identity.DeviceID, Value: fmt.Sprintf("dev-%d-%08x", opts.Seed, r.Uint32())}
				at := identifyAt.Add(time.Duration(1+r.IntN(48)) * time.Hour)
				if at.Before(opts.Now) {
					name, props := event(r)
					p.Ops = append(p.Ops, trackOps([]timeline.TrackInput{{MessageID: nextMsg(), Identifiers: []identity.Identifier{second}, Name: name, Properties: props, OccurredAt: &at, Channel: "ios"}})...)
					p.Ops = append(p.Ops, Op{At: at.Add(time.Minute), Identify: &IdentifyOp{Identifiers: []identity.Identifier{second, email}}})
				}
			}
			p.Ops = append(p.Ops, trackOps(after)...)
			for k := r.IntN(6); k > 0; k-- {
				at := identifyAt.Add(time.Duration(r.Int64N(int64(opts.Now.Sub(identifyAt)) + 1)))
				p.Ops = append(p.Ops, Op{At: at, Interaction: interaction(r, at, nextMsg())})
			}
		}
		people = append(people, p)
	}
	return people
}

// consentOps are person i's consent decisions, from the moment they
// identified: a cookie banner (analytics, personalization for a year), the
// newsletter opt-in (marketing by email), and for some a later withdrawal.
// They draw from their own random source, so adding them changed none of
// the other demo data.
func consentOps(opts Options, i int, at time.Time, newsletter bool) []Op {
	r := rand.New(rand.NewPCG(opts.Seed^0xc0, uint64(i)))
	var ops []Op
	if r.Float64() < 0.8 {
		year := at.AddDate(1, 0, 0)
		banner := []consent.Choice{{Purpose: "analytics", Status: "GRANTED", Source: "cookie-banner", Proof: map[string]any{"banner": "v3"}}}
		if r.Float64() < 0.6 {
			banner = append(banner, consent.Choice{Purpose: "personalization", Status: "GRANTED", Source: "cookie-banner", ExpiresAt: &year})
		} else {
			banner = append(banner, consent.Choice{Purpose: "personalization", Status: "DENIED", Source: "cookie-banner"})
		}
		ops = append(ops, Op{At: at, Consent: banner})
	}
	if newsletter {
		ops = append(ops, Op{At: at.Add(time.Minute), Consent: []consent.Choice{
			{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED", Source: "newsletter-form", Proof: map[string]any{"form": "footer"}},
		}})
		if later := at.Add(time.Duration(1+r.IntN(90)) * 24 * time.Hour); r.Float64() < 0.15 && later.Before(opts.Now) {
			ops = append(ops, Op{At: later, Consent: []consent.Choice{
				{Purpose: "marketing", Channel: "EMAIL", Status: "WITHDRAWN", Source: "unsubscribe-link"},
			}})
		}
	}
	return ops
}

// seedConsent records choices on a profile that has no consent log yet
// from that source, so loading twice records them once (the log is
// append-only and takes no idempotency key).
func seedConsent(ctx context.Context, svc *app.Services, tn store.Tenant, profileID string, choices []consent.Choice) (int, error) {
	log, err := consent.Log(ctx, tn, profileID)
	if err != nil {
		return 0, err
	}
	for _, rec := range log {
		if rec.Source == choices[0].Source && rec.Status == choices[0].Status && rec.Purpose == choices[0].Purpose {
			return 0, nil
		}
	}
	states, err := svc.Consent.Set(ctx, tn, "consent", consent.Subject{ProfileID: &profileID}, "choices", choices, "seed")
	return len(states), err
}

// trackOps splits events into batches the API accepts.
func trackOps(events []timeline.TrackInput) []Op {
	var ops []Op
	for len(events) > 0 {
		n := min(len(events), timeline.MaxBatch)
		ops = append(ops, Op{At: *events[n-1].OccurredAt, Track: events[:n]})
		events = events[n:]
	}
	return ops
}

func event(r *rand.Rand) (string, map[string]any) {
	x := r.Float64()
	prod := products[r.IntN(len(products))]
	switch {
	case x < 0.55:
		return "page_viewed", map[string]any{"path": paths[r.IntN(len(paths))], "referrer": referrers[r.IntN(len(referrers))]}
	case x < 0.80:
		return "product_viewed", map[string]any{"sku": prod.sku, "name": prod.name, "price": prod.price}
	case x < 0.92:
		return "added_to_cart", map[string]any{"sku": prod.sku, "price": prod.price, "quantity": int64(1 + r.IntN(3))}
	default:
		qty := int64(1 + r.IntN(3))
		return "order_completed", map[string]any{
			"orderId": fmt.Sprintf("o-%08x", r.Uint32()), "sku": prod.sku, "quantity": qty,
			"revenue": float64(int64(prod.price*float64(qty)*100)) / 100, "currency": "USD",
		}
	}
}

// demoKinds are the interaction kinds the demo replays (not TASK: the
// seed's tasks put their own items on the timelines).
var demoKinds = []string{"CALL", "EMAIL", "MEETING", "NOTE", "TICKET", "DEAL"}

func interaction(r *rand.Rand, at time.Time, msgID string) *timeline.InteractionInput {
	kind := demoKinds[r.IntN(len(demoKinds))]
	subjects := map[string][]string{
		"CALL":    {"Onboarding call", "Renewal check-in", "Billing question"},
		"EMAIL":   {"Welcome to Halo Shop", "Your order has shipped", "Re: return request"},
		"MEETING": {"Quarterly business review", "Product demo"},
		"NOTE":    {"Prefers email over phone", "VIP: handle with care", "Asked about bulk pricing"},
		"TICKET":  {"Order arrived damaged", "Cannot reset password", "Refund not received"},
		"DEAL":    {"Annual plan upgrade", "Team licence (10 seats)"},
	}[kind]
	dir := []string{"INBOUND", "OUTBOUND"}[r.IntN(2)]
	if kind == "NOTE" {
		dir = ""
	}
	props := map[string]any{}
	switch kind {
	case "TICKET":
		props["status"] = []string{"open", "pending", "solved"}[r.IntN(3)]
		props["priority"] = []string{"low", "normal", "high"}[r.IntN(3)]
	case "DEAL":
		props["stage"] = []string{"qualified", "proposal", "won", "lost"}[r.IntN(4)]
		props["amount"] = float64(500 + r.IntN(20)*250)
	case "CALL":
		props["durationSec"] = int64(60 + r.IntN(1200))
	}
	return &timeline.InteractionInput{
		Kind: kind, Subject: subjects[r.IntN(len(subjects))], Direction: dir, OccurredAt: &at,
		Actor: agents[r.IntN(len(agents))], Properties: props, MessageID: msgID,
		Body: "Logged from the demo data set.",
	}
}

type product struct {
	sku, name string
	price     float64
}

var (
	firstNames = []string{"Ana", "Ben", "Chloé", "David", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Julia", "Kenji", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe"}
	lastNames  = []string{"Andersen", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hoffmann", "Ito", "Jansen", "Kowalski", "Larsen", "Müller", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Umarov", "Virtanen", "Wright", "Yilmaz", "Zhang"}
	domains    = []string{"example.com", "example.org", "mail.example.net", "corp.example.com"}
	cities     = []string{"Berlin", "Lisbon", "Paris", "Austin", "Toronto", "Osaka", "Nairobi", "São Paulo", "Melbourne", "Dublin"}
	plans      = []string{"free", "starter", "pro", "enterprise"}
	companies  = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"}
	channels   = []string{"web", "web", "web", "ios", "android"}
	paths      = []string{"/", "/pricing", "/blog/segments", "/products", "/products/shoes", "/cart", "/help", "/account"}
	referrers  = []string{"", "google", "newsletter", "twitter", "partner"}
	agents     = []string{"agent:maria", "agent:tom", "agent:li", "agent:sam"}
	products   = []product{{"SKU-1001", "Trail Runner", 119.0}, {"SKU-1002", "City Sneaker", 89.5}, {"SKU-2001", "Rain Jacket", 149.0}, {"SKU-3001", "Wool Socks", 14.9}, {"SKU-4001", "Backpack 22L", 79.0}, {"SKU-5001", "Water Bottle", 24.0}}
)
