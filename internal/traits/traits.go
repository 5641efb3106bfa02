// Package traits runs computed traits: per-workspace definitions (COUNT,
// SUM, AVG, MIN, MAX, FIRST, LAST, MOST_FREQUENT, UNIQUE_LIST of an event's
// property, with an optional window), their per-profile state maintained on
// ingest, background backfill, and recompute after merges. The aggregation
// itself (state layout, update, value at a time) is the pure package agg.
//
// # Documents
//
//   - computed_traits: one definition per key (Definition). Defining an
//     existing key replaces it with a new revision (Rev) and version, and
//     backfills it; deleting removes it and then, in the background, its
//     state from the profiles.
//   - profiles.computed.<key>: the definition's agg.State, stamped with the
//     revision it was computed for (state of another revision is never
//     read). profiles.computedEpoch counts the writes that set state from
//     the stored events.
//   - trait_workspaces (system workspace): workspaces with definitions, so
//     a restart resumes their backfills.
//
// # Ingest: one compare-and-swap, O(1) per event
//
// timeline's ingest calls Count inside the profile's own compare-and-swap
// (the one that moves the segment counters): each stored event is added to
// the state of the definitions of its name (agg.Def.Add: a binary search
// and at most a slice insert). The segments reading a definition whose
// value changed are re-evaluated (rule.Touched.Computed), and the
// profile gets one profile.updated per call.
//
// # Consistency of backfill with concurrent ingest
//
// Ingest stores its events, then writes the profile; a backfill (or a
// recompute after a merge) reads a profile's events and writes the state
// from them in one compare-and-swap on the profile, bumping computedEpoch.
// The danger is an event stored before such a read whose ingest writes the
// profile after it: adding it again would count it twice. Ingest therefore
// compares the profile's computedEpoch with the copy it read before
// storing its events (identity resolution's read): if a from-events write
// happened in between, ingest recomputes those definitions from the
// events inside its own compare-and-swap instead of adding (exact, since
// its events are stored by then); otherwise no from-events write can have
// seen its events, and adding is exact. A profile whose epoch is 0 was
// never written from events (a merge adds the source's epoch to the
// survivor's), so adding is exact there too, even when ingest read
// nothing beforehand (it followed a merge). A missing state (or one of an
// older revision) is counted from empty: either the profile was created
// after the backfill passed (so every one of its events comes through
// ingest) or the backfill has not reached it yet and will overwrite it. A from-events write racing an ingest write fails its
// compare-and-swap and re-reads the events. An ingest that does not know
// a definition yet (another instance's cache, up to CacheTTL) cannot lose
// events either: backfill starts Settle after the definition is saved, so
// an event it does not read was stored after every cache knew it.
//
// # Backfill
//
// A goroutine per definition revision pages through the workspace's
// profiles (creation order), recomputing each from its events, and records
// progress on the definition (PENDING, RUNNING, DONE, FAILED; processed of
// total). It lives as long as the process; Resume, at start, restarts
// every backfill that was PENDING or RUNNING. A newer revision stops an
// older revision's run at its next progress write.
package traits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/platform/wscache"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Backfill statuses.
const (
	Pending = "PENDING"
	Running = "RUNNING"
	Done    = "DONE"
	Failed  = "FAILED"
)

// Limits.
const (
	MaxDefinitions = 50
	MaxKeyLen      = 64
	MaxDescription = 2000
	CacheTTL       = time.Second
)

