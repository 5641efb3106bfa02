// Package segment is the segment engine: segment documents, their
// members and membership history, feature counters on profiles (backfill
// and ingest), real-time re-evaluation after writes, the time sweeper and
// preview. The rules themselves (tree, validation, evaluator) live in the
// pure package segment.
//
// # Documents
//
//   - segments: one per segment (Segment). Archived segments keep their
//     members frozen: archive stops changes and exits no one.
//   - memberships: one per (segment, profile) member, _id
//     segmentId/profileId: the primary key is the index of members by
//     segment (membersOf). A profile's memberships are decided on the
//     profile document itself (Profile.Segments, decide.go), in the
//     compare-and-swap that writes it; this collection follows the
//     document through the hand-off.
//   - membership_changes: the history (ENTERED/EXITED, at, cause), each
//     record written once under the id its decision chose, and published
//     as realtime membership.changed.
//   - segment_builds: one per build of a rule (Build): status, progress,
//     lease; the segment's BuildID names its current one.
//   - segment_workspaces (system workspace): workspaces that have segments,
//     which the sweeper visits.
//
// # Consistency
//
// The active segments of a workspace are cached per process for CacheTTL
// (1 s); a change made through this process drops the cache at once, one
// made through another instance is seen within CacheTTL. A new rule is
// built in the background (build.go); beside live ingest its members
// enter exactly once and its feature counters are exact.
package segment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/rollup"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/wscache"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Kinds and statuses of segments, kinds of membership changes.
const (
	Dynamic  = "DYNAMIC"
	Static   = "STATIC"
	Active   = "ACTIVE"
	Archived = "ARCHIVED"
	Entered  = "ENTERED"
	Exited   = "EXITED"
)

// Limits.
const (
	MaxStaticBatch = 10_000
	MaxDescription = 2000
	CacheTTL       = time.Second
)

