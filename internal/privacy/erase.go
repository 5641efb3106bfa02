package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/accountfeed"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// MaxReason bounds an erasure's reason (bytes).
const MaxReason = 500

// Erasure statuses.
const (
	erasureRunning = "running"
	erasureDone    = "done"
)

// erasure is the stored receipt of an erasure, and while it runs the plan
// a repeated call finishes it from. It is filed under a salted hash of the
// erased profile id (identity.Resolver.ProfileHash), so a repeat finds it; once
// done it holds no id of the person, only the pseudonym that stands for
// them in what is kept (membership history, anonymised consent entries).
type erasure struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Status      string    `bson:"status"`
	Pseudonym   string    `bson:"pseudonym"`
	Reason      string    `bson:"reason,omitempty"`
	Actor       string    `bson:"actor"`
	ErasedAt    time.Time `bson:"erasedAt"`
	// ProfileIDs are the profiles being erased; dropped when done.
	ProfileIDs []string `bson:"profileIds,omitempty"`
	// Counts, taken before anything was deleted (memberships and consent
	// records are counted by what the steps leave under the pseudonym).
	Profiles       int   `bson:"profiles"`
	TimelineItems  int   `bson:"timelineItems"`
	Identifiers    int   `bson:"identifiers"`
	Memberships    int   `bson:"memberships"`
	ConsentRecords int   `bson:"consentRecords"`
	Version        int64 `bson:"version"`
}

// Receipt is what an erasure did.
type Receipt struct {
	ID string
	// ProfileID is the id the caller named (never stored).
	ProfileID string
	// ErasedProfileIDs: the profile and those merged into it. A repeated
	// call after the erasure finished returns only ProfileID: the stored
	// receipt keeps no ids.
	ErasedProfileIDs      []string
	Reason                string
	ErasedAt              time.Time
	TimelineItems         int
	Identifiers           int
	Memberships           int
	ConsentRecords        int
	SuppressedIdentifiers int
}

func (e *erasure) receipt(profileID string) *Receipt {
	ids := slices.Clone(e.ProfileIDs)
	if len(ids) == 0 {
		ids = []string{profileID}
	}
	return &Receipt{
		ID: e.ID, ProfileID: profileID, ErasedProfileIDs: ids, Reason: e.Reason, ErasedAt: e.ErasedAt,
		TimelineItems: e.TimelineItems, Identifiers: e.Identifiers, Memberships: e.Memberships,
		ConsentRecords: e.ConsentRecords, SuppressedIdentifiers: e.Identifiers,
	}
}

func (s *Service) now() time.Time {
	if s.clock == nil {
		return time.Now().UTC()
	}
	return s.clock().UTC()
}

// Erase erases a person (GDPR Art. 17): the profile and every profile
// merged into it, their events and interactions, identities, search
// terms, memberships (EXITED under a pseudonym), merge history and outbox
// changes are deleted; consent log entries are kept in anonymised form;
// the identifiers are suppressed (salted hashes), so later ingest with
// any of them is refused. It returns the receipt.
//
// The erasure is resumable: its record is written before anything is
// deleted, every step is idempotent, and calling Erase again with the same
// profile id (after a crash, or concurrently) finishes the job and returns
// the same receipt. The profile document goes early, so the person stops
// resolving at once; the steps after it find their data by the ids the
// record keeps while it runs.
func (s *Service) Erase(ctx context.Context, tn store.Tenant, profileID, reason, actor string) (*Receipt, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > MaxReason || !utf8.ValidString(reason) || strings.ContainsRune(reason, 0) {
		return nil, apperr.Invalid("reason", "must be text of at most %d bytes", MaxReason)
	}
	if profileID == "" || len(profileID) > 128 {
		return nil, apperr.Invalid("profileId", "must be a profile id")
	}
	rec, err := s.findErasure(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if rec, err = s.plan(ctx, tn, profileID, reason, actor); err != nil {
			return nil, err
		}
	}
	if rec.Status == erasureRunning {
		ids := slices.Clone(rec.ProfileIDs)
		if err := s.run(ctx, tn, rec); err != nil {
			return nil, err
		}
		out := rec.receipt(profileID)
		out.ErasedProfileIDs = ids
		slog.InfoContext(ctx, "privacy: profile erased", "erasure", rec.ID, "profiles", len(ids), "timelineItems", rec.TimelineItems,
			"identifiers", rec.Identifiers, "memberships", rec.Memberships, "consentRecords", rec.ConsentRecords)
		return out, nil
	}
	return rec.receipt(profileID), nil
}

// findErasure returns the erasure filed for profileID, or nil.
func (s *Service) findErasure(ctx context.Context, tn store.Tenant, profileID string) (*erasure, error) {
	h, err := s.identity.ProfileHash(ctx, tn, profileID, false)
	if err != nil || h == "" {
		return nil, err
	}
	var rec erasure
	err = tn.C(Erasures).Get(ctx, erasureID(h), &rec)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load erasure: %w", err)
	}
	return &rec, nil
}

