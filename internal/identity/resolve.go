package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
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
	Identifiers []Identifier // normalised (see Types.Normalise)
	Traits      map[string]any
	SeenAt      time.Time // when the person was active
	Actor       string    // token subject, recorded on merges
	// Types are the workspace's identifier types, when the caller already
	// loaded them (to normalise); nil loads them.
	Types Types
	// Quiet skips the followers' AfterWrite for the resolved profile: the
	// write path (internal/ingest) evaluates segments itself, for track
	// once its events are counted, for identify right after. It also
	// leaves the resolved profile's profile.updated to the caller
	// (Result.Changes), who publishes it in its own outbox write.
	Quiet bool
	// SuppressionChecked: the caller has already refused suppressed
	// identifiers (trackBatch checks the whole batch before writing any of
	// it), so Resolve need not read them again.
	SuppressionChecked bool
	// Owners, when set, are the owners of the identifiers as the caller
	// just read them (LookupMany: a batch's look-ups in one read), ""
	// for none. The first attempt starts from them; a retry, like an
	// identifier they leave out, reads afresh. A stale "" fails the claim
	// and retries; an owner merged away since is followed. An owner still
	// live that an unmerge moved the identifier away from since is used
	// as read, like any look-up racing an unmerge, only with the window
	// of one call instead of one resolution.
	Owners map[Identifier]string
	// Decide, when set, decides the profile's segment memberships inside
	// the write that applies Traits and SeenAt (ingest's identify), so
	// that the profile is written once: a new one, born due, would
	// otherwise take a second write to be decided. Result.Decided says
	// whether that write ran; the caller then hands its moves off.
	Decide Decider
}

// Decider decides a profile's memberships inside its compare-and-swap
// (segment.Decider; package segment reads identity, so not the reverse).
type Decider interface {
	Decide(ctx context.Context, tn store.Tenant, p *profile.Profile, t rule.Touched) (bool, error)
}

// Result says which profile the identifiers resolved to.
type Result struct {
	Profile   *profile.Profile
	Created   bool
	Merged    []string   // profile ids merged into Profile by this call
	Conflicts []Conflict // merges refused, identifiers not attached
	// Attached: the call gave Profile an identifier it did not hold
	// (segment rules' identifier nodes read which types are held).
	Attached bool
	// Decided: Request.Decide decided Profile's memberships in the write
	// that returned it.
	Decided bool
	// Changes are the changes a Quiet request leaves its caller to
	// publish.
	Changes []realtime.Change
}

// addConflicts adds conflicts not reported yet (one pair of profiles can
// clash twice in a call: attaching, then merging).
func (res *Result) addConflicts(cs ...Conflict) {
	key := func(c Conflict) string {
		v, p := slices.Sorted(slices.Values(c.Values)), slices.Sorted(slices.Values(c.ProfileIDs))
		return c.Type + "\x00" + strings.Join(v, "\x01") + "\x00" + strings.Join(p, "\x01")
	}
	for _, c := range cs {
		if !slices.ContainsFunc(res.Conflicts, func(o Conflict) bool { return key(o) == key(c) }) {
			res.Conflicts = append(res.Conflicts, c)
		}
	}
}

// Deps are what a Resolver needs from outside the package; every field
// may be left out (tests).
type Deps struct {
	Now func() time.Time
	// Changes is told when a profile changes (profile.updated): created,
	// identifiers or traits changed, merged, unmerged.
	Changes realtime.Publisher
	// Followers are the other domains' steps of merges and unmerges,
	// and what follows every write (package merge's Coordinator).
	Followers Followers
}