// Definition is the stored document of one computed trait.
type Definition struct {
	// ID is a NewID, and the definition is found by Key (the collection's
	// by_key index, unique per workspace): ids are unique across
	// workspaces, so a key as _id (as before issue 15, and still found)
	// belonged to the first workspace that defined the key.
	ID          string              `bson:"_id"`
	WorkspaceID string              `bson:"workspaceId"`
	Key         string              `bson:"key"`
	Kind        agg.Kind            `bson:"kind"`
	Event       string              `bson:"event"`
	Property    string              `bson:"property,omitempty"`
	Where       []rule.PropertyCond `bson:"where,omitempty"`
	Window      *rule.Window        `bson:"window,omitempty"`
	Description string              `bson:"description,omitempty"`
	// Rev identifies this revision among every revision of every
	// definition of the key (the state on profiles is stamped with it).
	Rev int64 `bson:"rev"`
	// DefVersion counts the definitions of this key (1, 2, ...).
	DefVersion int64     `bson:"defVersion"`
	CreatedAt  time.Time `bson:"createdAt"`
	UpdatedAt  time.Time `bson:"updatedAt"`
	Backfill   Backfill  `bson:"backfill"`
	// Version is the document's compare-and-swap version (progress writes
	// bump it too).
	Version int64 `bson:"version"`
}

// Backfill is a definition's backfill progress.
type Backfill struct {
	Status     string    `bson:"status"`
	Processed  int64     `bson:"processed"`
	Total      int64     `bson:"total"`
	StartedAt  time.Time `bson:"startedAt,omitempty"`
	FinishedAt time.Time `bson:"finishedAt,omitempty"`
	Error      string    `bson:"error,omitempty"`
	// Owner is the engine running the backfill, which holds it until
	// LeaseUntil (wall clock) and extends that with every page: another
	// instance takes a RUNNING backfill over only once the lease lapsed
	// (its runner died).
	Owner      string    `bson:"owner,omitempty"`
	LeaseUntil time.Time `bson:"leaseUntil,omitempty"`
	// After is where a resumed backfill goes on (profiles by creation).
	After string `bson:"after,omitempty"`
}

// Def is the definition as the aggregation needs it.
func (d *Definition) Def() *agg.Def {
	return &agg.Def{Key: d.Key, Kind: d.Kind, Event: d.Event, Property: d.Property, Where: d.Where, Window: d.Window, Rev: d.Rev}
}

// Input is a definition as a client sends it.
type Input struct {
	Key         string
	Kind        string
	Event       string
	Property    string
	Where       []rule.PropertyCond
	Window      *rule.Window
	Description string
}

// Segments is what traits tells the segment engine (package segment
// provides it; traits must not import segment): the profiles whose
// computed state a backfill or recompute rewrote, and that a new
// workspace summary moved the scores of many profiles at once (the
// segments that read them re-evaluate every profile).
type Segments interface {
	AfterWrite(ctx context.Context, tn store.Tenant, profileIDs []string, cause string, touched rule.Touched)
	RebuildTouched(ctx context.Context, tn store.Tenant, cause string, touched rule.Touched) error
}

// Deps are what the engine needs from outside the package; every field
// may be left out (tests, tools).
type Deps struct {
	Now func() time.Time
	// Settle is how long a backfill waits after its definition is saved,
	// so every instance's definition cache (CacheTTL) knows it first.
	Settle time.Duration
	// Segments builds the segment engine this one tells of its writes.
	// The two need each other at run time: the segment engine reads
	// computed trait definitions and score summaries (segment.Traits)
	// while traits, after a backfill or a new summary, makes segments
	// re-evaluate. So New builds the traits engine first and passes it
	// in here, where the caller builds the segment engine over it: both
	// are complete when New returns, and neither is changed after.
	Segments func(*Engine) Segments
}

// New builds the computed traits engine (and, through d.Segments, the
// segment engine over it).
func New(d Deps) *Engine {
	e := &Engine{clock: d.Now, settle: d.Settle}
	if d.Segments != nil {
		e.segments = d.Segments(e)
	}
	return e
}

// Engine is the computed traits service of one process (New; the zero
// Engine works, telling no segments).
type Engine struct {
	clock    func() time.Time
	settle   time.Duration
	segments Segments

	cache      wscache.Cache[*cachedSet]
	mu         sync.Mutex
	refreshing map[string]bool
	// refreshRetry holds back a workspace's background summary refresh
	// after one failed.
	refreshRetry map[string]retryAt
	// summaryLocks serialise this engine's summary refreshes per
	// workspace.
	summaryLocks map[string]*sync.Mutex
	runs         sync.WaitGroup
	id           string // this engine, as a backfill owner
}

