package timeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Service ingests and reads timelines.
type Service struct {
	Identity *identity.Resolver
	Now      func() time.Time
	// Changes, when set, is told of every append (timeline.appended, one
	// change per profile per call, with the new item ids).
	Changes realtime.Publisher
	// Segments, when set, maintains segment features on ingest and
	// re-evaluates memberships after each write (package membership).
	Segments SegmentHook
	// Computed, when set, maintains computed traits on ingest, in the
	// same compare-and-swap as the segment features (package traits).
	Computed ComputedHook
}

// ComputedHook is what ingest needs from the computed traits engine
// (traits.Engine).
type ComputedHook interface {
	// Counter counts one call's events with the workspace's computed
	// traits and order settings as they are now.
	Counter(ctx context.Context, tn store.Tenant) (ComputedCounter, error)
}

// ComputedCounter counts stored events into profiles' computed state.
type ComputedCounter interface {
	// Count updates p's computed state for evs, just stored for it, inside
	// p's compare-and-swap; seenEpoch is p.ComputedEpoch as read before
	// the events were stored (-1 if unknown). It returns the keys whose
	// value changed.
	Count(ctx context.Context, tn store.Tenant, p *profile.Profile, evs []*Event, seenEpoch int64, now time.Time) ([]string, error)
}

// SegmentHook is what ingest needs from the segment engine
// (segment.Engine).
type SegmentHook interface {
	// Features are the event features to count on profiles.
	Features(ctx context.Context, tn store.Tenant) ([]rule.Feature, error)
	// AfterProfiles re-evaluates the memberships of profiles as the write
	// just left them, for the segments what it touched can affect.
	AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched)
}

