package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/profile"
	"github.com/halo-cdp/halo/store"
)

// identity maps one identifier to the profile that holds it. The unique
// index on (workspaceId, type, value) is the race guard: whoever inserts
// first owns the identifier, everyone else reads the winner.
type identity struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Type        string    `bson:"type"`
	Value       string    `bson:"value"`
	ProfileID   string    `bson:"profileId"`
	FirstSeenAt time.Time `bson:"firstSeenAt"`
	Version     int64     `bson:"version"`
}

// Held is an identifier as a profile holds it.
type Held struct {
	Identifier
	FirstSeenAt time.Time
}

// Request is one identify (or the identify half of a track).
type Request struct {
	Identifiers []Identifier // normalised (see Normalise)
	Traits      map[string]any
	SeenAt      time.Time // when the person was active
	Actor       string    // token subject, recorded on merges
}

// Result says which profile the identifiers resolved to.
type Result struct {
	Profile *profile.Profile
	Created bool
	Merged  []string // profile ids merged into Profile by this call
}

// Resolver resolves identifiers to profiles.
type Resolver struct {
	Now func() time.Time
	// Movers run during a merge, after identifiers move and before the
	// source profile is retired (events, memberships, consent...).
	Movers []Mover
}

// maxResolveAttempts bounds retries when concurrent calls race on the same
// identifiers; each retry re-reads what the winner wrote.
const maxResolveAttempts = 20

// Resolve finds or creates the profile for req's identifiers, attaches the
// new ones, merges profiles the identifiers show to be one person (the
// oldest survives), then applies traits and activity time.
func (r *Resolver) Resolve(ctx context.Context, tn store.Tenant, req Request) (Result, error) {
	var res Result
	target := ""
	attached := false
	for attempt := 0; ; attempt++ {
		if attempt == maxResolveAttempts {
			return Result{}, fmt.Errorf("resolve identifiers: gave up after %d attempts under contention", attempt)
		}
		owners, err := r.lookup(ctx, tn, req.Identifiers)
		if err != nil {
			return Result{}, err
		}
		if len(owners) == 0 {
			// Nobody holds any identifier: claim the first for a new profile.
			candidate := store.NewID()
			err := r.claim(ctx, tn, req.Identifiers[0], candidate)
			if errors.Is(err, store.ErrDuplicateKey) {
				continue // lost the race; the winner's profile is found next time
			}
			if err != nil {
				return Result{}, err
			}
			if err := r.ensureProfile(ctx, tn, candidate); err != nil {
				return Result{}, err
			}
			res.Created = true
			continue
		}
		target, err = r.oldest(ctx, tn, owners)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return Result{}, err
		}
		retry := false
		for _, pid := range owners {
			if pid == target || slices.Contains(res.Merged, pid) {
				continue
			}
			if err := r.merge(ctx, tn, pid, target, "identify", req.Actor); err != nil {
				if errors.Is(err, errRetry) {
					retry = true
					break
				}
				return Result{}, err
			}
			res.Merged = append(res.Merged, pid)
		}
		if retry {
			continue
		}
		for _, id := range req.Identifiers {
			if owners[id] != "" {
				continue
			}
			if err := r.claim(ctx, tn, id, target); errors.Is(err, store.ErrDuplicateKey) {
				retry = true // someone else attached it meanwhile: merge on next pass
				break
			} else if err != nil {
				return Result{}, err
			}
			attached = true
		}
		if retry {
			continue
		}
		changed := attached || res.Created || len(res.Merged) > 0
		p, err := r.apply(ctx, tn, target, req, changed)
		if errors.Is(err, store.ErrNotFound) {
			// target was merged away after we read it; identifiers we just
			// claimed for it are found (and moved) on the next pass.
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if changed || len(req.Traits) > 0 || !req.SeenAt.IsZero() {
			if _, err := r.Redirect(ctx, tn, target); err == nil {
				// target is being merged away: its merge may have read it
				// before this write. Write again where it goes (a trait
				// patch is idempotent).
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return Result{}, err
			}
		}
		res.Profile = p
		return res, nil
	}
}