// owner is the engine's id as a backfill lease holder.
func (e *Engine) owner() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id == "" {
		e.id = store.NewID()
	}
	return e.id
}

// cachedSet is a workspace's configuration as ingest and rules read it:
// computed trait definitions, order settings and the score summary.
type cachedSet struct {
	set     *agg.Set
	orders  *orderConfig
	summary *scores.Workspace
}

func (e *Engine) now() time.Time {
	if e.clock == nil {
		return time.Now().UTC()
	}
	return e.clock().UTC()
}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Define creates or replaces the definition in.Key (a new revision and
// version) and starts its backfill. Field paths of errors start at input.
func (e *Engine) Define(ctx context.Context, tn store.Tenant, in Input) (*Definition, error) {
	if err := validate(in); err != nil {
		return nil, err
	}
	if err := register(ctx, tn); err != nil {
		return nil, err
	}
	now := e.now().Truncate(time.Millisecond)
	for attempt := 0; attempt < 10; attempt++ {
		old, err := e.Get(ctx, tn, in.Key)
		if err != nil && apperr.CodeOf(err) != apperr.NotFound {
			return nil, err
		}
		d := &Definition{
			Key: in.Key, Kind: agg.Kind(in.Kind), Event: in.Event, Property: in.Property, Where: in.Where,
			Window: in.Window, Description: in.Description, Rev: newRev(old), DefVersion: 1, CreatedAt: now, UpdatedAt: now,
			Backfill: Backfill{Status: Pending},
		}
		if old == nil {
			n, err := tn.C(ComputedTraits).Count(ctx, store.Query{Index: ComputedTraitsByKey})
			if err != nil {
				return nil, fmt.Errorf("count computed traits: %w", err)
			}
			if n >= MaxDefinitions {
				return nil, apperr.Invalid("input.key", "a workspace has at most %d computed traits", MaxDefinitions)
			}
			d.ID = store.NewID()
			err = tn.C(ComputedTraits).Insert(ctx, d)
			if errors.Is(err, store.ErrDuplicateKey) {
				continue // defined concurrently: replace it
			}
			if err != nil {
				return nil, fmt.Errorf("save computed trait: %w", err)
			}
		} else {
			d.ID, d.DefVersion, d.CreatedAt, d.Version = old.ID, old.DefVersion+1, old.CreatedAt, old.Version+1
			err := tn.C(ComputedTraits).Replace(ctx, d, old.Version)
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("save computed trait: %w", err)
			}
		}
		e.invalidate(tn.Workspace())
		e.startBackfill(tn, traitSubject(d.Key), d.Rev)
		return d, nil
	}
	return nil, apperr.New(apperr.Conflict, "computed trait %q is being changed concurrently; retry", in.Key)
}

// newRev is a revision above old's: the wall clock in microseconds, so
// that a key deleted and defined again never reuses a revision.
func newRev(old *Definition) int64 {
	r := time.Now().UnixMicro()
	if old != nil && r <= old.Rev {
		r = old.Rev + 1
	}
	return r
}