// Followers are what the other domains do when identity writes. A merge
// (finishMerge) calls MoveProfileData after the source's identities moved
// and before the source is retired, and again after; an unmerge calls
// RestoreProfileData after the restored profile's identities came back,
// then CountItems for both profiles' counters; AfterWrite follows every
// successful write that can change segment memberships (identify,
// merge, unmerge) before it is acknowledged, and must not fail it.
//
// It is one interface owned here, not a coordinator above identity,
// because merges start inside Resolve (mid read-decide-retry loop) and a
// claimed merge is finished by whoever meets it next, Recover included:
// identity keeps that crash-safe process and calls out at these points.
// The order of the steps is package merge's doc.
type Followers interface {
	// MoveProfileData moves what other domains keep per profile (events,
	// consent) from source to target. Idempotent: a resumed merge calls
	// it again.
	MoveProfileData(ctx context.Context, tn store.Tenant, sourceID, targetID string) error
	// RestoreProfileData moves back, on unmerge, what a merge brought
	// from the restored profile: items whose origin is in origins, or
	// that arrived after since carrying one of the restored identifiers.
	RestoreProfileData(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []Identifier) error
	// CountItems counts a profile's items and the span they cover.
	CountItems(ctx context.Context, tn store.Tenant, profileID string) (count int64, first, last time.Time, err error)
	// AfterWrite is told of the profiles a write changed, its cause
	// ("identify", "merge", "unmerge") and what it touched.
	AfterWrite(ctx context.Context, tn store.Tenant, profileIDs []string, cause string, touched rule.Touched)
}

// New builds a resolver.
func New(d Deps) *Resolver {
	return &Resolver{clock: d.Now, changes: d.Changes, followers: d.Followers}
}

// Resolver resolves identifiers to profiles (New).
type Resolver struct {
	clock     func() time.Time
	changes   realtime.Publisher
	followers Followers

	salts saltCache // suppression salts read (suppress.go)
}

func (r *Resolver) afterWrite(ctx context.Context, tn store.Tenant, cause string, touched rule.Touched, profileIDs ...string) {
	if r.followers != nil {
		r.followers.AfterWrite(context.WithoutCancel(ctx), tn, profileIDs, cause, touched)
	}
}

// updated publishes profile.updated for profileID (best effort).
func (r *Resolver) updated(ctx context.Context, tn store.Tenant, profileID string, payload map[string]any) {
	realtime.Notify(ctx, r.changes, tn, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: profileID, Payload: payload})
}

// IdentifyTouched is what an identify call can have changed for segment
// rules: the trait keys it wrote, the activity span and whether it
// attached an identifier; a new or merged profile changed everything.
func IdentifyTouched(req Request, res Result) rule.Touched {
	t := rule.Touched{All: res.Created || len(res.Merged) > 0, Seen: !req.SeenAt.IsZero(), Identifiers: res.Attached}
	for k := range req.Traits {
		t.TraitKeys = append(t.TraitKeys, k)
	}
	return t
}

// maxResolveAttempts bounds retries when concurrent calls race on the same
// identifiers; each retry re-reads what the winner wrote.
const maxResolveAttempts = 30