// Segment is the stored document of one segment.
type Segment struct {
	ID          string         `bson:"_id"`
	WorkspaceID string         `bson:"workspaceId"`
	Name        string         `bson:"name"`
	Description string         `bson:"description"`
	Kind        string         `bson:"kind"`
	Status      string         `bson:"status"`
	Rule        rule.Rule      `bson:"rule"`
	Features    []rule.Feature `bson:"features"`
	Deps        rule.Deps      `bson:"deps"`
	Version     int64          `bson:"version"`
	// BuildID is the current build of the rule (build.go); empty on a
	// segment saved before builds existed, which is ready.
	BuildID   string    `bson:"buildId,omitempty"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
	// Size is filled on read (a count of memberships), not stored
	// maintained: a counter document would be one contended write per change.
	Size int64 `bson:"-"`
}

// Member is one membership document.
type Member struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	SegmentID   string    `bson:"segmentId"`
	ProfileID   string    `bson:"profileId"`
	EnteredAt   time.Time `bson:"enteredAt"`
}

// Change is one membership_changes document.
type Change struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	SegmentID   string    `bson:"segmentId"`
	ProfileID   string    `bson:"profileId"`
	Kind        string    `bson:"kind"`
	At          time.Time `bson:"at"`
	Cause       string    `bson:"cause"`
}

func memberID(segmentID, profileID string) string { return segmentID + "/" + profileID }

// membersOf is the query of a segment's memberships in id order: the
// primary key's range of the ids memberID gives it.
func membersOf(segmentID string) store.Query {
	prefix := segmentID + "/"
	return store.Query{Index: store.ByID, Range: &store.Bound{Prefix: &prefix}}
}

// memberships reads the memberships profileID has among segmentIDs, by id.
func memberships(ctx context.Context, tn store.Tenant, profileID string, segmentIDs []string) ([]Member, error) {
	var out []Member
	err := eachMembership(ctx, tn, profileID, segmentIDs, func(raw bson.Raw) error {
		var m Member
		if err := bson.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("decode membership: %w", err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// eachMembership calls fn with each stored membership profileID has
// among segmentIDs, read by id, in id order.
func eachMembership(ctx context.Context, tn store.Tenant, profileID string, segmentIDs []string, fn func(bson.Raw) error) error {
	ids := make([]string, len(segmentIDs))
	for i, s := range segmentIDs {
		ids[i] = memberID(s, profileID)
	}
	for in := range store.InLists(ids) {
		docs, err := tn.C(Memberships).Find(ctx, store.Query{Index: store.ByID, In: in})
		if err != nil {
			return fmt.Errorf("memberships of %s: %w", profileID, err)
		}
		for _, d := range docs {
			if err := fn(d.Raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// allSegmentIDs reads the ids of every segment of the workspace, archived
// ones included (their members stay), bypassing the cache: for reads that
// must miss no membership (erasure, export, documents from before
// memberships were kept on them).
func allSegmentIDs(ctx context.Context, tn store.Tenant) ([]string, error) {
	return segmentIDs(ctx, tn, store.Query{Index: SegmentsByName})
}

// segmentIDs reads the ids of the segments q finds.
func segmentIDs(ctx context.Context, tn store.Tenant, q store.Query) ([]string, error) {
	var ids []string
	err := tn.C(Segments).Each(ctx, q, func(raw bson.Raw) error {
		id, ok := raw.Lookup("_id").StringValueOK()
		if !ok {
			return errors.New("segment without a string _id")
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return ids, nil
}

// Traits is what the engine reads from computed traits (package traits
// provides it; segment must not import traits): the workspace's computed
// trait definitions, which computed nodes are validated and evaluated
// with, and its RFM boundaries and typical gap between orders, which score
// nodes (computed keys under rule.ScoresPrefix) are. Without it, no
// computed or score node validates.
type Traits interface {
	Definitions(ctx context.Context, tn store.Tenant) (*agg.Set, error)
	Summary(ctx context.Context, tn store.Tenant) (*scores.Workspace, error)
}

// Purposes gives the workspace's consent purposes, each true when
// processing for it is allowed without a record (its lawful basis is not
// CONSENT). Consent nodes are validated and evaluated with it (package
// consent provides it; segment must not import consent). Without it, no
// consent node validates.
type Purposes interface {
	Allowances(ctx context.Context, tn store.Tenant) (map[string]bool, error)
}

// Deps are what the engine needs from outside the package; every field
// may be left out (tests, tools).
type Deps struct {
	Now func() time.Time
	// Publisher is told of every membership change.
	Publisher realtime.Publisher
	// Redirect follows merged-away profile ids (identity.Redirect).
	Redirect profile.Redirector
	Purposes Purposes
	Traits   Traits
	// Limits caps the segments, event features and rule sizes of each
	// workspace (zero fields: DefaultLimits).
	Limits Limits
	// BuildWait is how long a save waits for its segment's build before
	// answering with it still BUILDING (0: DefaultBuildWait).
	BuildWait time.Duration
	// BuildSettle, when set, replaces how long a build that counts new
	// features waits before it counts (default twice CacheTTL: until
	// every engine counts them on ingest). Tests with one engine set it
	// to zero.
	BuildSettle *time.Duration
}

// New builds the segment engine.
func New(d Deps) *Engine {
	wait := d.BuildWait
	if wait <= 0 {
		wait = DefaultBuildWait
	}
	settle := 2 * CacheTTL
	if d.BuildSettle != nil {
		settle = *d.BuildSettle
	}
	return &Engine{clock: d.Now, publisher: d.Publisher, redirect: d.Redirect, purposes: d.Purposes, traits: d.Traits, limits: d.Limits,
		buildWait: wait, buildSettle: settle, owner: store.NewID()}
}

// Engine is the segment engine of one process (New; the zero Engine
// works without publisher, redirects, consent purposes or traits).
type Engine struct {
	clock     func() time.Time
	publisher realtime.Publisher
	redirect  profile.Redirector
	purposes  Purposes
	traits    Traits
	limits    Limits

	cache wscache.Cache[*activeSet]
	// slots serializes the limit checks of segment saves with the saves.
	slots sync.Mutex

	evaluations atomic.Int64

	// Builds this engine runs (build.go), by build; owner names this
	// engine in build leases.
	buildWait   time.Duration
	buildSettle time.Duration
	owner       string
	buildsMu    sync.Mutex
	builds      map[string]chan struct{}
	runs        sync.WaitGroup
}

// Evaluations counts the segment rules this engine has evaluated on a
// profile after writes and sweeps (not previews): how selective
// re-evaluation is, as a figure.
func (e *Engine) Evaluations() int64 { return e.evaluations.Load() }

// activeSet is a workspace's active segments, by id too, and the union
// of the features of the dynamic ones.
type activeSet struct {
	segs     []*Segment
	features []rule.Feature
	byID     map[string]*Segment
	// building: the segments whose build is under way, with the moment
	// from which new profiles need no visit (bornBuilt).
	building map[string]time.Time
	// archived: the ids of the archived segments, whose members stay.
	archived []string
	// idReaders, ticketReaders, dealReaders and accountReaders: the
	// dynamic segments whose rule reads which identifier types a profile
	// holds, or its tickets, deals or accounts, directly or through
	// inSegment (readers).
	idReaders, ticketReaders, dealReaders, accountReaders map[string]bool
}

// readsAccounts tells whether evaluating any of segs reads the accounts
// the profile is a contact of.
func (a *activeSet) readsAccounts(segs []*Segment) bool {
	return slices.ContainsFunc(segs, func(s *Segment) bool { return a.accountReaders[s.ID] })
}

// readsIdentifiers tells whether evaluating any of segs reads which
// identifier types the profile holds: then the decision reads them.
func (a *activeSet) readsIdentifiers(segs []*Segment) bool {
	return slices.ContainsFunc(segs, func(s *Segment) bool { return a.idReaders[s.ID] })
}

// readsTickets tells whether evaluating any of segs reads the profile's
// tickets.
func (a *activeSet) readsTickets(segs []*Segment) bool {
	return slices.ContainsFunc(segs, func(s *Segment) bool { return a.ticketReaders[s.ID] })
}

// readsDeals tells whether evaluating any of segs reads the deals the
// profile is a contact of.
func (a *activeSet) readsDeals(segs []*Segment) bool {
	return slices.ContainsFunc(segs, func(s *Segment) bool { return a.dealReaders[s.ID] })
}

// readers lists the dynamic segments of byID whose rule reads what
// direct says, following inSegment into dynamic segments.
func readers(byID map[string]*Segment, direct func(rule.Deps) bool) map[string]bool {
	out := map[string]bool{}
	for grew := true; grew; {
		grew = false
		for id, s := range byID {
			if s.Kind != Dynamic || out[id] {
				continue
			}
			if direct(s.Deps) || slices.ContainsFunc(s.Deps.Segments, func(ref string) bool { return out[ref] }) {
				out[id], grew = true, true
			}
		}
	}
	return out
}

// facts are what a decision reads besides the profile document, each
// only when a segment being decided needs it: the identifier types the
// profile holds, and its CRM objects.
type facts struct {
	held []string
	crm  crmFacts
}

// crmFacts are what rules read of a person's CRM objects: their
// tickets, the deals and the accounts they are a contact of.
type crmFacts struct {
	tickets  []rule.TicketFact
	deals    []rule.DealFact
	accounts []rule.AccountFact
}

// factsOf reads the facts of p that evaluating segs needs.
func factsOf(ctx context.Context, tn store.Tenant, a *activeSet, segs []*Segment, p *profile.Profile) (facts, error) {
	var f facts
	var err error
	if a.readsIdentifiers(segs) {
		if f.held, err = identity.TypesHeld(ctx, tn, p.ID); err != nil {
			return f, err
		}
	}
	if a.readsTickets(segs) {
		if f.crm.tickets, err = ticket.Facts(ctx, tn, p.ID); err != nil {
			return f, err
		}
	}
	if a.readsDeals(segs) {
		// A deal names its contacts as they were: profiles merged into
		// p since count as p.
		if f.crm.deals, err = deal.Facts(ctx, tn, append([]string{p.ID}, p.MergedFrom...)...); err != nil {
			return f, err
		}
	}
	if a.readsAccounts(segs) {
		// Merges move links: p's own are all.
		if f.crm.accounts, err = rollup.Facts(ctx, tn, p.ID); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (e *Engine) now() time.Time {
	if e.clock == nil {
		return time.Now().UTC()
	}
	return e.clock().UTC()
}

// invalidate drops the workspace's cached segments.
func (e *Engine) invalidate(ws string) { e.cache.Invalidate(ws) }

// active returns the workspace's active segments (cached for CacheTTL of
// wall time; a change through this engine is seen at once).
func (e *Engine) active(ctx context.Context, tn store.Tenant) (*activeSet, error) {
	a, _, err := e.cache.Get(tn.Workspace(), CacheTTL, func() (*activeSet, error) {
		docs, err := tn.C(Segments).Find(ctx, store.Query{Index: SegmentsByStatus, Eq: []any{Active}})
		if err != nil {
			return nil, fmt.Errorf("load segments: %w", err)
		}
		a := &activeSet{byID: map[string]*Segment{}}
		seen := map[string]bool{}
		for _, d := range docs {
			var s Segment
			if err := d.Decode(&s); err != nil {
				return nil, fmt.Errorf("decode segment: %w", err)
			}
			a.segs = append(a.segs, &s)
			a.byID[s.ID] = &s
			if s.Kind != Dynamic {
				continue
			}
			rule.Prepare(&s.Rule)
			for _, f := range s.Features {
				if !seen[f.Key] {
					seen[f.Key] = true
					a.features = append(a.features, f)
				}
			}
		}
		a.idReaders = readers(a.byID, func(d rule.Deps) bool { return len(d.IdentifierTypes) > 0 })
		a.ticketReaders = readers(a.byID, func(d rule.Deps) bool { return d.Tickets })
		a.dealReaders = readers(a.byID, func(d rule.Deps) bool { return d.Deals })
		a.accountReaders = readers(a.byID, func(d rule.Deps) bool { return d.Accounts })
		if a.building, err = buildingSet(ctx, tn, a.byID); err != nil {
			return nil, err
		}
		if a.archived, err = segmentIDs(ctx, tn, store.Query{Index: SegmentsByStatus, Eq: []any{Archived}}); err != nil {
			return nil, err
		}
		return a, nil
	})
	return a, err
}

// Features is the union of the features of the workspace's active dynamic
// segments: what ingest counts on profiles.
func (e *Engine) Features(ctx context.Context, tn store.Tenant) ([]rule.Feature, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	return a.features, nil
}

// Get loads a segment by id (NOT_FOUND if none), with its size.
func (e *Engine) Get(ctx context.Context, tn store.Tenant, id string) (*Segment, error) {
	var s Segment
	if err := tn.C(Segments).Get(ctx, id, &s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "segment %s not found", id)
		}
		return nil, fmt.Errorf("load segment %s: %w", id, err)
	}
	return &s, nil
}

// Cached returns segment id as this engine's cache of the workspace's
// active segments holds it (at most CacheTTL old; this engine's own saves
// refresh it at once), reading it only when the cache does not hold it
// (an archived segment). For showing a segment beside something else,
// such as a profile's memberships, where one cached read per request
// beats one read per membership; the segment's own queries use Get. The
// result is shared: never change it.
func (e *Engine) Cached(ctx context.Context, tn store.Tenant, id string) (*Segment, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	if s, ok := a.byID[id]; ok {
		return s, nil
	}
	return e.Get(ctx, tn, id)
}

// Size counts a segment's members.
func Size(ctx context.Context, tn store.Tenant, segmentID string) (int64, error) {
	return tn.C(Memberships).Count(ctx, membersOf(segmentID))
}

// Count is how many segments the workspace has, archived ones included
// (List's pages put together).
func Count(ctx context.Context, tn store.Tenant) (int64, error) {
	n, err := tn.C(Segments).Count(ctx, store.Query{Index: SegmentsByName})
	if err != nil {
		return 0, fmt.Errorf("count segments: %w", err)
	}
	return n, nil
}

// HistorySize is how many membership changes the segment's history
// holds (History's pages put together).
func HistorySize(ctx context.Context, tn store.Tenant, segmentID string) (int64, error) {
	n, err := tn.C(MembershipChanges).Count(ctx, store.Query{Index: ChangesBySegment, Eq: []any{segmentID}})
	if err != nil {
		return 0, fmt.Errorf("count history of segment %s: %w", segmentID, err)
	}
	return n, nil
}

// Moves counts a segment's membership history with index counts: the
// entries and exits before bounds[0], and in each [bounds[i],
// bounds[i+1]). The history is the whole story from the first build on,
// so the size at t is the entries before t less the exits before t.
// NOT_FOUND when the workspace has no such segment.
func Moves(ctx context.Context, tn store.Tenant, segmentID string, bounds []time.Time) (before [2]int64, in [][2]int64, err error) {
	if err := exists(ctx, tn, segmentID); err != nil {
		return before, nil, err
	}
	count := func(kind string, r *store.Bound) (int64, error) {
		n, err := tn.C(MembershipChanges).Count(ctx, store.Query{Index: ChangesByKind, Eq: []any{segmentID, kind}, Range: r})
		if err != nil {
			return 0, fmt.Errorf("count history of segment %s: %w", segmentID, err)
		}
		return n, nil
	}
	in = make([][2]int64, max(len(bounds)-1, 0))
	for k, kind := range []string{Entered, Exited} {
		if before[k], err = count(kind, &store.Bound{Lt: store.DateTime(bounds[0])}); err != nil {
			return before, nil, err
		}
		for i := range in {
			if in[i][k], err = count(kind, &store.Bound{Gte: store.DateTime(bounds[i]), Lt: store.DateTime(bounds[i+1])}); err != nil {
				return before, nil, err
			}
		}
	}
	return before, in, nil
}

// MemberSet returns the ids of a segment's members now. NOT_FOUND when
// the workspace has no such segment.
func MemberSet(ctx context.Context, tn store.Tenant, segmentID string) (map[string]bool, error) {
	if err := exists(ctx, tn, segmentID); err != nil {
		return nil, err
	}
	return staticMembers(ctx, tn, segmentID)
}

// exists is NOT_FOUND when the workspace has no segment id.
func exists(ctx context.Context, tn store.Tenant, id string) error {
	if err := tn.C(Segments).Get(ctx, id, &struct{}{}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.NotFound, "segment %s not found", id)
		}
		return fmt.Errorf("load segment %s: %w", id, err)
	}
	return nil
}

// List returns segments by name, after the cursor.
func (e *Engine) List(ctx context.Context, tn store.Tenant, first int, after string) ([]*Segment, []string, bool, error) {
	docs, err := tn.C(Segments).Find(ctx, store.Query{Index: SegmentsByName, After: after, Limit: first + 1})
	if err != nil {
		return nil, nil, false, cursorErr(err)
	}
	var (
		out     []*Segment
		cursors []string
	)
	for i, d := range docs {
		if i == first {
			return out, cursors, true, nil
		}
		var s Segment
		if err := d.Decode(&s); err != nil {
			return nil, nil, false, err
		}
		out = append(out, &s)
		cursors = append(cursors, d.Key)
	}
	return out, cursors, false, nil
}

// ComparesComputed reports whether a saved, active segment's rule
// compares computed trait key (its Deps.Computed holds key), paging
// through the workspace's segments (privacy.CheckDefineFor asks it).
func (e *Engine) ComparesComputed(ctx context.Context, tn store.Tenant, key string) (bool, error) {
	for after := ""; ; {
		segs, cursors, more, err := e.List(ctx, tn, 100, after)
		if err != nil {
			return false, err
		}
		for _, s := range segs {
			if s.Status == Active && slices.Contains(s.Deps.Computed, key) {
				return true, nil
			}
		}
		if !more || len(cursors) == 0 {
			return false, nil
		}
		after = cursors[len(cursors)-1]
	}
}

func cursorErr(err error) error {
	if errors.Is(err, store.ErrBadCursor) {
		return apperr.Invalid("after", "malformed cursor")
	}
	return err
}

// Members returns a page of a segment's members, newest entry first.
func (e *Engine) Members(ctx context.Context, tn store.Tenant, segmentID string, first int, after string) ([]Member, []string, bool, error) {
	docs, err := tn.C(Memberships).Find(ctx, store.Query{Index: MembersByEntered, Eq: []any{segmentID}, Desc: true, After: after, Limit: first + 1})
	if err != nil {
		return nil, nil, false, cursorErr(err)
	}
	var (
		out     []Member
		cursors []string
	)
	for i, d := range docs {
		if i == first {
			return out, cursors, true, nil
		}
		var m Member
		if err := d.Decode(&m); err != nil {
			return nil, nil, false, err
		}
		out = append(out, m)
		cursors = append(cursors, d.Key)
	}
	return out, cursors, false, nil
}

// ChangeCarried reads the membership change an outbox change carries; if
// the record is gone, it is rebuilt from the outbox change (its time is
// then the publish time).
func ChangeCarried(ctx context.Context, tn store.Tenant, c realtime.Change) (Change, error) {
	id := c.String(realtime.PayloadChangeID)
	var mc Change
	err := tn.C(MembershipChanges).Get(ctx, id, &mc)
	if errors.Is(err, store.ErrNotFound) || id == "" {
		mc = Change{ID: id, SegmentID: c.SegmentID, ProfileID: c.ProfileID, Kind: c.String(realtime.PayloadKind), At: c.At, Cause: c.String(realtime.PayloadCause)}
		if mc.ID == "" {
			mc.ID = c.ID
		}
		return mc, nil
	}
	if err != nil {
		return Change{}, fmt.Errorf("read membership change: %w", err)
	}
	return mc, nil
}

// History returns a page of a segment's membership changes, newest first.
func (e *Engine) History(ctx context.Context, tn store.Tenant, segmentID string, first int, after string) ([]Change, []string, bool, error) {
	docs, err := tn.C(MembershipChanges).Find(ctx, store.Query{Index: ChangesBySegment, Eq: []any{segmentID}, Desc: true, After: after, Limit: first + 1})
	if err != nil {
		return nil, nil, false, cursorErr(err)
	}
	var (
		out     []Change
		cursors []string
	)
	for i, d := range docs {
		if i == first {
			return out, cursors, true, nil
		}
		var c Change
		if err := d.Decode(&c); err != nil {
			return nil, nil, false, err
		}
		out = append(out, c)
		cursors = append(cursors, d.Key)
	}
	return out, cursors, false, nil
}

// ProfileSegments returns the memberships of a profile, in the segments
// the workspace had CacheTTL ago or later (active and archived).
func (e *Engine) ProfileSegments(ctx context.Context, tn store.Tenant, profileID string) ([]Member, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(a.segs)+len(a.archived))
	for _, s := range a.segs {
		ids = append(ids, s.ID)
	}
	return memberships(ctx, tn, profileID, append(ids, a.archived...))
}

// allMemberships returns every membership of a profile, whatever the
// cache holds (a profile document from before memberships were kept on it).
func allMemberships(ctx context.Context, tn store.Tenant, profileID string) ([]Member, error) {
	ids, err := allSegmentIDs(ctx, tn)
	if err != nil {
		return nil, err
	}
	return memberships(ctx, tn, profileID, ids)
}

// fieldErr rewrites a segment validation error's field path to start at
// prefix instead of rule.RootPath.
func fieldErr(err error, prefix string) error {
	if e, ok := apperr.As(err); ok && e.Field != "" {
		c := *e
		c.Field = prefix + strings.TrimPrefix(e.Field, rule.RootPath)
		return &c
	}
	return err
}