func erasureID(hash string) string { return "erasure-" + hash[:32] }

// plan resolves the person, counts what will go and writes the erasure
// record. A concurrent erasure of the same person that wrote first wins:
// its record is returned.
func (s *Service) plan(ctx context.Context, tn store.Tenant, profileID, reason, actor string) (*erasure, error) {
	p, err := s.live(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	// Filed under the live profile's id: a merged-away id stands for its
	// survivor, like everywhere in the API.
	h, err := s.identity.ProfileHash(ctx, tn, p.ID, true)
	if err != nil {
		return nil, err
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	rec := &erasure{
		ID: erasureID(h), Status: erasureRunning, Pseudonym: pseudonymPrefix + h[:32], Reason: reason, Actor: actor,
		ErasedAt: s.now().Truncate(time.Millisecond), ProfileIDs: ids, Profiles: len(ids),
	}
	for _, id := range ids {
		held, err := identity.Identifiers(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		rec.Identifiers += len(held)
		n, err := timeline.CountOf(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		rec.TimelineItems += int(n)
	}
	if err := tn.C(Erasures).Insert(ctx, rec); err != nil {
		if !errors.Is(err, store.ErrDuplicateKey) {
			return nil, fmt.Errorf("record erasure: %w", err)
		}
		var won erasure
		if err := tn.C(Erasures).Get(ctx, rec.ID, &won); err != nil {
			return nil, fmt.Errorf("load erasure: %w", err)
		}
		return &won, nil
	}
	return rec, nil
}

// live returns the live profile standing for id, with every merge into it
// finished (so the erasure sees all it absorbed). NOT_FOUND if none.
func (s *Service) live(ctx context.Context, tn store.Tenant, id string) (*profile.Profile, error) {
	var redirect profile.Redirector
	if s.identity != nil {
		redirect = s.identity.Redirect
	}
	for attempt := 0; attempt < 5; attempt++ {
		p, err := profile.Resolve(ctx, tn, id, redirect)
		if err != nil {
			return nil, err
		}
		if s.identity == nil {
			return p, nil
		}
		if err := s.identity.SettleMergesInto(ctx, tn, p.ID); err != nil {
			return nil, err
		}
		again, err := profile.Get(ctx, tn, p.ID)
		if err == nil && again.MergingInto == "" && len(again.MergedFrom) == len(p.MergedFrom) {
			return again, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("load profile %s: %w", p.ID, err)
		}
		if err == nil && again.MergingInto != "" {
			if err := s.identity.Settle(ctx, tn, p.ID); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("erase profile %s: it keeps being merged; retry", id)
}

// run carries out (or finishes) an erasure's steps, each idempotent, then
// marks it done and drops the ids it kept.
func (s *Service) run(ctx context.Context, tn store.Tenant, rec *erasure) error {
	ctx = context.WithoutCancel(ctx) // a client hanging up must not leave it half done
	ids := rec.ProfileIDs
	// The accounts the person leaves: their other contacts are re-decided
	// after (account rule nodes count contacts).
	var accounts []string
	for _, id := range ids {
		accs, err := account.LinkedAccountIDs(ctx, tn, id)
		if err != nil {
			return fmt.Errorf("erasure %s: %w", rec.ID, err)
		}
		accounts = append(accounts, accs...)
	}
	suppress := func() error {
		for _, id := range ids {
			held, err := identity.Identifiers(ctx, tn, id)
			if err != nil {
				return err
			}
			values := make([]identity.Identifier, len(held))
			for i, h := range held {
				values[i] = h.Identifier
			}
			if _, err := s.identity.Suppress(ctx, tn, values, rec.ID, rec.ErasedAt); err != nil {
				return err
			}
		}
		return nil
	}
	seg := s.segments
	if seg == nil {
		seg = &segment.Engine{}
	}
	sweep := func() error {
		// Suppression comes first: from then on no identify or track can
		// reach the person, and what follows only removes.
		if err := suppress(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := profile.Erase(ctx, tn, id); err != nil {
				return err
			}
		}
		n, err := seg.Erase(ctx, tn, ids, rec.Pseudonym, s.now())
		if err != nil {
			return fmt.Errorf("erasure %s: memberships: %w", rec.ID, err)
		}
		rec.Memberships = n
		for _, id := range ids {
			if _, err := s.eraseEvents(ctx, tn, rec.ID, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			if _, err := identity.EraseIdentities(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			// The person's account links go; the accounts stay (they
			// are the company's, not the person's).
			if err := account.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			// Likewise off deals' contacts; the deals and their amounts
			// stay, for the company's books.
			if err := deal.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			// Tasks about the person ("call Ann") are theirs: deleted.
			if err := task.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			// Tickets stay for service reports, without the person:
			// their text and every comment on them go.
			if err := ticket.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			if err := lifecycle.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
			// The accounts' items about the person (a task naming them).
			if err := accountfeed.EraseProfile(ctx, tn, id); err != nil {
				return fmt.Errorf("erasure %s: %w", rec.ID, err)
			}
		}
		return nil
	}
	if err := sweep(); err != nil {
		return err
	}
	n, err := consent.AnonymiseLog(ctx, tn, ids, rec.Pseudonym)
	if err != nil {
		return fmt.Errorf("erasure %s: %w", rec.ID, err)
	}
	rec.ConsentRecords = n
	if _, err := identity.EraseHistory(ctx, tn, ids); err != nil {
		return fmt.Errorf("erasure %s: %w", rec.ID, err)
	}
	// A write that resolved the person just before the suppression may
	// have landed meanwhile: one more pass catches it.
	if err := sweep(); err != nil {
		return err
	}
	if _, err := realtime.EraseProfiles(ctx, tn, ids); err != nil {
		return fmt.Errorf("erasure %s: outbox: %w", rec.ID, err)
	}
	if s.segments != nil {
		account.Redecide(ctx, tn, s.segments, "erasure", nil, accounts...)
	}
	return s.finish(ctx, tn, rec)
}

// finish marks the record done without the ids (compare-and-swap; a
// concurrent finisher that got there first is as good).
func (s *Service) finish(ctx context.Context, tn store.Tenant, rec *erasure) error {
	c := tn.C(Erasures)
	for attempt := 0; attempt < 10; attempt++ {
		done := *rec
		done.Status, done.ProfileIDs, done.Version = erasureDone, nil, rec.Version+1
		err := c.Replace(ctx, done, rec.Version)
		if err == nil {
			*rec = done
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("finish erasure %s: %w", rec.ID, err)
		}
		var stored erasure
		if err := c.Get(ctx, rec.ID, &stored); err != nil {
			return fmt.Errorf("reload erasure %s: %w", rec.ID, err)
		}
		if stored.Status == erasureDone {
			*rec = stored
			return nil
		}
		rec.Version = stored.Version
	}
	return fmt.Errorf("finish erasure %s: too much contention", rec.ID)
}

// LiftSuppression lets a suppressed identifier be ingested again (the
// person asked to be known again). The identifier is normalised like
// identify does; false when it was not suppressed.
func (s *Service) LiftSuppression(ctx context.Context, tn store.Tenant, in identity.Identifier) (bool, error) {
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return false, err
	}
	ids, err := types.Normalise("identifier", []identity.Identifier{in})
	if err != nil {
		if e, ok := apperr.As(err); ok && strings.HasPrefix(e.Field, "identifier[0]") {
			c := *e
			c.Field = "identifier" + strings.TrimPrefix(e.Field, "identifier[0]")
			return false, &c
		}
		return false, err
	}
	lifted, err := s.identity.LiftSuppression(ctx, tn, ids[0])
	if err != nil {
		return false, err
	}
	if lifted {
		slog.InfoContext(ctx, "privacy: suppression lifted", "type", ids[0].Type)
	}
	return lifted, nil
}

// eraseEvents deletes a person's timeline items, through the service
// that also subtracts them from the analytics rollups when there is one.
func (s *Service) eraseEvents(ctx context.Context, tn store.Tenant, erasureID, profileID string) (int, error) {
	if s.events == nil {
		return timeline.EraseEvents(ctx, tn, profileID)
	}
	return s.events.EraseEvents(ctx, tn, erasureID, profileID)
}

// EachErasure calls fn with the time of every finished erasure begun in
// [from, to) and how many profiles it erased (a person merged from
// several profiles is one erasure of several).
func EachErasure(ctx context.Context, tn store.Tenant, from, to time.Time, fn func(at time.Time, profiles int) error) error {
	q := store.Query{Index: ErasuresByAt, Range: &store.Bound{Gte: store.DateTime(from), Lt: store.DateTime(to)}}
	err := tn.C(Erasures).Each(ctx, q, func(raw bson.Raw) error {
		var rec erasure
		if err := bson.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("decode erasure: %w", err)
		}
		if rec.Status != erasureDone {
			return nil
		}
		return fn(rec.ErasedAt, rec.Profiles)
	})
	if err != nil {
		return fmt.Errorf("erasures: %w", err)
	}
	return nil
}

// pseudonymPrefix begins every erasure's pseudonym.
const pseudonymPrefix = "erased-"

// IsPseudonym tells whether a profile id in kept records (membership
// history, consent proof) stands for an erased person: no profile has it.
func IsPseudonym(profileID string) bool { return strings.HasPrefix(profileID, pseudonymPrefix) }