// Resolve finds or creates the profile for req's identifiers.
//
// Identifiers are taken in priority order (lower first). The first one
// held by a profile (or, if it is new, a new profile) is the current
// profile. Each later identifier held by another profile merges that
// profile with the current one (the older survives), unless the two hold
// different values of a unique type: then they stay apart and the conflict
// is reported. A new identifier is attached to the current profile, unless
// it is a unique type the profile already holds another value of
// (conflict); over a type's limit, the profile's oldest values of that
// type drop off. Finally traits and activity time are applied.
func (r *Resolver) Resolve(ctx context.Context, tn store.Tenant, req Request) (Result, error) {
	types := req.Types
	if types == nil {
		var err error
		if types, err = LoadTypes(ctx, tn); err != nil {
			return Result{}, err
		}
	}
	ordered := slices.Clone(req.Identifiers)
	slices.SortStableFunc(ordered, func(a, b Identifier) int { return types.config(a.Type).Priority - types.config(b.Type).Priority })
	seenUnique := map[string]string{}
	for _, id := range ordered {
		if types.config(id.Type).Unique {
			if v, ok := seenUnique[id.Type]; ok && v != id.Value {
				return Result{}, apperr.Invalid("identifiers", "two %s values in one call (%q, %q): a profile holds only one", id.Type, truncate(v), truncate(id.Value))
			}
			seenUnique[id.Type] = id.Value
		}
	}
	// An erased person's identifiers are refused before anything is written.
	if !req.SuppressionChecked {
		if err := r.CheckSuppressed(ctx, tn, ordered); err != nil {
			return Result{}, err
		}
	}
	// An identifier attached by an attempt that then retried is held
	// all the same: the attempt that writes decides with it.
	attached := false
	for attempt := 0; attempt < maxResolveAttempts; attempt++ {
		res, err := r.resolveOnce(ctx, tn, types, ordered, req, &attached)
		if errors.Is(err, errRetry) {
			req.Owners = nil // stale: read them again
			continue
		}
		if err == nil && !req.Quiet {
			r.afterWrite(ctx, tn, "identify", IdentifyTouched(req, res), res.Profile.ID)
		}
		return res, err
	}
	return Result{}, fmt.Errorf("resolve identifiers: gave up after %d attempts under contention", maxResolveAttempts)
}