func validate(in Input) error {
	switch {
	case in.Key == "":
		return apperr.Invalid("input.key", "must not be empty")
	case len(in.Key) > MaxKeyLen:
		return apperr.Invalid("input.key", "is longer than %d bytes", MaxKeyLen)
	case !keyRE.MatchString(in.Key):
		return apperr.Invalid("input.key", "must be a lower-case identifier (a-z, 0-9, _; starting with a letter)")
	}
	kind := agg.Kind(in.Kind)
	known := false
	for _, k := range agg.Kinds {
		known = known || k == kind
	}
	if !known {
		return apperr.Invalid("input.kind", "unknown kind %q", in.Kind)
	}
	// Event name, filters and window follow an event node's rules.
	r := rule.Rule{Event: &rule.EventCond{Name: in.Event, Where: in.Where, Window: in.Window}}
	if err := rule.Validate(r, nil); err != nil {
		if ae, ok := apperr.As(err); ok {
			c := *ae
			c.Field = "input" + strings.TrimPrefix(ae.Field, rule.RootPath+".event")
			if c.Field == "input.name" {
				c.Field = "input.event"
			}
			return &c
		}
		return err
	}
	switch {
	case kind == agg.Count && in.Property != "":
		return apperr.Invalid("input.property", "COUNT takes no property")
	case kind != agg.Count && in.Property == "":
		if kind.Numeric() {
			return apperr.Invalid("input.property", "%s needs a numeric property", kind)
		}
		return apperr.Invalid("input.property", "%s needs a property", kind)
	case len(in.Property) > rule.MaxKeyLen:
		return apperr.Invalid("input.property", "is longer than %d bytes", rule.MaxKeyLen)
	}
	if in.Property != "" {
		if err := checkPath("input.property", in.Property); err != nil {
			return err
		}
	}
	if len(in.Description) > MaxDescription {
		return apperr.Invalid("input.description", "at most %d bytes", MaxDescription)
	}
	return nil
}

// checkPath refuses a property path with an empty name or a name starting
// with '$' (which a query operator would take for its own).
func checkPath(field, path string) error {
	for _, seg := range strings.Split(path, ".") {
		if seg == "" || strings.HasPrefix(seg, "$") {
			return apperr.Invalid(field, "must be a dot path of non-empty names not starting with '$'")
		}
	}
	return nil
}

// Get loads a definition (NOT_FOUND when there is none).
func (e *Engine) Get(ctx context.Context, tn store.Tenant, key string) (*Definition, error) {
	var d Definition
	if err := findDefinition(ctx, tn, key, &d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "computed trait %q not found", key)
		}
		return nil, fmt.Errorf("load computed trait %s: %w", key, err)
	}
	d.normalise()
	return &d, nil
}

// findDefinition decodes the workspace's definition of key into out
// (store.ErrNotFound when there is none), whatever its _id.
func findDefinition(ctx context.Context, tn store.Tenant, key string, out any) error {
	return tn.C(ComputedTraits).FindOne(ctx, store.Query{Index: ComputedTraitsByKey, Eq: []any{key}}, out)
}

func (d *Definition) normalise() {
	for i := range d.Where {
		d.Where[i].Value = userjson.Plain(d.Where[i].Value)
		for j, v := range d.Where[i].Values {
			d.Where[i].Values[j] = userjson.Plain(v)
		}
	}
	if w := d.Window; w != nil && w.Between != nil {
		w.Between.From, w.Between.To = w.Between.From.UTC(), w.Between.To.UTC()
	}
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	d.Backfill.StartedAt, d.Backfill.FinishedAt = d.Backfill.StartedAt.UTC(), d.Backfill.FinishedAt.UTC()
}

// List returns the workspace's definitions by key.
func (e *Engine) List(ctx context.Context, tn store.Tenant) ([]*Definition, error) {
	docs, err := tn.C(ComputedTraits).Find(ctx, store.Query{Index: ComputedTraitsByKey})
	if err != nil {
		return nil, fmt.Errorf("list computed traits: %w", err)
	}
	out := make([]*Definition, 0, len(docs))
	for _, doc := range docs {
		var d Definition
		if err := doc.Decode(&d); err != nil {
			return nil, fmt.Errorf("decode computed trait: %w", err)
		}
		d.normalise()
		out = append(out, &d)
	}
	return out, nil
}

