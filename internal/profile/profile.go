// Package profile holds the unified profile document and its reads: by id
// (following merges), listing, search, and compare-and-swap updates.
package profile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Profile is the stored document of one person.
type Profile struct {
	ID          string         `bson:"_id"`
	WorkspaceID string         `bson:"workspaceId"`
	Traits      map[string]any `bson:"traits"`
	EventCount  int64          `bson:"eventCount"`
	// FirstSeenAt and LastSeenAt span the person's activity (events,
	// interactions, identify calls). Always set so they can be indexed.
	FirstSeenAt time.Time `bson:"firstSeenAt"`
	LastSeenAt  time.Time `bson:"lastSeenAt"`
	CreatedAt   time.Time `bson:"createdAt"`
	UpdatedAt   time.Time `bson:"updatedAt"`
	// MergedFrom lists profiles merged into this one (transitively).
	MergedFrom []string `bson:"mergedFrom"`
	// MergeCount counts merges into this profile (capped, see identity).
	MergeCount int `bson:"mergeCount"`
	// TraitsAt is when each trait key was last written: merges resolve
	// trait conflicts last-write-wins per key.
	TraitsAt map[string]time.Time `bson:"traitsAt"`
	// Uniques holds the value of each unique identifier type (e.g. userId)
	// the profile has: the compare-and-swap on this document is what keeps
	// a profile from ever holding two userIds, even under races.
	Uniques map[string]string `bson:"uniques"`
	// MergingInto is set (with MergeID) once a merge has claimed this
	// profile: from then on writers go to the target instead, so nothing
	// written here is lost when the profile is retired.
	MergingInto string `bson:"mergingInto,omitempty"`
	MergeID     string `bson:"mergeId,omitempty"`
	// RefusedMerges lists merges into this profile that were refused when
	// they came to fold (a unique-type conflict): the decision is taken
	// once, in the same compare-and-swap that would have folded, so
	// concurrent finishers of one merge cannot decide differently.
	RefusedMerges []string `bson:"refusedMerges,omitempty"`
	// Features are the segment feature counters (rule.Features), by
	// feature key, maintained on ingest (package membership).
	Features map[string]rule.Counter `bson:"features"`
	// NextEvalAt is the earliest moment a segment membership of this
	// profile can change with time alone; NoEval when none. Always set
	// (indexed: the segment sweeper reads nextEvalAt <= now).
	NextEvalAt time.Time `bson:"nextEvalAt"`
	// Segments lists the segments (dynamic and static) the profile is a
	// member of, sorted, as decided in this document's own compare-and-swap
	// (package segment): deciding and recording a membership is one write.
	// Nil on a document written before memberships were kept here.
	Segments []string `bson:"segments"`
	// Moves are membership changes decided here and not yet handed off to
	// the segment engine's collections (members, history, notifications);
	// MovesNext is the NextEvalAt to restore once they are. Meanwhile
	// NextEvalAt is held early, so that the segment sweeper finishes a
	// hand-off a crash interrupted.
	Moves     []SegmentMove `bson:"moves,omitempty"`
	MovesNext time.Time     `bson:"movesNext,omitempty"`
	// Built lists the gated segment builds under way that have visited
	// this profile: until then no write decides the building segment
	// here (package segment, build.go).
	Built []string `bson:"built,omitempty"`
	// Consent is the current consent state, by rule.ConsentKey
	// ("purpose:CHANNEL"): the entries that are or can still become
	// current, oldest first (package consent; the full records are in the
	// consent log).
	Consent map[string][]rule.ConsentEntry `bson:"consent,omitempty"`
	// Computed holds the computed traits' state by definition key
	// (package traits; values are read with the definition, agg.Def.Value).
	Computed agg.States `bson:"computed,omitempty"`
	// ComputedEpoch counts the writes that set computed state from the
	// stored events (backfill, recompute): ingest compares it with the
	// copy it read before storing its events to know whether such a write
	// may already have counted them (package traits).
	ComputedEpoch int64 `bson:"computedEpoch,omitempty"`
	// RecountEpoch counts the writes that set EventCount from the stored
	// items (the recount after a crash, an unmerge): an ingest write whose
	// copy, read before it stored its items, has another one recounts its
	// count instead of adding to it (package ingest).
	RecountEpoch int64 `bson:"recountEpoch,omitempty"`
	// Tally is what the built-in scores read (orders, revenue, activity
	// per day), maintained with the computed state (package traits).
	Tally *scores.Tally `bson:"tally,omitempty"`
	// Lifecycle is the person's lifecycle stage ("" before any; package
	// crm/lifecycle writes it and keeps its history).
	Lifecycle string `bson:"lifecycleStage,omitempty"`
	// FactsSeen counts the segment decisions made on what other domains
	// keep of the person (tickets, deals): each writes it, so two
	// decisions on different reads are ordered by this document's
	// compare-and-swap (package segment).
	FactsSeen int64 `bson:"factsSeen,omitempty"`
	Version   int64 `bson:"version"`

	// stored is the document as the store holds it at Version, when this
	// value was read or written whole (Get, Create, a write): told to the
	// store with the next write, it spares the embedded engine a read
	// (store.Collection.ReplaceOver).
	stored bson.Raw
}