func (r *Resolver) resolveOnce(ctx context.Context, tn store.Tenant, types Types, ordered []Identifier, req Request, attached *bool) (Result, error) {
	res := Result{Attached: *attached}
	owners, err := r.lookup(ctx, tn, ordered, req.Owners)
	if err != nil {
		return Result{}, err
	}
	// Live profiles read in this attempt: every owner is checked twice
	// (anchor, then merges), and the common case reads one profile only.
	loaded := map[string]*profile.Profile{}
	live := func(owner string) (string, error) {
		if _, ok := loaded[owner]; ok {
			return owner, nil
		}
		id, p, err := r.live(ctx, tn, types, owner)
		if p != nil {
			loaded[id] = p
		}
		return id, err
	}
	// The current profile starts as the owner of the highest-priority
	// identifier that has one; a new profile only if none has.
	cur, anchor := "", 0
	for _, id := range ordered {
		if owner, ok := owners[id]; ok {
			if cur, err = live(owner); err != nil {
				return Result{}, err
			}
			anchor = types.config(id.Type).Priority
			break
		}
	}
	changed := res.Attached
	// fresh is the profile this attempt created, while creating it is all
	// the attempt did: its document and identifiers are known, not read.
	var fresh *created
	for _, id := range ordered {
		prio := types.config(id.Type).Priority
		if owner, ok := owners[id]; ok {
			owner, err := live(owner)
			if err != nil {
				return Result{}, err
			}
			if owner == cur {
				continue
			}
			fresh = nil
			survivor, conflicts, err := r.merge(ctx, tn, cur, owner, "identify", req.Actor)
			if errors.Is(err, errMergeCap) {
				res.addConflicts(Conflict{Type: "mergeLimit", Values: []string{fmt.Sprint(MaxMergesInto)}, ProfileIDs: []string{survivor, other(survivor, cur, owner)}})
				continue
			}
			if err != nil {
				return Result{}, err
			}
			if len(conflicts) > 0 {
				res.addConflicts(conflicts...)
				continue
			}
			res.Merged = append(res.Merged, other(survivor, cur, owner))
			cur, changed = survivor, true
			continue
		}
		if cur == "" {
			pid, made, err := r.create(ctx, tn, types, id)
			if err != nil {
				return Result{}, err
			}
			cur, anchor, res.Created, changed = pid, prio, true, true
			fresh = made
			continue
		}
		fresh = nil // more than the creation to write
		conflict, err := r.attach(ctx, tn, types, cur, id)
		if err != nil {
			return Result{}, err
		}
		if conflict == nil {
			changed, res.Attached, *attached = true, true, true
			continue
		}
		// A unique value the current profile already holds another value
		// of belongs to someone else: it gets a profile of its own, and
		// becomes the call's profile if it outranks the current anchor
		// (a shared device seen with userId A, then userId B, is B's now).
		split, _, err := r.create(ctx, tn, types, id)
		if err != nil {
			return Result{}, err
		}
		conflict.ProfileIDs = []string{cur, split}
		res.addConflicts(*conflict)
		if prio < anchor {
			cur, anchor, res.Created, changed = split, prio, true, true
		}
	}
	if len(res.Conflicts) > 0 {
		r.recordConflicts(ctx, tn, res.Conflicts, req.Actor)
	}
	if len(req.Traits) == 0 && req.SeenAt.IsZero() && !changed {
		// Nothing to write: the common case of a track by a known visitor.
		if p := loaded[cur]; p != nil {
			res.Profile = p
			return res, nil
		}
		p, err := profile.Get(ctx, tn, cur)
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, errRetry
		}
		if err != nil {
			return Result{}, fmt.Errorf("load profile %s: %w", cur, err)
		}
		if p.MergingInto != "" {
			return Result{}, errRetry
		}
		res.Profile = p
		return res, nil
	}
	if fresh != nil && fresh.doc.ID == cur && len(req.Traits) == 0 && req.SeenAt.IsZero() {
		// A new person with nothing more to apply (a track by a new
		// visitor): the document just inserted is the profile as stored.
		// No profile.updated: profileUpdated takes a profile id, and no
		// one can hold this one yet.
		if err := profile.NewTerms(ctx, tn, fresh.doc.ID, r.termsOf(fresh.doc, fresh.held)); err != nil {
			return Result{}, err
		}
		res.Profile = fresh.doc
		return res, nil
	}
	now := r.clock()
	apply := func(p *profile.Profile) error {
		if err := p.ApplyTraits(req.Traits, now); err != nil {
			return err
		}
		if !req.SeenAt.IsZero() {
			p.Seen(req.SeenAt)
		}
		if req.Decide != nil {
			if _, err := req.Decide.Decide(ctx, tn, p, IdentifyTouched(req, res)); err != nil {
				return fmt.Errorf("decide memberships of %s: %w", p.ID, err)
			}
		}
		return nil
	}
	var p *profile.Profile
	if seed := loaded[cur]; seed != nil && !changed {
		// Read in this attempt and not written since: no second read (a
		// stale copy costs one failed compare-and-swap).
		p, err = profile.UpdateFrom(ctx, tn, seed, now, apply)
	} else {
		p, err = profile.Update(ctx, tn, cur, now, apply)
	}
	if errors.Is(err, profile.ErrMerging) || errors.Is(err, store.ErrNotFound) {
		return Result{}, errRetry // merged away under us: resolve again
	}
	if err != nil {
		return Result{}, err
	}
	if err := r.syncTerms(ctx, tn, p); err != nil {
		return Result{}, err
	}
	res.Profile, res.Decided = p, req.Decide != nil
	if req.Quiet {
		res.Changes = append(res.Changes, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: p.ID})
	} else {
		r.updated(ctx, tn, p.ID, nil)
	}
	return res, nil
}

// created is a profile create made: the document it inserted and the
// identifiers the profile held right after.
type created struct {
	doc  *profile.Profile
	held []Held
}

// create claims id for a new profile and creates it: the profile's id,
// and what it inserted (nil if another caller, finding the identifier
// claimed, created the document first). Losing the race for the
// identifier means someone else created it: errRetry.
func (r *Resolver) create(ctx context.Context, tn store.Tenant, types Types, id Identifier) (string, *created, error) {
	candidate := store.NewID()
	if err := r.claim(ctx, tn, id, candidate); err != nil {
		if errors.Is(err, store.ErrDuplicateKey) {
			return "", nil, errRetry
		}
		return "", nil, err
	}
	c, err := r.ensureProfile(ctx, tn, candidate, types, id)
	if err != nil {
		return "", nil, err
	}
	return candidate, c, nil
}