// Delete removes a definition (false if there was none); its state is
// removed from the profiles in the background.
func (e *Engine) Delete(ctx context.Context, tn store.Tenant, key string) (bool, error) {
	d, err := e.Get(ctx, tn, key)
	if apperr.CodeOf(err) == apperr.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := tn.C(ComputedTraits).Delete(ctx, d.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("delete computed trait %s: %w", key, err)
	}
	e.invalidate(tn.Workspace())
	e.runs.Add(1)
	go func() {
		defer e.runs.Done()
		ctx := context.Background()
		err := profile.EachLive(ctx, tn, func(p *profile.Profile) error {
			if st, ok := p.Computed[key]; !ok || st.Rev != d.Rev {
				return nil
			}
			_, err := profile.UpdateAnyFrom(ctx, tn, p, e.now(), func(q *profile.Profile) error {
				if st, ok := q.Computed[key]; ok && st.Rev == d.Rev {
					delete(q.Computed, key)
				}
				return nil
			})
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			slog.Error("computed traits: remove deleted state", "workspace", tn.Workspace(), "key", key, "err", err)
		}
	}()
	return true, nil
}

// Wait blocks until the background work this engine started (backfills,
// clean-ups) has finished (tests).
func (e *Engine) Wait() { e.runs.Wait() }

func (e *Engine) invalidate(ws string) { e.cache.Invalidate(ws) }

// Definitions returns the workspace's definitions for ingest and rules,
// cached for CacheTTL (a change through this engine is seen at once).
func (e *Engine) Definitions(ctx context.Context, tn store.Tenant) (*agg.Set, error) {
	c, err := e.config(ctx, tn)
	if err != nil {
		return nil, err
	}
	return c.set, nil
}

// config loads the workspace's configuration, cached for CacheTTL.
func (e *Engine) config(ctx context.Context, tn store.Tenant) (*cachedSet, error) {
	c, cached, err := e.cache.Get(tn.Workspace(), CacheTTL, func() (*cachedSet, error) {
		list, err := e.List(ctx, tn)
		if err != nil {
			return nil, err
		}
		defs := make([]*agg.Def, len(list))
		for i, d := range list {
			defs[i] = d.Def()
		}
		sd, err := loadScoreDoc(ctx, tn)
		if err != nil {
			return nil, err
		}
		sum, err := loadSummary(ctx, tn)
		if err != nil {
			return nil, err
		}
		return &cachedSet{set: agg.NewSet(defs), orders: sd.orders(), summary: sum.workspace()}, nil
	})
	if err != nil {
		return nil, err
	}
	// The summary ages with the engine's clock, not the cache's. Without
	// one (none yet, or one still being made), a refresh is tried on each
	// load only.
	if w := c.summary; w != nil {
		e.maybeRefresh(tn, &summaryDoc{At: w.At, Buyers: w.Buyers})
	} else if !cached {
		e.maybeRefresh(tn, nil)
	}
	return c, nil
}

// Values returns the values of keys (every definition when keys is nil)
// on p at now (the engine's clock when zero); an unknown key is
// BAD_USER_INPUT at keys[i].
func (e *Engine) Values(ctx context.Context, tn store.Tenant, p *profile.Profile, keys []string, now time.Time) (map[string]any, error) {
	return e.ValuesMasked(ctx, tn, p, keys, now, nil)
}

// ValuesMasked is Values with each value passed through mask (nil: none)
// with the definition it was read by, so that a value is masked by the
// very definition that produced it, even while the key is redefined.
func (e *Engine) ValuesMasked(ctx context.Context, tn store.Tenant, p *profile.Profile, keys []string, now time.Time, mask func(d *agg.Def, v any) any) (map[string]any, error) {
	if mask == nil {
		mask = func(_ *agg.Def, v any) any { return v }
	}
	if now.IsZero() {
		now = e.now()
	}
	set, err := e.Definitions(ctx, tn)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if keys == nil {
		for _, d := range set.Defs {
			v, _ := Value(d, p, now)
			out[d.Key] = mask(d, v)
		}
		return out, nil
	}
	for i, k := range keys {
		d := set.Get(k)
		if d == nil {
			return nil, apperr.Invalid(fmt.Sprintf("keys[%d]", i), "unknown computed trait %q", k)
		}
		v, _ := Value(d, p, now)
		out[k] = mask(d, v)
	}
	return out, nil
}

// Value is d's value on p at now and when it next changes with time
// alone: the one reading used by the API, segment rules and tests.
func Value(d *agg.Def, p *profile.Profile, now time.Time) (any, time.Time) {
	return d.ValueIn(p.Computed, now)
}

// Counter returns the workspace's computed traits and order settings as
// they are now, for counting one ingest call's events: one configuration
// for every profile of the call.
func (e *Engine) Counter(ctx context.Context, tn store.Tenant) (Counter, error) {
	cfg, err := e.config(ctx, tn)
	if err != nil {
		return Counter{}, err
	}
	return Counter{cfg}, nil
}

// Counter counts stored events into profiles' computed state and score
// tally with one configuration.
type Counter struct{ cfg *cachedSet }

// OrderEvent is the name of the workspace's order events.
func (c Counter) OrderEvent() string {
	if c.cfg == nil {
		return ""
	}
	return c.cfg.orders.event
}

// Recount sets p's computed state of every definition and its score
// tally from its stored events, and moves its computedEpoch (so that a
// write counting events stored before this recount recounts too): ingest
// calls it inside the profile's compare-and-swap to repair what a crash
// left uncounted.
func (c Counter) Recount(ctx context.Context, tn store.Tenant, p *profile.Profile, now time.Time) error {
	return recomputeFromEvents(ctx, tn, p, c.cfg.set.Defs, c.cfg.orders, now)
}

// Count updates p's computed state and score tally for events just
// stored for it (ingest calls it inside the profile's compare-and-swap).
// seenEpoch is p's computedEpoch as read before the events were stored
// (-1: unknown). It returns the keys whose value at now changed.
func (c Counter) Count(ctx context.Context, tn store.Tenant, p *profile.Profile, evs []*timeline.Event, seenEpoch int64, now time.Time) ([]string, error) {
	cfg, set := c.cfg, c.cfg.set
	// Epoch 0: no from-events write ever wrote p (nor a profile merged
	// into it, see identity's fold), so only ingest adds counted anything.
	fresh := p.ComputedEpoch == 0 || seenEpoch >= 0 && p.ComputedEpoch == seenEpoch
	type hit struct {
		d   *agg.Def
		evs []*timeline.Event
	}
	var hits []*hit
	for _, ev := range evs {
		for _, d := range set.ForEvent(ev.Name) {
			if !d.Matches(ev.Name, ev.Properties) {
				continue
			}
			var h *hit
			for _, x := range hits {
				if x.d == d {
					h = x
				}
			}
			if h == nil {
				h = &hit{d: d}
				hits = append(hits, h)
			}
			h.evs = append(h.evs, ev)
		}
	}
	if p.Computed == nil {
		p.Computed = map[string]agg.State{}
	}
	before := make([]any, len(hits))
	for i, h := range hits {
		before[i], _ = Value(h.d, p, now)
	}
	// A tally of other order settings counts as empty (the recount
	// overwrites it), as a missing computed state does.
	if p.Tally == nil || p.Tally.Rev != cfg.orders.rev {
		p.Tally = &scores.Tally{Rev: cfg.orders.rev}
	}
	orders, days := p.Tally.Orders, activitySum(p.Tally)
	if !fresh {
		// A from-events write may have counted these events already.
		defs := make([]*agg.Def, len(hits))
		for i, h := range hits {
			defs[i] = h.d
		}
		if err := recomputeFromEvents(ctx, tn, p, defs, cfg.orders, now); err != nil {
			return nil, err
		}
	} else {
		for _, ev := range evs {
			cfg.orders.add(p.Tally, ev.Name, ev.OccurredAt, ev.Properties, now)
		}
		for _, h := range hits {
			st, ok := p.Computed[h.d.Key]
			if !ok || st.Rev != h.d.Rev {
				// Not backfilled yet (the backfill will overwrite it) or a
				// profile created since: every event of it comes through
				// here, so counting from empty is exact.
				st = agg.State{Rev: h.d.Rev}
			}
			for _, ev := range h.evs {
				h.d.Add(&st, agg.Occurrence{ID: ev.ID, At: ev.OccurredAt, Props: ev.Properties})
			}
			p.Computed[h.d.Key] = st
		}
	}
	changed := tallyChanges(orders, days, p.Tally)
	for i, h := range hits {
		if after, _ := Value(h.d, p, now); !reflect.DeepEqual(after, before[i]) {
			changed = append(changed, h.d.Key)
		}
	}
	return changed, nil
}

// recomputeFromEvents sets p's state of defs, and its tally when orders
// is set, from p's stored events and bumps its computedEpoch. Call it
// inside a compare-and-swap of p.
func recomputeFromEvents(ctx context.Context, tn store.Tenant, p *profile.Profile, defs []*agg.Def, orders *orderConfig, now time.Time) error {
	states := make([]agg.State, len(defs))
	for i, d := range defs {
		states[i].Rev = d.Rev
	}
	var tally *scores.Tally
	if orders != nil {
		tally = &scores.Tally{Rev: orders.rev}
	}
	err := eachEvent(ctx, tn, p.ID, func(name, id string, at time.Time, props map[string]any) {
		for i, d := range defs {
			if d.Matches(name, props) {
				d.Add(&states[i], agg.Occurrence{ID: id, At: at, Props: props})
			}
		}
		if tally != nil {
			orders.add(tally, name, at, props, now)
		}
	})
	if err != nil {
		return err
	}
	if tally != nil {
		p.Tally = tally
	}
	if p.Computed == nil {
		p.Computed = map[string]agg.State{}
	}
	for i, d := range defs {
		p.Computed[d.Key] = states[i]
	}
	p.ComputedEpoch++
	return nil
}

// eachEvent reads a profile's stored events.
func eachEvent(ctx context.Context, tn store.Tenant, profileID string, fn func(name, id string, at time.Time, props map[string]any)) error {
	return timeline.EventsOf(ctx, tn, profileID, func(ev *timeline.Event) error {
		fn(ev.Name, ev.ID, ev.OccurredAt.UTC(), userjson.PlainObject(ev.Properties))
		return nil
	})
}

// AfterMerge brings the survivor of a merge up to date. Its tally was
// folded with the source's in the merge itself (additive, like the event
// count), so with no computed trait definitions there is nothing to
// recount from events, and no from-events write to make concurrent
// ingest recount too; otherwise (or when the fold could not add the
// tallies) it is Recompute.
func (e *Engine) AfterMerge(ctx context.Context, tn store.Tenant, profileIDs []string) error {
	cfg, err := e.config(ctx, tn)
	if err != nil {
		return err
	}
	var stale []string
	for _, id := range profileIDs {
		p, err := profile.Get(ctx, tn, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load merged profile %s: %w", id, err)
		}
		current := p.Tally != nil && p.Tally.Rev == cfg.orders.rev || p.Tally == nil && p.EventCount == 0
		// After a from-events write an ingest may have recounted the
		// survivor mid-merge, before the source's events reached it.
		if cfg.set.Len() > 0 || !current || p.ComputedEpoch > 0 {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	return e.Recompute(ctx, tn, stale)
}

// Recompute sets the computed state of every definition on the profiles
// from their stored events (after a merge or an unmerge moved events).
// Missing profiles are skipped.
func (e *Engine) Recompute(ctx context.Context, tn store.Tenant, profileIDs []string) error {
	cfg, err := e.config(ctx, tn)
	if err != nil {
		return err
	}
	for _, id := range profileIDs {
		_, err := profile.UpdateAny(ctx, tn, id, e.now(), func(p *profile.Profile) error {
			return recomputeFromEvents(ctx, tn, p, cfg.set.Defs, cfg.orders, e.now())
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("recompute computed traits of %s: %w", id, err)
		}
	}
	return nil
}
