package ingest

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// TrackInput is one event of a track or trackBatch call, with the consent
// it carries (recorded on its profile once the event is stored).
type TrackInput struct {
	timeline.TrackInput
	Consent []consent.Choice
}

// Caller is who makes a write call.
type Caller struct {
	// Subject is the token subject, recorded on merges.
	Subject string
	// ConsentWrite: the token holds consent:write, which consent carried
	// on identify or track needs.
	ConsentWrite bool
}

// Track ingests events: field is "input" for track (one input) and
// "inputs" for trackBatch (errors then name inputs[i]). The steps are
// the package doc's, in order.
func (p *Pipeline) Track(ctx context.Context, tn store.Tenant, who Caller, field string, inputs []TrackInput) ([]timeline.TrackResult, error) {
	// 0. The call is journaled before its event ids are drawn, and ended
	// once every event it stored is counted: if it dies or fails in
	// between, Recover recounts (recover.go).
	call, err := p.journal.Begin(ctx, tn)
	if err != nil {
		return nil, err
	}
	counted := true
	defer func() { call.End(counted) }()

	// 1. Consent carried on the call: checked before anything is written.
	choices, err := p.prepareTrackConsent(ctx, tn, who, field, inputs)
	if err != nil {
		return nil, err
	}

	// 2. Every input validated, then suppression: a refused call stores
	// nothing, profiles and identities included.
	plain := make([]timeline.TrackInput, len(inputs))
	for i := range inputs {
		plain[i] = inputs[i].TrackInput
	}
	types, reqs, err := p.timeline.ValidateTrack(ctx, tn, field, plain)
	if err != nil {
		return nil, err
	}
	if err := p.timeline.CheckSuppressed(ctx, tn, field, reqs, len(inputs) > 1); err != nil {
		return nil, err
	}

	// 3. Duplicates, before identity resolution writes anything.
	batch, err := p.timeline.Dedupe(ctx, tn, reqs)
	if err != nil {
		return nil, err
	}

	// 4. Identity, once per identifier set.
	seeds, broad, resolved, err := p.resolve(ctx, tn, who.Subject, types, batch)
	if err != nil {
		return nil, err
	}
	// What resolution wrote is announced in step 8's outbox write, or
	// here if the call fails before it.
	announced := false
	defer func() {
		if !announced {
			realtime.Notify(ctx, p.changes, tn, resolved...)
		}
	}()

	// 5. Append the events, unless this instance has stalled so long
	// that the others take it for dead (journal.Call.Fresh).
	if err := call.Fresh(); err != nil {
		return nil, err
	}
	counted = false
	stored, raced, err := p.timeline.Append(ctx, tn, batch)
	if err != nil {
		return nil, err
	}

	// 6. Each touched profile's state, memberships included, in one
	// compare-and-swap.
	profiles, written, computed, err := p.updateProfiles(ctx, tn, "track", stored, seeds, broad)
	if err != nil {
		return nil, err
	}
	counted = true
	results := batch.Results
	var lost error // a profile not read back: the moves are handed off all the same
	for i := range results {
		r := &results[i]
		if pr, ok := profiles[r.Event.ProfileID]; ok {
			r.Profile = pr
			r.Event.ProfileID = pr.ID
			continue
		}
		pr, err := profile.Resolve(ctx, tn, r.Event.ProfileID, p.identity.Redirect)
		if err != nil {
			lost, results = err, nil
			break
		}
		profiles[r.Event.ProfileID] = pr
		r.Profile = pr
		r.Event.ProfileID = pr.ID
	}

	// 7 and 8. The membership moves handed off; the outbox.
	announced = true
	p.publish(ctx, tn, "track", written, resolved, results, computed)
	if lost != nil {
		return nil, lost
	}
	if raced != nil {
		return nil, raced
	}

	// 9. The consent the events carried.
	if err := p.applyTrackConsent(ctx, tn, choices, results); err != nil {
		return nil, err
	}
	return results, nil
}