// SegmentMove is one membership change decided in a profile's
// compare-and-swap (see Profile.Moves). ID, the id of its history record,
// is chosen in that write and stored with the move, so that handing it
// off twice records it once.
type SegmentMove struct {
	ID        string    `bson:"id"`
	SegmentID string    `bson:"segmentId"`
	Enter     bool      `bson:"enter"`
	At        time.Time `bson:"at"`
	Cause     string    `bson:"cause"`
}

// NoEval is NextEvalAt when no time-based re-evaluation is due.
var NoEval = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// ErrMerging is returned by Update when the profile is being merged away:
// the caller should redirect the write to the merge target.
var ErrMerging = errors.New("profile: being merged away")

// Trait limits: what one call may send, and what a profile may hold.
var (
	TraitLimits       = userjson.Limits{MaxDepth: 5, MaxBytes: 16 << 10}
	MaxProfileTraitsB = 64 << 10
)

// New returns a fresh profile document created at now.
func New(id string, now time.Time) *Profile {
	now = now.UTC().Truncate(time.Millisecond)
	return &Profile{
		ID: id, Traits: map[string]any{}, MergedFrom: []string{}, TraitsAt: map[string]time.Time{},
		Uniques: map[string]string{}, Features: map[string]rule.Counter{}, NextEvalAt: NoEval, Segments: []string{},
		FirstSeenAt: now, LastSeenAt: now, CreatedAt: now, UpdatedAt: now,
	}
}

// Normalise fixes up a decoded document: nested traits arrive as BSON
// types, times in UTC.
func (p *Profile) normalise() {
	p.Traits = userjson.PlainObject(p.Traits)
	if p.MergedFrom == nil {
		p.MergedFrom = []string{}
	}
	if p.TraitsAt == nil {
		p.TraitsAt = map[string]time.Time{}
	}
	for k, t := range p.TraitsAt {
		p.TraitsAt[k] = t.UTC()
	}
	if p.Uniques == nil {
		p.Uniques = map[string]string{}
	}
	if p.Features == nil {
		p.Features = map[string]rule.Counter{}
	}
	for k, list := range p.Consent {
		for i := range list {
			e := &list[i]
			e.CapturedAt, e.RecordedAt, e.ExpiresAt = e.CapturedAt.UTC(), e.RecordedAt.UTC(), e.ExpiresAt.UTC()
		}
		p.Consent[k] = list
	}
	if p.NextEvalAt.IsZero() {
		p.NextEvalAt = NoEval // written before segments existed
	}
	p.NextEvalAt = p.NextEvalAt.UTC()
	p.MovesNext = p.MovesNext.UTC()
	for i := range p.Moves {
		p.Moves[i].At = p.Moves[i].At.UTC()
	}
	p.FirstSeenAt = p.FirstSeenAt.UTC()
	p.LastSeenAt = p.LastSeenAt.UTC()
	p.CreatedAt = p.CreatedAt.UTC()
	p.UpdatedAt = p.UpdatedAt.UTC()
}