// apply writes req's traits and activity time to the target profile (if
// there is anything to write) and returns it. A target that no longer
// exists is reported as store.ErrNotFound.
func (r *Resolver) apply(ctx context.Context, tn store.Tenant, target string, req Request, changed bool) (*profile.Profile, error) {
	if len(req.Traits) == 0 && req.SeenAt.IsZero() && !changed {
		// Nothing to write: the common case of a track by a known visitor.
		p, err := profile.Get(ctx, tn, target)
		if err != nil {
			return nil, fmt.Errorf("load profile %s: %w", target, err)
		}
		return p, nil
	}
	p, err := profile.Update(ctx, tn, target, r.Now(), func(p *profile.Profile) error {
		if err := p.ApplyTraits(req.Traits); err != nil {
			return err
		}
		if !req.SeenAt.IsZero() {
			p.Seen(req.SeenAt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.syncTerms(ctx, tn, p); err != nil {
		return nil, err
	}
	return p, nil
}

// lookup returns, for each identifier held by some profile, its owner.
func (r *Resolver) lookup(ctx context.Context, tn store.Tenant, ids []Identifier) (map[Identifier]string, error) {
	owners := map[Identifier]string{}
	for _, id := range ids {
		var doc identity
		err := tn.C(store.Identities).FindOne(ctx, store.Query{Index: store.IdentitiesByValue, Eq: []any{id.Type, id.Value}}, &doc)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up identifier %s: %w", id.Type, err)
		}
		owners[id] = doc.ProfileID
	}
	return owners, nil
}

// claim attaches id to profileID. ErrDuplicateKey means someone holds it.
func (r *Resolver) claim(ctx context.Context, tn store.Tenant, id Identifier, profileID string) error {
	doc := identity{
		ID: store.NewID(), Type: id.Type, Value: id.Value, ProfileID: profileID,
		FirstSeenAt: r.Now().UTC().Truncate(time.Millisecond),
	}
	if err := tn.C(store.Identities).Insert(ctx, doc); err != nil {
		if errors.Is(err, store.ErrDuplicateKey) {
			return err
		}
		return fmt.Errorf("attach %s to profile %s: %w", id.Type, profileID, err)
	}
	return nil
}

// ensureProfile creates the profile document for an id that owns
// identifiers. Any caller may do it, so a crash between claiming an
// identifier and creating the profile heals on the next call. A profile
// that was merged away is not brought back.
func (r *Resolver) ensureProfile(ctx context.Context, tn store.Tenant, id string) error {
	err := tn.C(store.Profiles).Insert(ctx, profile.New(id, r.Now()))
	if errors.Is(err, store.ErrDuplicateKey) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create profile %s: %w", id, err)
	}
	// The insert succeeded, so id had no profile. If it has a merge record
	// it had one once and was merged away: retire the one just created.
	// (The record is written before the source is deleted, so this read
	// sees it.)
	if _, err := r.Redirect(ctx, tn, id); err == nil {
		if err := tn.C(store.Profiles).Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("retire resurrected profile %s: %w", id, err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("check merge of profile %s: %w", id, err)
	}
	return nil
}

// oldest picks the surviving profile among the owners: earliest createdAt,
// ties broken by id so every racer picks the same one. An owner merged
// away counts as the live profile it was merged into. errRetry means an
// owner could not be pinned down (merged again meanwhile).
func (r *Resolver) oldest(ctx context.Context, tn store.Tenant, owners map[Identifier]string) (string, error) {
	var best *profile.Profile
	for _, pid := range owners {
		p, err := profile.Get(ctx, tn, pid)
		for hops := 0; errors.Is(err, store.ErrNotFound) && hops < 16; hops++ {
			next, rerr := r.Redirect(ctx, tn, pid)
			if errors.Is(rerr, store.ErrNotFound) {
				// Claimed, profile not created yet (or a crash between).
				if err := r.ensureProfile(ctx, tn, pid); err != nil {
					return "", err
				}
				p, err = profile.Get(ctx, tn, pid)
				break
			}
			if rerr != nil {
				return "", fmt.Errorf("follow merge of profile %s: %w", pid, rerr)
			}
			// Mid-merge or merged: identifiers are still moving to next.
			pid = next
			p, err = profile.Get(ctx, tn, pid)
		}
		if errors.Is(err, store.ErrNotFound) {
			return "", errRetry
		}
		if err != nil {
			return "", fmt.Errorf("load profile %s: %w", pid, err)
		}
		if best == nil || p.CreatedAt.Before(best.CreatedAt) || (p.CreatedAt.Equal(best.CreatedAt) && p.ID < best.ID) {
			best = p
		}
	}
	return best.ID, nil
}

// Identifiers lists the identifiers a profile holds, oldest first.
func Identifiers(ctx context.Context, tn store.Tenant, profileID string) ([]Held, error) {
	docs, err := tn.C(store.Identities).Find(ctx, store.Query{Index: store.IdentitiesByProfile, Eq: []any{profileID}})
	if err != nil {
		return nil, fmt.Errorf("identifiers of profile %s: %w", profileID, err)
	}
	out := make([]Held, 0, len(docs))
	for _, d := range docs {
		var doc identity
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decode identity: %w", err)
		}
		out = append(out, Held{Identifier: Identifier{Type: doc.Type, Value: doc.Value}, FirstSeenAt: doc.FirstSeenAt.UTC()})
	}
	slices.SortStableFunc(out, func(a, b Held) int { return a.FirstSeenAt.Compare(b.FirstSeenAt) })
	return out, nil
}

// Lookup returns the id of the profile holding id, or store.ErrNotFound.
func Lookup(ctx context.Context, tn store.Tenant, id Identifier) (string, error) {
	var doc identity
	err := tn.C(store.Identities).FindOne(ctx, store.Query{Index: store.IdentitiesByValue, Eq: []any{id.Type, id.Value}}, &doc)
	if err != nil {
		return "", err
	}
	return doc.ProfileID, nil
}

// syncTerms makes the profile searchable by its identifier values and names.
func (r *Resolver) syncTerms(ctx context.Context, tn store.Tenant, p *profile.Profile) error {
	held, err := Identifiers(ctx, tn, p.ID)
	if err != nil {
		return err
	}
	terms := profile.NameTerms(p.Traits)
	for _, h := range held {
		terms = append(terms, h.Value)
	}
	return profile.SyncTerms(ctx, tn, p.ID, terms)
}