// resolve runs identity resolution for the pending inputs of b, once per
// distinct identifier set (the common case is many events of one
// visitor); events carrying traits resolve alone so their trait patches
// apply in order. Inputs that share no identifier, even through others,
// belong to different people as far as this call can tell: those groups
// resolve side by side, so that the store commits their writes together;
// within a group, inputs resolve in call order. It returns the profiles
// as resolution read them (they seed step 6), those it created or wrote
// traits to (every segment may have changed for them), and the changes
// resolution left to the call to publish (step 8).
func (p *Pipeline) resolve(ctx context.Context, tn store.Tenant, actor string, types identity.Types, b *timeline.Batch) (map[string]*profile.Profile, map[string]bool, []realtime.Change, error) {
	var (
		mu      sync.Mutex
		seeds   = map[string]*profile.Profile{}
		broad   = map[string]bool{}
		changes []realtime.Change
	)
	// Every identifier's owner, in one read per type: the first
	// resolution of each identifier starts from it. A later input that
	// shares one with an earlier (resolved in order in its group) reads
	// afresh what the earlier wrote.
	var all []identity.Identifier
	for _, i := range b.Pending {
		all = append(all, b.Reqs[i].IDs...)
	}
	owners, err := identity.LookupMany(ctx, tn, all)
	if err != nil {
		return nil, nil, nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for _, group := range connected(b) {
		g.Go(func() error {
			resolved := map[string]string{}
			touched := map[identity.Identifier]bool{}
			for _, i := range group {
				req := &b.Reqs[i]
				if pid, ok := resolved[req.Key]; ok && len(req.Traits) == 0 {
					req.Event.ProfileID = pid
					continue
				}
				known := owners
				for _, id := range req.IDs {
					if touched[id] {
						known = nil
					}
					touched[id] = true
				}
				res, err := p.identity.Resolve(gctx, tn, identity.Request{Identifiers: req.IDs, Traits: req.Traits, Actor: actor, Types: types, Quiet: true, SuppressionChecked: true, Owners: known})
				if err != nil {
					return err
				}
				if res.Created || res.Attached {
					p.joinAccounts(gctx, tn, res.Profile.ID, req.IDs)
				}
				resolved[req.Key] = res.Profile.ID
				req.Event.ProfileID = res.Profile.ID
				mu.Lock()
				changes = append(changes, res.Changes...)
				seeds[res.Profile.ID] = res.Profile
				// A new identifier (once per person and type, rarely
				// more) is decided as broadly as new traits.
				if res.Created || len(req.Traits) > 0 || res.Attached {
					broad[res.Profile.ID] = true
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, nil, err
	}
	return seeds, broad, changes, nil
}

// connected splits b's pending inputs into groups that share no
// identifier with one another (union-find over identifier values), each
// in call order.
func connected(b *timeline.Batch) [][]int {
	parent := make([]int, len(b.Pending))
	var find func(int) int
	find = func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	owner := map[identity.Identifier]int{}
	for k, i := range b.Pending {
		parent[k] = k
		for _, id := range b.Reqs[i].IDs {
			if o, ok := owner[id]; ok {
				parent[find(k)] = find(o)
			} else {
				owner[id] = k
			}
		}
	}
	var groups [][]int
	at := map[int]int{}
	for k, i := range b.Pending {
		r := find(k)
		g, ok := at[r]
		if !ok {
			g = len(groups)
			at[r] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// prepareTrackConsent checks the consent of every input (trackBatch:
// errors name inputs[i].consent).
func (p *Pipeline) prepareTrackConsent(ctx context.Context, tn store.Tenant, who Caller, field string, inputs []TrackInput) ([]consent.Batch, error) {
	var out []consent.Batch
	for i, t := range inputs {
		if len(t.Consent) == 0 {
			continue
		}
		if out == nil {
			out = make([]consent.Batch, len(inputs))
		}
		f := field + ".consent"
		if field == "inputs" {
			f = fmt.Sprintf("%s[%d].consent", field, i)
		}
		var err error
		if out[i], err = p.prepareConsent(ctx, tn, who, f, t.Consent); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// applyTrackConsent records each event's consent on its profile; a
// duplicate (a repeated messageId) recorded it the first time.
func (p *Pipeline) applyTrackConsent(ctx context.Context, tn store.Tenant, batches []consent.Batch, results []timeline.TrackResult) error {
	for i, b := range batches {
		if b.Len() == 0 || i >= len(results) || results[i].Duplicate {
			continue
		}
		if _, err := p.consent.Apply(ctx, tn, results[i].Profile.ID, b); err != nil {
			return fmt.Errorf("record consent of event %d: %w", i, err)
		}
	}
	return nil
}

// TrackEvents is Track for events that carry no consent (the demo seed,
// tools): the caller's subject is recorded on merges.
func (p *Pipeline) TrackEvents(ctx context.Context, tn store.Tenant, subject, field string, inputs []timeline.TrackInput) ([]timeline.TrackResult, error) {
	in := make([]TrackInput, len(inputs))
	for i := range inputs {
		in[i].TrackInput = inputs[i]
	}
	return p.Track(ctx, tn, Caller{Subject: subject}, field, in)
}