// EvalAt is the earliest moment a segment membership of p can change
// with time alone: NextEvalAt without the hold pending moves put on it.
func (p *Profile) EvalAt() time.Time {
	if len(p.Moves) > 0 {
		return p.MovesNext
	}
	return p.NextEvalAt
}

// MarkDue makes the profile due at now: the segment sweeper re-decides all
// its memberships once now has come, unless a write decides them in full
// first. A write whose own decision may not follow (an identifier
// attached before the profile is written, a merge's fold) marks it so
// that a failure or a crash in between delays the decision, never loses
// it. Earlier is always safe.
func (p *Profile) MarkDue(now time.Time) {
	now = now.UTC().Truncate(time.Millisecond)
	if p.NextEvalAt.After(now) {
		p.NextEvalAt = now
	}
	if len(p.Moves) > 0 && p.MovesNext.After(now) {
		p.MovesNext = now
	}
}

// Seen widens the activity span to include t.
func (p *Profile) Seen(t time.Time) {
	t = t.UTC().Truncate(time.Millisecond)
	if t.Before(p.FirstSeenAt) {
		p.FirstSeenAt = t
	}
	if t.After(p.LastSeenAt) {
		p.LastSeenAt = t
	}
}

// ApplyTraits patches the traits (null removes a key), stamps each key
// written with at, and checks the total size.
func (p *Profile) ApplyTraits(patch map[string]any, at time.Time) error {
	if len(patch) == 0 {
		return nil
	}
	next := userjson.Patch(p.Traits, patch)
	if n := userjson.Size(next); n > MaxProfileTraitsB {
		return apperr.Invalid("traits", "profile traits would be %d bytes, more than the %d allowed", n, MaxProfileTraitsB)
	}
	p.Traits = next
	if p.TraitsAt == nil {
		p.TraitsAt = map[string]time.Time{}
	}
	at = at.UTC().Truncate(time.Millisecond)
	for k, v := range patch {
		if v == nil {
			delete(p.TraitsAt, k)
			continue
		}
		p.TraitsAt[k] = at
	}
	return nil
}

// Get loads a live profile by id (no merge redirect).
func Get(ctx context.Context, tn store.Tenant, id string) (*Profile, error) {
	raw, err := tn.C(Profiles).GetRaw(ctx, id)
	if err != nil {
		return nil, err
	}
	return Decode(raw)
}

// Merging returns those of ids whose profile document still exists,
// claimed by a merge (one read per store.MaxIn ids, over the primary
// key): among a profile's mergedFrom, the sources of merges still moving
// their items. (A source an unmerge has just restored exists too, but is
// claimed by nothing.)
func Merging(ctx context.Context, tn store.Tenant, ids []string) ([]string, error) {
	var out []string
	err := eachOf(ctx, tn, ids, func(raw bson.Raw) error {
		id, _ := raw.Lookup("_id").StringValueOK()
		if into, _ := raw.Lookup("mergingInto").StringValueOK(); id != "" && into != "" {
			out = append(out, id)
		}
		return nil
	})
	return out, err
}

// EachOf calls fn with each of ids that is stored, decoded as far as f
// (DecodeFields): one read per store.MaxIn ids.
func EachOf(ctx context.Context, tn store.Tenant, ids []string, f Fields, fn func(*Profile) error) error {
	return eachOf(ctx, tn, ids, func(raw bson.Raw) error {
		p, err := DecodeFields(raw, f)
		if err != nil {
			return err
		}
		return fn(p)
	})
}