func other(survivor, a, b string) string {
	if survivor == a {
		return b
	}
	return a
}

// attach gives the current profile a new identifier. A unique type is
// first reserved on the profile document (compare-and-swap), so two racing
// calls can never give one profile two values; the identity insert then
// decides who owns the value.
//
// The profile is first marked due (Profile.MarkDue), in the same
// compare-and-swap as the reservation: segment rules read which
// identifier types a profile holds, and the write that decides them in
// this call may never come (an error, a crash, the call's profile turning
// out to be another one), so the sweeper decides them then.
func (r *Resolver) attach(ctx context.Context, tn store.Tenant, types Types, cur string, id Identifier) (*Conflict, error) {
	cfg := types.config(id.Type)
	reserved := false
	var conflict *Conflict
	_, err := profile.Update(ctx, tn, cur, r.clock(), func(p *profile.Profile) error {
		conflict, reserved = nil, false
		if cfg.Unique {
			if v, ok := p.Uniques[id.Type]; ok {
				if v != id.Value {
					conflict = &Conflict{Type: id.Type, Values: []string{v, id.Value}, ProfileIDs: []string{cur}}
				}
				return nil
			}
			if p.Uniques == nil {
				p.Uniques = map[string]string{}
			}
			p.Uniques[id.Type], reserved = id.Value, true
		}
		p.MarkDue(r.clock())
		return nil
	})
	if errors.Is(err, profile.ErrMerging) || errors.Is(err, store.ErrNotFound) {
		return nil, errRetry
	}
	if err != nil {
		return nil, err
	}
	if conflict != nil {
		return conflict, nil
	}
	if err := r.claim(ctx, tn, id, cur); err != nil {
		if reserved {
			if uerr := r.unreserve(ctx, tn, cur, id); uerr != nil {
				return nil, uerr
			}
		}
		if errors.Is(err, store.ErrDuplicateKey) {
			return nil, errRetry // someone else holds it now: merge on the next pass
		}
		return nil, err
	}
	if !cfg.Unique {
		return nil, r.trim(ctx, tn, cur, id.Type, cfg.MaxPerProfile)
	}
	return nil, nil
}

// unreserve gives back a unique value attach reserved on profileID but
// could not claim. The reservation may have travelled with a merge (the
// profile folded into another), and the value may meanwhile have reached
// the profile legitimately (its holder merged in): it is removed only
// where it is held and its owner is neither the profile nor merged into it.
func (r *Resolver) unreserve(ctx context.Context, tn store.Tenant, profileID string, id Identifier) error {
	owner, err := Lookup(ctx, tn, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("look up identifier %s: %w", id.Type, err)
	}
	for hops := 0; hops < 16; hops++ {
		_, err := profile.Update(ctx, tn, profileID, r.clock(), func(p *profile.Profile) error {
			if p.Uniques[id.Type] == id.Value && owner != p.ID && !slices.Contains(p.MergedFrom, owner) {
				delete(p.Uniques, id.Type)
			}
			return nil
		})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, profile.ErrMerging):
			// Being merged: let the merge finish, then follow it.
			if err := r.Settle(ctx, tn, profileID); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		next, rerr := r.Redirect(ctx, tn, profileID)
		if errors.Is(rerr, store.ErrNotFound) {
			continue // live again (the merge was refused): try it again
		}
		if rerr != nil {
			return rerr
		}
		profileID = next
	}
	return fmt.Errorf("give back %s reservation: gave up under contention", id.Type)
}

