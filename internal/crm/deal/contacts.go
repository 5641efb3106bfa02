package deal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// contactRow says that a person is a contact of a deal: the index of a
// person's deals (a deal lists its contacts, which no index reads).
type contactRow struct {
	ID        string `bson:"_id"`
	DealID    string `bson:"dealId"`
	ProfileID string `bson:"profileId"`
}

// syncContacts makes the rows of deal d say its contacts were was and are
// now: the added get a row, the removed lose theirs. Rows are an index:
// one left by a crash names a deal that does not list the person, and
// Facts checks the deal.
func syncContacts(ctx context.Context, tn store.Tenant, d *Deal, was []string) error {
	c := tn.C(DealContacts)
	for _, p := range d.ContactIDs {
		if slices.Contains(was, p) {
			continue
		}
		if err := c.Insert(ctx, contactRow{ID: d.ID + "/" + p, DealID: d.ID, ProfileID: p}); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
			return fmt.Errorf("index contact %s of deal %s: %w", p, d.ID, err)
		}
	}
	for _, p := range was {
		if slices.Contains(d.ContactIDs, p) {
			continue
		}
		if err := c.Delete(ctx, d.ID+"/"+p); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unindex contact %s of deal %s: %w", p, d.ID, err)
		}
	}
	return nil
}

// decide re-decides the segments that read deals of d's contacts (those
// it had, was, and those it has). A failure is logged by the engine.
func (s *Service) decide(ctx context.Context, tn store.Tenant, d *Deal, was []string) {
	if s.segments == nil {
		return
	}
	var people []*profile.Profile
	seen := map[string]bool{}
	for _, id := range append(slices.Clone(d.ContactIDs), was...) {
		p, err := profile.Resolve(ctx, tn, id, s.redirect)
		if err != nil {
			if apperr.CodeOf(err) != apperr.NotFound {
				slog.ErrorContext(ctx, "deals: read a contact to decide their segments", "deal", d.ID, "err", err)
			}
			continue
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			people = append(people, p)
		}
	}
	if len(people) > 0 {
		s.segments.AfterProfiles(context.WithoutCancel(ctx), tn, people, "deal", rule.Touched{Deals: true})
	}
}

// fact is what segment rules read of deal d.
func fact(d *Deal) rule.DealFact {
	return rule.DealFact{Pipeline: d.Pipeline, Stage: d.Stage, Status: d.Status, Currency: d.Currency, Amount: d.AmountUnits()}
}

// Facts lists what segment rules read of the deals whose contacts include
// any of profileIDs (a person and the profiles merged into them), each
// deal once.
func Facts(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]rule.DealFact, error) {
	var dealIDs []any
	for in := range store.InLists(profileIDs) {
		docs, err := tn.C(DealContacts).Find(ctx, store.Query{Index: DealContactsByProfile, In: in})
		if err != nil {
			return nil, fmt.Errorf("deals of %v: %w", profileIDs, err)
		}
		for _, doc := range docs {
			var r contactRow
			if err := doc.Decode(&r); err != nil {
				return nil, fmt.Errorf("decode deal contact: %w", err)
			}
			if !slices.Contains(dealIDs, any(r.DealID)) {
				dealIDs = append(dealIDs, r.DealID)
			}
		}
	}
	var out []rule.DealFact
	for len(dealIDs) > 0 {
		n := min(len(dealIDs), store.MaxIn)
		docs, err := tn.C(Deals).Find(ctx, store.Query{Index: store.ByID, In: dealIDs[:n]})
		if err != nil {
			return nil, fmt.Errorf("load deals: %w", err)
		}
		dealIDs = dealIDs[n:]
		for _, doc := range docs {
			var d Deal
			if err := doc.Decode(&d); err != nil {
				return nil, fmt.Errorf("decode deal: %w", err)
			}
			// A row a crash left names a deal that no longer lists them.
			if slices.ContainsFunc(d.ContactIDs, func(c string) bool { return slices.Contains(profileIDs, c) }) {
				out = append(out, fact(&d))
			}
		}
	}
	return out, nil
}

// AllFacts lists what segment rules read of every deal of the workspace,
// by contact id (one pass: a preview, an ad-hoc list).
func AllFacts(ctx context.Context, tn store.Tenant) (map[string][]rule.DealFact, error) {
	out := map[string][]rule.DealFact{}
	err := tn.C(Deals).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var d Deal
		if err := bson.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode deal: %w", err)
		}
		for _, c := range d.ContactIDs {
			out[c] = append(out[c], fact(&d))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read deals: %w", err)
	}
	return out, nil
}