func (s *Service) afterWrite(ctx context.Context, tn store.Tenant, cause string, profiles map[string]*profile.Profile, order []string, touched rule.Touched) {
	if s.Segments == nil {
		return
	}
	var ps []*profile.Profile
	seen := map[string]bool{}
	for _, k := range order {
		if p, ok := profiles[k]; ok && !seen[p.ID] {
			seen[p.ID] = true
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		s.Segments.AfterProfiles(context.WithoutCancel(ctx), tn, ps, cause, touched)
	}
}

// TrackInput is one behavioural event as a client sends it.
type TrackInput struct {
	MessageID   string
	Identifiers []identity.Identifier
	Name        string
	Properties  any
	OccurredAt  *time.Time
	Channel     string
	Traits      any
}

// TrackResult is the outcome of one TrackInput.
type TrackResult struct {
	Profile   *profile.Profile
	Event     *Event
	Duplicate bool
}

type trackReq struct {
	field  string // the input's field: "input", or "inputs[3]" in a batch
	ids    []identity.Identifier
	key    string // identitiesKey(ids)
	traits map[string]any
	event  Event
}

// Track ingests events. All inputs are validated before anything is
// written, so a rejected call stores nothing. Each event is idempotent on
// its messageId: a replay of the stored event by the same person (one of
// its identifiers held by the event's profile) returns it with Duplicate
// set; a messageId held by anything else refuses the call (CONFLICT,
// naming no profile; see replay.go).
func (s *Service) Track(ctx context.Context, tn store.Tenant, actor string, field string, inputs []TrackInput) ([]TrackResult, error) {
	if len(inputs) == 0 {
		return nil, apperr.Invalid(field, "at least one event is required")
	}
	if len(inputs) > MaxBatch {
		return nil, apperr.Invalid(field, "at most %d events per call, got %d", MaxBatch, len(inputs))
	}
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	reqs := make([]trackReq, len(inputs))
	for i, in := range inputs {
		f := field
		if len(inputs) > 1 || strings.HasSuffix(field, "s") {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		req, err := s.validateTrack(types, f, in, now)
		if err != nil {
			return nil, err
		}
		req.field = f
		req.key = identitiesKey(req.ids)
		reqs[i] = req
	}
	// A suppressed identifier (an erased person) refuses the whole call
	// before anything of it is written, profiles and identities included.
	if err := checkSuppressed(ctx, tn, field, reqs, len(inputs) > 1); err != nil {
		return nil, err
	}

	// Duplicates, before identity resolution writes anything: the one
	// messageId read per event tells new from stored; only a stored one
	// costs more (is it the same person's? see replay.go).
	results := make([]TrackResult, len(reqs))
	pending := make([]int, 0, len(reqs)) // inputs not yet known to be duplicates
	first := map[string]int{}            // messageId → its first input in this call
	found := map[string]*Event{}         // messageId → the event stored before this call
	repeats := map[int]int{}             // input → the earlier input of this call it repeats
	checks := replayChecks{}
	for i := range reqs {
		req := &reqs[i]
		msg := req.event.MessageID
		var dup *Event
		if j, again := first[msg]; again {
			if dup = found[msg]; dup == nil {
				// A messageId new to the store, twice in this call: the
				// later one replays the earlier only with its identifiers.
				if reqs[j].key != req.key {
					return nil, messageIDTaken(req.field+".messageId", msg)
				}
				repeats[i] = j
				continue
			}
			cp := *dup
			dup = &cp
		} else {
			first[msg] = i
			var err error
			if dup, err = s.existing(ctx, tn, msg); err != nil {
				return nil, err
			}
			found[msg] = dup
		}
		if dup != nil {
			if err := s.trackReplay(ctx, tn, req, dup, checks); err != nil {
				return nil, err
			}
			results[i] = TrackResult{Event: dup, Duplicate: true}
			continue
		}
		pending = append(pending, i)
	}

	// Resolve each distinct identifier set once per call (the common case
	// is many events of one visitor); events carrying traits resolve alone
	// so their trait patches apply in order.
	resolved := map[string]string{}
	seeds := map[string]*profile.Profile{} // as resolution read them
	var touched rule.Touched               // what the write changes, for segments
	for _, i := range pending {
		req := &reqs[i]
		key := req.key
		if pid, ok := resolved[key]; ok && len(req.traits) == 0 {
			req.event.ProfileID = pid
			continue
		}
		res, err := s.Identity.Resolve(ctx, tn, identity.Request{Identifiers: req.ids, Traits: req.traits, Actor: actor, Types: types, Quiet: true, SuppressionChecked: true})
		if err != nil {
			return nil, err
		}
		resolved[key] = res.Profile.ID
		seeds[res.Profile.ID] = res.Profile
		req.event.ProfileID = res.Profile.ID
		if res.Created || len(req.traits) > 0 {
			touched.All = true
		}
	}

	docs := make([]any, len(pending))
	for j, i := range pending {
		reqs[i].event.ID = store.NewID()
		reqs[i].event.OriginProfileID = reqs[i].event.ProfileID
		reqs[i].event.Identifiers = reqs[i].ids
		docs[j] = reqs[i].event
	}
	errs, err := tn.C(store.Events).InsertMany(ctx, docs)
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	stored := make([]*Event, 0, len(pending))
	var raced error // another person's event took a messageId of this call meanwhile
	for j, i := range pending {
		if j < len(errs) && errs[j] != nil {
			if !errors.Is(errs[j], store.ErrDuplicateKey) {
				return nil, fmt.Errorf("store event %s: %w", reqs[i].event.MessageID, errs[j])
			}
			// Same messageId raced in from a concurrent call.
			dup, err := s.existing(ctx, tn, reqs[i].event.MessageID)
			if err != nil || dup == nil {
				return nil, fmt.Errorf("read duplicate event %s: %w", reqs[i].event.MessageID, err)
			}
			if err := s.trackReplay(ctx, tn, &reqs[i], dup, checks); err != nil && raced == nil {
				// Resolution has run and the call's other events are
				// stored: they are counted below, then the call is
				// refused, revealing nothing of the winner.
				raced = err
			}
			results[i] = TrackResult{Event: dup, Duplicate: true}
			continue
		}
		ev := reqs[i].event
		results[i] = TrackResult{Event: &ev}
		stored = append(stored, &ev)
	}

	profiles, computed, err := s.count(ctx, tn, stored, seeds)
	if err != nil {
		return nil, err
	}
	touched.Computed = computed.keys()
	names := map[string]bool{}
	for _, ev := range stored {
		if !names[ev.Name] {
			names[ev.Name] = true
			touched.EventNames = append(touched.EventNames, ev.Name)
		}
	}
	touched.Seen = len(stored) > 0
	for i, j := range repeats {
		ev := *results[j].Event
		results[i] = TrackResult{Event: &ev, Duplicate: true}
	}
	var order []string
	for i := range results {
		r := &results[i]
		if !r.Duplicate {
			order = append(order, r.Event.ProfileID)
		}
		if p, ok := profiles[r.Event.ProfileID]; ok {
			r.Profile = p
			r.Event.ProfileID = p.ID
			continue
		}
		p, err := profile.Resolve(ctx, tn, r.Event.ProfileID, s.Identity.Redirect)
		if err != nil {
			return nil, err
		}
		profiles[r.Event.ProfileID] = p
		r.Profile = p
		r.Event.ProfileID = p.ID
	}
	s.afterWrite(ctx, tn, "track", profiles, order, touched)
	s.notify(ctx, tn, results, computed)
	if raced != nil {
		return nil, raced
	}
	return results, nil
}

// computedChanges are the computed trait keys whose value an ingest call
// changed, by profile (in order).
type computedChanges struct {
	order []string
	by    map[string][]string
}

func (c *computedChanges) add(profileID string, keys []string) {
	if len(keys) == 0 {
		return
	}
	if c.by == nil {
		c.by = map[string][]string{}
	}
	if _, ok := c.by[profileID]; !ok {
		c.order = append(c.order, profileID)
	}
	for _, k := range keys {
		if !slices.Contains(c.by[profileID], k) {
			c.by[profileID] = append(c.by[profileID], k)
		}
	}
}

// keys is the union of the changed keys, sorted.
func (c *computedChanges) keys() []string {
	var out []string
	for _, ks := range c.by {
		for _, k := range ks {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// notify publishes, in one call (one outbox write), timeline.appended for
// the new (not duplicate) items of a call, one change per profile in
// input order, and profile.updated (payload computed: the keys) once per
// profile whose computed values or scores the call changed. Engagement
// alone does not count: it moves with every event, which
// timeline.appended already announces (and, like churn risk, with time).
func (s *Service) notify(ctx context.Context, tn store.Tenant, results []TrackResult, c computedChanges) {
	if s.Changes == nil {
		return
	}
	cs := s.appended(results)
	for _, pid := range c.order {
		if keys := c.by[pid]; !slices.Equal(keys, []string{scores.KeyEngagement}) {
			cs = append(cs, realtime.Change{Kind: realtime.ProfileUpdated, ProfileID: pid, Payload: map[string]any{"computed": keys}})
		}
	}
	realtime.Notify(ctx, s.Changes, tn, cs...)
}

// appended is the timeline.appended changes of a call.
func (s *Service) appended(results []TrackResult) []realtime.Change {
	var order []string
	items := map[string][]string{}
	for _, r := range results {
		if r.Duplicate {
			continue
		}
		pid := r.Event.ProfileID
		if _, ok := items[pid]; !ok {
			order = append(order, pid)
		}
		items[pid] = append(items[pid], r.Event.ID)
	}
	cs := make([]realtime.Change, 0, len(order))
	for _, pid := range order {
		cs = append(cs, realtime.Change{
			Kind: realtime.TimelineAppended, ProfileID: pid, Payload: map[string]any{realtime.PayloadItemIDs: items[pid]},
		})
	}
	return cs
}

func (s *Service) validateTrack(types identity.Types, f string, in TrackInput, now time.Time) (trackReq, error) {
	ids, err := types.Normalise(f+".identifiers", in.Identifiers)
	if err != nil {
		return trackReq{}, err
	}
	msgID, err := requiredText(f+".messageId", in.MessageID, 256)
	if err != nil {
		return trackReq{}, err
	}
	name, err := requiredText(f+".name", in.Name, 200)
	if err != nil {
		return trackReq{}, err
	}
	channel, err := optionalText(f+".channel", in.Channel, 64)
	if err != nil {
		return trackReq{}, err
	}
	props, err := userjson.Object(in.Properties, PropertyLimits)
	if err != nil {
		return trackReq{}, apperr.Invalid(f+".properties", "%s", err.Error())
	}
	traits, err := userjson.Object(in.Traits, profile.TraitLimits)
	if err != nil {
		return trackReq{}, apperr.Invalid(f+".traits", "%s", err.Error())
	}
	at, err := occurredAt(f+".occurredAt", in.OccurredAt, now)
	if err != nil {
		return trackReq{}, err
	}
	return trackReq{ids: ids, traits: traits, event: Event{
		Kind: KindEvent, Name: name, MessageID: msgID, Properties: userjson.WithoutNulls(props),
		Channel: channel, OccurredAt: at, ReceivedAt: now.Truncate(time.Millisecond),
	}}, nil
}

// existing returns the stored event with messageID, or nil.
func (s *Service) existing(ctx context.Context, tn store.Tenant, messageID string) (*Event, error) {
	var ev Event
	err := tn.C(store.Events).FindOne(ctx, store.Query{Index: store.EventsByMessage, Eq: []any{messageID}}, &ev)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up message %s: %w", messageID, err)
	}
	ev.normalise()
	return &ev, nil
}

// checkSuppressed refuses the call if any identifier of reqs is
// suppressed: one check of all the call's distinct identifiers (the
// suppression salt read once), then, only to name the first input at
// fault (indexed when batch), one check per identifier set.
func checkSuppressed(ctx context.Context, tn store.Tenant, field string, reqs []trackReq, batch bool) error {
	seen := map[identity.Identifier]bool{}
	var all []identity.Identifier
	for i := range reqs {
		for _, id := range reqs[i].ids {
			if !seen[id] {
				seen[id] = true
				all = append(all, id)
			}
		}
	}
	err := identity.CheckSuppressed(ctx, tn, all)
	if err == nil {
		return nil
	}
	checked := map[string]bool{}
	for i := range reqs {
		if checked[reqs[i].key] {
			continue
		}
		checked[reqs[i].key] = true
		if err := identity.CheckSuppressed(ctx, tn, reqs[i].ids); err != nil {
			if e, ok := apperr.As(err); ok && batch {
				c := *e
				c.Field = fmt.Sprintf("%s[%d].identifiers", field, i)
				return &c
			}
			return err
		}
	}
	return err
}

// count adds newly stored events to their profiles' counters and
// computed traits, one compare-and-swap per profile. If a profile was
// merged away between resolution and now, its events follow it to the
// survivor. seeds are the profiles as read before the events were stored.
func (s *Service) count(ctx context.Context, tn store.Tenant, events []*Event, seeds map[string]*profile.Profile) (map[string]*profile.Profile, computedChanges, error) {
	var changes computedChanges
	byProfile := map[string][]*Event{}
	var order []string
	for _, ev := range events {
		if _, ok := byProfile[ev.ProfileID]; !ok {
			order = append(order, ev.ProfileID)
		}
		byProfile[ev.ProfileID] = append(byProfile[ev.ProfileID], ev)
	}
	out := map[string]*profile.Profile{}
	if len(events) == 0 {
		return out, changes, nil
	}
	var features []rule.Feature
	if s.Segments != nil {
		var err error
		if features, err = s.Segments.Features(ctx, tn); err != nil {
			return nil, changes, err
		}
	}
	var computed ComputedCounter
	if s.Computed != nil {
		var err error
		if computed, err = s.Computed.Counter(ctx, tn); err != nil {
			return nil, changes, err
		}
	}
	now := s.Now()
	for _, pid := range order {
		evs := byProfile[pid]
		target := pid
		seenEpoch := int64(-1)
		if seed := seeds[pid]; seed != nil {
			seenEpoch = seed.ComputedEpoch
		}
		var changed []string
		apply := func(p *profile.Profile) error {
			p.EventCount += int64(len(evs))
			for _, ev := range evs {
				p.Seen(ev.OccurredAt)
				if len(features) > 0 {
					p.CountEvent(features, ev.Name, ev.Properties, ev.OccurredAt)
				}
			}
			if computed != nil {
				var err error
				if changed, err = computed.Count(ctx, tn, p, evs, seenEpoch, now); err != nil {
					return err
				}
			}
			return nil
		}
		for hops := 0; ; hops++ {
			var (
				p   *profile.Profile
				err error
			)
			if seed := seeds[target]; seed != nil {
				delete(seeds, target) // a seed serves once
				p, err = profile.UpdateFrom(ctx, tn, seed, s.Now(), apply)
			} else {
				p, err = profile.Update(ctx, tn, target, s.Now(), apply)
			}
			if err == nil {
				out[pid] = p
				changes.add(p.ID, changed)
				break
			}
			// Merged away (or being merged) between resolution and now:
			// the events follow the profile to the survivor.
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, profile.ErrMerging) || hops > 8 {
				return nil, changes, err
			}
			seenEpoch = -1 // another profile: nothing read of it beforehand
			if errors.Is(err, profile.ErrMerging) {
				// Being merged away: see the merge through (it may yet be
				// refused), then count where the events end up.
				if err := s.Identity.Settle(ctx, tn, target); err != nil {
					return nil, changes, err
				}
				continue
			}
			next, rerr := s.Identity.Redirect(ctx, tn, target)
			if rerr != nil {
				return nil, changes, fmt.Errorf("profile %s vanished: %w", target, err)
			}
			target = next
			for _, ev := range evs {
				ev.ProfileID = target
				if err := tn.C(store.Events).Put(ctx, *ev); err != nil {
					return nil, changes, fmt.Errorf("move event %s to %s: %w", ev.ID, target, err)
				}
			}
		}
	}
	return out, changes, nil
}

// UnmoveEvents is the identity.Unmover for timelines: items of the
// restored profile (by origin) and items that arrived after the merge
// with one of its identifiers go back.
func UnmoveEvents(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []identity.Identifier) error {
	c := tn.C(store.Events)
	after := ""
	for {
		docs, err := c.Find(ctx, store.Query{Index: store.EventsByProfileTime, Eq: []any{fromID}, After: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("events of %s: %w", fromID, err)
		}
		for _, d := range docs {
			after = d.Key
			var ev Event
			if err := d.Decode(&ev); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			back := slices.Contains(origins, ev.OriginProfileID)
			if !back && !ev.ReceivedAt.Before(since) {
				for _, id := range ev.Identifiers {
					if slices.Contains(restored, id) {
						back = true
						break
					}
				}
			}
			if !back {
				continue
			}
			ev.ProfileID = toID
			if err := c.Put(ctx, ev); err != nil {
				return fmt.Errorf("move event %s back: %w", ev.ID, err)
			}
		}
		if len(docs) < 1000 {
			return nil
		}
	}
}

// CountEvents is the identity.Counter for timelines: how many items a
// profile has and the span they cover.
func CountEvents(ctx context.Context, tn store.Tenant, profileID string) (int64, time.Time, time.Time, error) {
	c := tn.C(store.Events)
	q := store.Query{Index: store.EventsByProfileTime, Eq: []any{profileID}}
	n, err := c.Count(ctx, q)
	if err != nil || n == 0 {
		return n, time.Time{}, time.Time{}, err
	}
	var first, last Event
	if err := c.FindOne(ctx, q, &first); err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	q.Desc = true
	if err := c.FindOne(ctx, q, &last); err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	return n, first.OccurredAt, last.OccurredAt, nil
}

// MoveEvents is the identity.Mover for timelines.
func MoveEvents(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	c := tn.C(store.Events)
	for {
		// Moved events leave the (profileId = source) range, so each pass
		// reads from the start until nothing is left.
		docs, err := c.Find(ctx, store.Query{Index: store.EventsByProfileTime, Eq: []any{sourceID}, Limit: 500})
		if err != nil {
			return fmt.Errorf("events of %s: %w", sourceID, err)
		}
		if len(docs) == 0 {
			return nil
		}
		for _, d := range docs {
			var ev Event
			if err := d.Decode(&ev); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			ev.ProfileID = targetID
			if err := c.Put(ctx, ev); err != nil {
				return fmt.Errorf("move event %s: %w", ev.ID, err)
			}
		}
	}
}

func identitiesKey(ids []identity.Identifier) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.Type + "\x00" + id.Value
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x01")
}

func requiredText(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", apperr.Invalid(field, "must not be blank")
	}
	return optionalText(field, v, max)
}

func optionalText(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return "", apperr.Invalid(field, "not valid text")
	}
	if len(v) > max {
		return "", apperr.Invalid(field, "longer than %d bytes", max)
	}
	return v, nil
}

func occurredAt(field string, t *time.Time, now time.Time) (time.Time, error) {
	if t == nil || t.IsZero() {
		return now.Truncate(time.Millisecond), nil
	}
	if t.After(now.Add(MaxFuture)) {
		return time.Time{}, apperr.Invalid(field, "more than %s in the future", MaxFuture)
	}
	if t.Year() < 1970 {
		return time.Time{}, apperr.Invalid(field, "before 1970")
	}
	return t.UTC().Truncate(time.Millisecond), nil
}