// trim drops a profile's oldest identifiers of typ beyond max (ids are
// time-ordered, so index order is age order).
func (r *Resolver) trim(ctx context.Context, tn store.Tenant, profileID, typ string, max int) error {
	if max <= 0 {
		return nil
	}
	c := tn.C(Identities)
	docs, err := c.Find(ctx, store.Query{Index: IdentitiesByProfile, Eq: []any{profileID, typ}})
	if err != nil {
		return fmt.Errorf("identities of %s: %w", profileID, err)
	}
	for i := 0; i < len(docs)-max; i++ {
		var doc identity
		if err := docs[i].Decode(&doc); err != nil {
			return fmt.Errorf("decode identity: %w", err)
		}
		if err := c.Delete(ctx, doc.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drop identity %s: %w", doc.ID, err)
		}
	}
	return nil
}

// lookup returns, for each identifier held by some profile, its owner;
// known (Request.Owners) answers for the identifiers it holds.
func (r *Resolver) lookup(ctx context.Context, tn store.Tenant, ids []Identifier, known map[Identifier]string) (map[Identifier]string, error) {
	owners := map[Identifier]string{}
	for _, id := range ids {
		if pid, ok := known[id]; ok {
			if pid != "" {
				owners[id] = pid
			}
			continue
		}
		pid, err := Lookup(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up identifier %s: %w", id.Type, err)
		}
		owners[id] = pid
	}
	return owners, nil
}

// live returns the live profile standing for owner: itself, or where it
// was merged (the chain followed), or — for an identity whose profile was
// never created because of a crash — a profile created now. The profile
// document comes too when it was read (nil when created here).
func (r *Resolver) live(ctx context.Context, tn store.Tenant, types Types, owner string) (string, *profile.Profile, error) {
	p, err := profile.Get(ctx, tn, owner)
	if err == nil && p.MergingInto == "" {
		return owner, p, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, fmt.Errorf("load profile %s: %w", owner, err)
	}
	if err == nil {
		// Being merged away: help the merge finish, then look again.
		if err := r.finishByID(ctx, tn, p.MergeID); err != nil {
			return "", nil, err
		}
		return "", nil, errRetry
	}
	// One hop (not Redirect, which would go past a pending claim that may
	// yet be refused): the retry looks at the next profile the same way.
	next, err := r.redirectOnce(ctx, tn, owner)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := r.ensureProfile(ctx, tn, owner, types, Identifier{}); err != nil {
			return "", nil, err
		}
		return owner, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	// Identities still on a merged-away profile: move them on.
	if _, err := r.moveAll(ctx, tn, owner, next); err != nil {
		return "", nil, err
	}
	if err := r.sweepOn(ctx, tn, next); err != nil {
		return "", nil, err
	}
	return "", nil, errRetry
}

// claim attaches id to profileID. ErrDuplicateKey means someone holds it.
func (r *Resolver) claim(ctx context.Context, tn store.Tenant, id Identifier, profileID string) error {
	doc := identity{
		ID: store.NewID(), Type: id.Type, Value: id.Value, ProfileID: profileID,
		FirstSeenAt: r.clock().UTC().Truncate(time.Millisecond),
	}
	if err := tn.C(Identities).Insert(ctx, doc); err != nil {
		if errors.Is(err, store.ErrDuplicateKey) {
			return err
		}
		return fmt.Errorf("attach %s to profile %s: %w", id.Type, profileID, err)
	}
	return nil
}