// eachOf calls fn with the document of each of ids that is stored, one
// read per store.MaxIn ids over the primary key.
func eachOf(ctx context.Context, tn store.Tenant, ids []string, fn func(bson.Raw) error) error {
	for in := range store.InLists(ids) {
		docs, err := tn.C(Profiles).Find(ctx, store.Query{Index: store.ByID, In: in})
		if err != nil {
			return fmt.Errorf("look up %d profiles: %w", len(in), err)
		}
		for _, d := range docs {
			if err := fn(d.Raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// Redirector follows an id that was merged away to the profile it was
// merged into. The identity package provides it (it owns merge records).
type Redirector func(ctx context.Context, tn store.Tenant, id string) (string, error)

// Retired tells whether profile id is erased or merged away (or being
// merged): a document written for it after the fact would be stranded.
// Other domains writing a document that names a profile (an account
// link, a task) check it once written, and take theirs back when true.
func Retired(ctx context.Context, tn store.Tenant, id string) (bool, error) {
	p, err := Get(ctx, tn, id)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("load profile %s: %w", id, err)
	}
	return p.MergingInto != "", nil
}

// Resolve loads the live profile for id, following merges via redirect.
// Returns an apperr NOT_FOUND when there is none.
func Resolve(ctx context.Context, tn store.Tenant, id string, redirect Redirector) (*Profile, error) {
	for hops := 0; hops < 16; hops++ {
		p, err := Get(ctx, tn, id)
		if err == nil && p.MergingInto != "" {
			id = p.MergingInto // being merged away: show the survivor
			continue
		}
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("load profile %s: %w", id, err)
		}
		if redirect == nil {
			break
		}
		next, err := redirect(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("follow merge of profile %s: %w", id, err)
		}
		id = next
	}
	return nil, apperr.New(apperr.NotFound, "profile not found")
}

// Update applies fn to the profile with id and writes it with
// compare-and-swap, retrying on concurrent writes. fn may be called more
// than once and must be deterministic over its input. A profile claimed by
// a merge is not written: ErrMerging (use UpdateAny to write it anyway).
func Update(ctx context.Context, tn store.Tenant, id string, now time.Time, fn func(*Profile) error) (*Profile, error) {
	return update(ctx, tn, id, nil, now, false, fn)
}

// UpdateFrom is Update starting from seed, a copy of the document the
// caller has just read (saving the read when nobody wrote in between; a
// stale seed costs one failed compare-and-swap, then Update's loop).
// UpdateFrom takes seed over: it may be modified.
func UpdateFrom(ctx context.Context, tn store.Tenant, seed *Profile, now time.Time, fn func(*Profile) error) (*Profile, error) {
	return update(ctx, tn, seed.ID, seed, now, false, fn)
}

// UpdateAny is Update that also writes a profile claimed by a merge (the
// merge itself claims and releases it).
func UpdateAny(ctx context.Context, tn store.Tenant, id string, now time.Time, fn func(*Profile) error) (*Profile, error) {
	return update(ctx, tn, id, nil, now, true, fn)
}

// UpdateAnyFrom is UpdateAny starting from seed, as UpdateFrom is Update:
// for walks that have just read the profiles they rewrite.
func UpdateAnyFrom(ctx context.Context, tn store.Tenant, seed *Profile, now time.Time, fn func(*Profile) error) (*Profile, error) {
	return update(ctx, tn, seed.ID, seed, now, true, fn)
}

func update(ctx context.Context, tn store.Tenant, id string, seed *Profile, now time.Time, anyState bool, fn func(*Profile) error) (*Profile, error) {
	const maxAttempts = 50
	for attempt := 0; attempt < maxAttempts; attempt++ {
		p, err := tryUpdate(ctx, tn, id, seed, now, anyState, fn)
		seed = nil
		var ferr fnError
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &ferr):
			return nil, ferr.error // fn's own answer: not retried
		case !errors.Is(err, store.ErrConflict):
			return nil, err
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("write profile %s: too much contention: %w", id, store.ErrConflict)
}

// tryUpdate is one read-decide-write attempt of update, in the profile's
// turn (lock.go): store.ErrConflict if another process wrote it between.
func tryUpdate(ctx context.Context, tn store.Tenant, id string, seed *Profile, now time.Time, anyState bool, fn func(*Profile) error) (*Profile, error) {
	defer writeLocks.lock(id)()
	p, err := seed, error(nil)
	if seed == nil {
		p, err = Get(ctx, tn, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load profile %s: %w", id, err)
	}
	if p.MergingInto != "" && !anyState {
		return nil, fmt.Errorf("write profile %s: %w", id, ErrMerging)
	}
	if err := fn(p); err != nil {
		return nil, fnError{err}
	}
	prev := p.Version
	p.Version++
	if t := now.UTC().Truncate(time.Millisecond); t.After(p.UpdatedAt) {
		p.UpdatedAt = t
	}
	raw, err := tn.C(Profiles).ReplaceOver(ctx, p, prev, p.stored)
	if err != nil {
		return nil, fmt.Errorf("write profile %s: %w", id, err)
	}
	p.stored = raw
	return p, nil
}

// fnError carries an error of update's fn through tryUpdate.
type fnError struct{ error }

// Swap writes p, read at version p.Version, once: store.ErrConflict if
// someone wrote it since (no retry: the caller re-reads and decides
// again). On success p holds the new version.
// The caller holds the profile's turn (Turns).
func Swap(ctx context.Context, tn store.Tenant, p *Profile, now time.Time) error {
	prev := p.Version
	p.Version++
	if t := now.UTC().Truncate(time.Millisecond); t.After(p.UpdatedAt) {
		p.UpdatedAt = t
	}
	raw, err := tn.C(Profiles).ReplaceOver(ctx, p, prev, p.stored)
	if err != nil {
		p.Version = prev
		return fmt.Errorf("write profile %s: %w", p.ID, err)
	}
	p.stored = raw
	return nil
}

// backoff waits before attempt+1 of a compare-and-swap that lost a race.
// Writers of a hot profile read the same version and, their writes
// committed together by the store, all but one lose at once: without a
// pause they read and lose together again. A random wait, growing with
// the attempts (up to 20 ms), spreads them out.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	limit := min(time.Duration(attempt)*250*time.Microsecond, 20*time.Millisecond)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Order is a listing order.
type Order int

// Listing orders.
const (
	CreatedDesc Order = iota
	CreatedAsc
	UpdatedDesc
	LastSeenDesc
)

func (o Order) query() (index string, desc bool) {
	switch o {
	case CreatedAsc:
		return ProfilesByCreated, false
	case UpdatedDesc:
		return ProfilesByUpdated, true
	case LastSeenDesc:
		return ProfilesByLastSeen, true
	default:
		return ProfilesByCreated, true
	}
}

// Page is one page of a listing.
type Page struct {
	Profiles []*Profile
	Cursors  []string
	HasNext  bool
}

// List returns up to first profiles in order, after the cursor.
func List(ctx context.Context, tn store.Tenant, order Order, first int, after string) (Page, error) {
	index, desc := order.query()
	docs, err := tn.C(Profiles).Find(ctx, store.Query{Index: index, Desc: desc, After: after, Limit: first + 1})
	if err != nil {
		return Page{}, cursorErr(err, "list profiles")
	}
	var page Page
	for i, d := range docs {
		if i == first {
			page.HasNext = true
			break
		}
		var p Profile
		if err := d.Decode(&p); err != nil {
			return Page{}, fmt.Errorf("decode profile: %w", err)
		}
		p.normalise()
		page.Profiles = append(page.Profiles, &p)
		page.Cursors = append(page.Cursors, d.Key)
	}
	return page, nil
}

func cursorErr(err error, what string) error {
	if errors.Is(err, store.ErrBadCursor) {
		return apperr.Invalid("after", "malformed cursor")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// NameTerms returns the lower-cased name tokens of traits that search
// matches: firstName, lastName, name.
func NameTerms(traits map[string]any) []string {
	var out []string
	for _, k := range []string{"firstName", "lastName", "name"} {
		s, ok := traits[k].(string)
		if !ok {
			continue
		}
		for _, f := range strings.Fields(strings.ToLower(s)) {
			if len(f) <= 64 {
				out = append(out, f)
			}
		}
	}
	return out
}

// CountEvent adds one occurrence at at to every feature counter the event
// (name, props) matches. Ingest calls it inside its compare-and-swap.
func (p *Profile) CountEvent(features []rule.Feature, name string, props map[string]any, at time.Time) {
	for _, f := range features {
		if !f.Matches(name, props) {
			continue
		}
		if p.Features == nil {
			p.Features = map[string]rule.Counter{}
		}
		c := p.Features[f.Key]
		c.Add(at)
		p.Features[f.Key] = c
	}
}

// Create stores a new profile document. A profile of that id already
// stored is store.ErrDuplicateKey (callers that create idempotently test
// for it with errors.Is).
func Create(ctx context.Context, tn store.Tenant, p *Profile) error {
	raw, err := tn.C(Profiles).InsertStored(ctx, p)
	if err != nil {
		return fmt.Errorf("create profile %s: %w", p.ID, err)
	}
	p.stored = raw
	return nil
}

// Count is the number of live profiles of the workspace (an index count).
func Count(ctx context.Context, tn store.Tenant) (int64, error) {
	n, err := tn.C(Profiles).Count(ctx, store.Query{Index: ProfilesByCreated})
	if err != nil {
		return 0, fmt.Errorf("count profiles: %w", err)
	}
	return n, nil
}

// Due returns up to limit profiles whose nextEvalAt is at or before now
// (the segment sweeper's work), decoded.
func Due(ctx context.Context, tn store.Tenant, now time.Time, limit int) ([]*Profile, error) {
	docs, err := tn.C(Profiles).Find(ctx, store.Query{Index: ProfilesByNextEval, Range: &store.Bound{Lte: store.DateTime(now)}, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("due profiles: %w", err)
	}
	out := make([]*Profile, 0, len(docs))
	for _, d := range docs {
		p, err := Decode(d.Raw)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Raw returns a profile document as stored (a data-subject export), or
// store.ErrNotFound.
func Raw(ctx context.Context, tn store.Tenant, id string) (bson.Raw, error) {
	var raw bson.Raw
	if err := tn.C(Profiles).Get(ctx, id, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Mismatch is a difference an exactness check found between a profile as
// stored and as recomputed from its stored events (segment.Verify,
// traits.Verify; ingest.Verify runs both).
type Mismatch struct {
	ProfileID, What  string
	Stored, Computed string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s %s: stored %s, from the events %s", m.ProfileID, m.What, m.Stored, m.Computed)
}

// CountCreated is how many of the stored profiles were created in [from,
// to): an index count. Profiles merged away or erased are not stored.
func CountCreated(ctx context.Context, tn store.Tenant, from, to time.Time) (int64, error) {
	n, err := tn.C(Profiles).Count(ctx, store.Query{Index: ProfilesByCreated, Range: &store.Bound{Gte: store.DateTime(from), Lt: store.DateTime(to)}})
	if err != nil {
		return 0, fmt.Errorf("count profiles created from %s: %w", from.Format(time.RFC3339), err)
	}
	return n, nil
}

// CreatedAt returns when each of ids that is a stored profile was
// created (ids not stored are left out), one read per store.MaxIn ids.
func CreatedAt(ctx context.Context, tn store.Tenant, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	err := eachOf(ctx, tn, ids, func(raw bson.Raw) error {
		id, _ := raw.Lookup("_id").StringValueOK()
		if at, ok := raw.Lookup("createdAt").TimeOK(); ok {
			out[id] = at
		}
		return nil
	})
	return out, err
}

// TraitOf returns the value of trait key (a dot path) of each of ids that
// is a stored profile and has it, one read per store.MaxIn ids.
func TraitOf(ctx context.Context, tn store.Tenant, ids []string, key string) (map[string]any, error) {
	out := make(map[string]any, len(ids))
	err := eachOf(ctx, tn, ids, func(raw bson.Raw) error {
		var p struct {
			ID     string         `bson:"_id"`
			Traits map[string]any `bson:"traits"`
		}
		if err := bson.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("decode profile traits: %w", err)
		}
		if v, ok := rule.Lookup(userjson.PlainObject(p.Traits), key); ok && v != nil {
			out[p.ID] = v
		}
		return nil
	})
	return out, err
}