// ensureProfile creates the profile document for an id that owns
// identifiers (first, if unique, is recorded as its value). Any caller may
// do it, so a crash between claiming an identifier and creating the
// profile heals on the next call. Healing (no first) records the unique
// values the id already holds: its creator may only be slow, not dead, and
// the profile must not start without the guard its identities need.
// It returns what it inserted, nil if the document existed already.
func (r *Resolver) ensureProfile(ctx context.Context, tn store.Tenant, id string, types Types, first Identifier) (*created, error) {
	p := profile.New(id, r.clock())
	// Born due: the write that follows (ingest's, identify's) decides its
	// memberships and sets when it is next due. If a crash comes first,
	// the sweeper decides them instead of no one ever.
	p.NextEvalAt = p.CreatedAt
	if types != nil && first.Type != "" && types.config(first.Type).Unique {
		p.Uniques[first.Type] = first.Value
	}
	if first.Type == "" {
		held, err := Identifiers(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		for _, h := range held {
			if types.config(h.Type).Unique {
				p.Uniques[h.Type] = h.Value
			}
		}
	}
	err := profile.Create(ctx, tn, p)
	if errors.Is(err, store.ErrDuplicateKey) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// A slow creator can insert after its profile already lived and was
	// merged away: another call found the claimed identifier, created the
	// profile itself, and a merge moved the identifier on and retired the
	// document. Inserted now, the document would hold nothing and never be
	// retired again: take it back.
	held, err := Identifiers(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		if err := profile.Erase(ctx, tn, id); err != nil {
			return nil, fmt.Errorf("retire resurrected profile %s: %w", id, err)
		}
		return nil, errRetry
	}
	p.WorkspaceID = tn.Workspace() // as the store wrote it
	return &created{doc: p, held: held}, nil
}

// Identifiers lists the identifiers a profile holds, oldest first.
func Identifiers(ctx context.Context, tn store.Tenant, profileID string) ([]Held, error) {
	docs, err := tn.C(Identities).Find(ctx, store.Query{Index: IdentitiesByProfile, Eq: []any{profileID}})
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

// FindEach returns, for each of ids as a caller gave them, the id of the
// profile holding it, or "" when no profile does. Each is normalised
// with the workspace's identifier types (read once) before its look-up;
// an invalid one is refused (apperr.Invalid) at field(i), as
// Types.Normalise names it (query profile(identifier:), the static
// segment mutations).
func FindEach(ctx context.Context, tn store.Tenant, ids []Identifier, field func(i int) string) ([]string, error) {
	types, err := LoadTypes(ctx, tn)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		norm, err := types.Normalise(field(i), []Identifier{id})
		if err != nil {
			return nil, err
		}
		pid, err := Lookup(ctx, tn, norm[0])
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up identifier %d: %w", i, err)
		}
		out[i] = pid
	}
	return out, nil
}

// LookupMany returns the owner of each of ids ("" when no profile holds
// it), reading each type's values at once (store.Query.In).
func LookupMany(ctx context.Context, tn store.Tenant, ids []Identifier) (map[Identifier]string, error) {
	byType := map[string][]string{}
	out := make(map[Identifier]string, len(ids))
	for _, id := range ids {
		if _, dup := out[id]; !dup {
			out[id] = ""
			byType[id.Type] = append(byType[id.Type], id.Value)
		}
	}
	for typ, values := range byType {
		for in := range store.InLists(values) {
			docs, err := tn.C(Identities).Find(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{typ}, In: in})
			if err != nil {
				return nil, fmt.Errorf("look up %d %s identifiers: %w", len(in), typ, err)
			}
			for _, d := range docs {
				var doc identity
				if err := d.Decode(&doc); err != nil {
					return nil, fmt.Errorf("decode identity: %w", err)
				}
				out[Identifier{Type: doc.Type, Value: doc.Value}] = doc.ProfileID
			}
		}
	}
	return out, nil
}

// Lookup returns the id of the profile holding id, or store.ErrNotFound.
func Lookup(ctx context.Context, tn store.Tenant, id Identifier) (string, error) {
	var doc identity
	err := tn.C(Identities).FindOne(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{id.Type, id.Value}}, &doc)
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
	return profile.SyncTerms(ctx, tn, p.ID, r.termsOf(p, held))
}

// termsOf are the search terms of p holding held: its identifier values
// and its names.
func (r *Resolver) termsOf(p *profile.Profile, held []Held) []string {
	terms := profile.NameTerms(p.Traits)
	for _, h := range held {
		terms = append(terms, h.Value)
	}
	return terms
}
