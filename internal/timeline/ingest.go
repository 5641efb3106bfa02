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
	"github.com/halo-cdp/halo/store"
)

// Service holds the timeline's steps of the write path (validate, look
// up duplicates, append, move items after merges) and its reads. The
// write path itself, in order, is package ingest.
type Service struct {
	identity Identity
	clock    func() time.Time
}

// Identity is what the timeline needs of identity resolution (package
// identity's Resolver provides it).
type Identity interface {
	Redirect(ctx context.Context, tn store.Tenant, id string) (string, error)
	HoldsAny(ctx context.Context, tn store.Tenant, profileID string, ids []identity.Identifier) (bool, error)
	LiveID(ctx context.Context, tn store.Tenant, id string) (string, error)
	CheckSuppressed(ctx context.Context, tn store.Tenant, ids []identity.Identifier) error
}

// Deps are what the service needs from outside the package.
type Deps struct {
	Identity Identity
	Now      func() time.Time
}

// New builds the timeline service.
func New(d Deps) *Service { return &Service{identity: d.Identity, clock: d.Now} }

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

// Request is one validated track input.
type Request struct {
	Field  string // the input's field: "input", or "inputs[3]" in a batch
	IDs    []identity.Identifier
	Key    string // identitiesKey(IDs): inputs of one identifier set share it
	Traits map[string]any
	Event  Event
}

// ValidateTrack checks every input of a track call (at most MaxBatch)
// before anything is written, with the workspace's identifier types
// (returned for identity resolution).
func (s *Service) ValidateTrack(ctx context.Context, tn store.Tenant, field string, inputs []TrackInput) (identity.Types, []Request, error) {
	if len(inputs) == 0 {
		return identity.Types{}, nil, apperr.Invalid(field, "at least one event is required")
	}
	if len(inputs) > MaxBatch {
		return identity.Types{}, nil, apperr.Invalid(field, "at most %d events per call, got %d", MaxBatch, len(inputs))
	}
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return identity.Types{}, nil, err
	}
	now := s.clock().UTC()
	reqs := make([]Request, len(inputs))
	for i, in := range inputs {
		f := field
		if len(inputs) > 1 || strings.HasSuffix(field, "s") {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		req, err := s.validateTrack(types, f, in, now)
		if err != nil {
			return identity.Types{}, nil, err
		}
		req.Field = f
		req.Key = identitiesKey(req.IDs)
		reqs[i] = req
	}
	return types, reqs, nil
}

// Batch is a track call between its duplicate check and its results.
type Batch struct {
	Reqs []Request
	// Results has one entry per input; duplicates are filled by Dedupe,
	// new events by Append.
	Results []TrackResult
	// Pending are the inputs not known to be duplicates, to resolve and
	// append.
	Pending []int
	repeats map[int]int // input → the earlier input of this call it repeats
	checks  replayChecks
}

// Dedupe looks up each input's messageId before identity resolution
// writes anything: one read for the call's messageIds (store.Query.In)
// tells new from stored; only a stored one costs more (is it the same
// person's? see replay.go).
func (s *Service) Dedupe(ctx context.Context, tn store.Tenant, reqs []Request) (*Batch, error) {
	b := &Batch{Reqs: reqs, Results: make([]TrackResult, len(reqs)), Pending: make([]int, 0, len(reqs)),
		repeats: map[int]int{}, checks: replayChecks{}}
	first := map[string]int{} // messageId → its first input in this call
	msgs := make([]string, 0, len(reqs))
	for i := range reqs {
		msgs = append(msgs, reqs[i].Event.MessageID)
	}
	found, err := s.existingMany(ctx, tn, msgs) // messageId → the event stored before this call
	if err != nil {
		return nil, err
	}
	for i := range reqs {
		req := &reqs[i]
		msg := req.Event.MessageID
		var dup *Event
		if j, again := first[msg]; again {
			if dup = found[msg]; dup == nil {
				// A messageId new to the store, twice in this call: the
				// later one replays the earlier only with its identifiers.
				if reqs[j].Key != req.Key {
					return nil, messageIDTaken(req.Field+".messageId", msg)
				}
				b.repeats[i] = j
				continue
			}
			cp := *dup
			dup = &cp
		} else {
			first[msg] = i
			dup = found[msg]
		}
		if dup != nil {
			if err := s.trackReplay(ctx, tn, req, dup, b.checks); err != nil {
				return nil, err
			}
			b.Results[i] = TrackResult{Event: dup, Duplicate: true}
			continue
		}
		b.Pending = append(b.Pending, i)
	}
	return b, nil
}

// Append stores the pending events (their ProfileID set by resolution) in
// one InsertMany and returns them. A messageId that a concurrent call
// stored first is answered by the replay rule: a duplicate, or raced, the
// CONFLICT to refuse the call with once the stored events are counted
// (resolution has run and the call's other events are stored; the refusal
// reveals nothing of the winner).
func (s *Service) Append(ctx context.Context, tn store.Tenant, b *Batch) (stored []*Event, raced error, err error) {
	reqs := b.Reqs
	docs := make([]any, len(b.Pending))
	for j, i := range b.Pending {
		reqs[i].Event.ID = store.NewID()
		reqs[i].Event.OriginProfileID = reqs[i].Event.ProfileID
		reqs[i].Event.Identifiers = reqs[i].IDs
		docs[j] = reqs[i].Event
	}
	errs, err := tn.C(Events).InsertMany(ctx, docs)
	if err != nil {
		return nil, nil, fmt.Errorf("store events: %w", err)
	}
	stored = make([]*Event, 0, len(b.Pending))
	for j, i := range b.Pending {
		if j < len(errs) && errs[j] != nil {
			if !errors.Is(errs[j], store.ErrDuplicateKey) {
				return nil, nil, fmt.Errorf("store event %s: %w", reqs[i].Event.MessageID, errs[j])
			}
			// Same messageId raced in from a concurrent call.
			dup, err := s.existing(ctx, tn, reqs[i].Event.MessageID)
			if err != nil || dup == nil {
				return nil, nil, fmt.Errorf("read duplicate event %s: %w", reqs[i].Event.MessageID, err)
			}
			if err := s.trackReplay(ctx, tn, &reqs[i], dup, b.checks); err != nil && raced == nil {
				raced = err
			}
			b.Results[i] = TrackResult{Event: dup, Duplicate: true}
			continue
		}
		ev := reqs[i].Event
		b.Results[i] = TrackResult{Event: &ev}
		stored = append(stored, &ev)
	}
	for i, j := range b.repeats {
		ev := *b.Results[j].Event
		b.Results[i] = TrackResult{Event: &ev, Duplicate: true}
	}
	return stored, raced, nil
}

// Counted adds newly stored events to a profile's own counters (inside
// its compare-and-swap): the item count and when it was last seen.
func Counted(p *profile.Profile, evs []*Event) {
	p.EventCount += int64(len(evs))
	for _, ev := range evs {
		p.Seen(ev.OccurredAt)
	}
}

// Recounted sets p's item count from its stored items and widens its
// activity span to theirs, for a write that may find some of the items
// counted already and others not (ingest, after a recount). A merge folds
// its source's count into p before it moves the source's items, one by
// one: while a source of p.MergedFrom is still claimed, p's items are not
// all on p, and no count of them is exact. Recounted then changes nothing
// and returns those sources, for the caller to see their merges through
// (identity's Settle) and try again; with settled set, it counts their
// items as p's (a best effort, after a few rounds that did not finish
// them).
func Recounted(ctx context.Context, tn store.Tenant, p *profile.Profile, settled bool) ([]string, error) {
	moving, err := profile.Merging(ctx, tn, p.MergedFrom)
	if err != nil {
		return nil, fmt.Errorf("recount items of %s: %w", p.ID, err)
	}
	if len(moving) > 0 && !settled {
		return moving, nil
	}
	var total int64
	for _, id := range append([]string{p.ID}, moving...) {
		n, first, last, err := CountEvents(ctx, tn, id)
		if err != nil {
			return nil, fmt.Errorf("recount items of %s: %w", p.ID, err)
		}
		total += n
		if n > 0 {
			p.Seen(first)
			p.Seen(last)
		}
	}
	p.EventCount = total
	return nil, nil
}

// Reassign moves events just stored for a profile that was merged away
// before they were counted to the survivor, target.
func Reassign(ctx context.Context, tn store.Tenant, evs []*Event, target string) error {
	for _, ev := range evs {
		ev.ProfileID = target
		if err := tn.C(Events).Put(ctx, *ev); err != nil {
			return fmt.Errorf("move event %s to %s: %w", ev.ID, target, err)
		}
	}
	return nil
}

// Appended is the timeline.appended changes of a call: one per profile
// with new (not duplicate) items, in input order, carrying their ids.
func Appended(results []TrackResult) []realtime.Change {
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

func (s *Service) validateTrack(types identity.Types, f string, in TrackInput, now time.Time) (Request, error) {
	ids, err := types.Normalise(f+".identifiers", in.Identifiers)
	if err != nil {
		return Request{}, err
	}
	msgID, err := requiredText(f+".messageId", in.MessageID, 256)
	if err != nil {
		return Request{}, err
	}
	name, err := requiredText(f+".name", in.Name, 200)
	if err != nil {
		return Request{}, err
	}
	channel, err := optionalText(f+".channel", in.Channel, 64)
	if err != nil {
		return Request{}, err
	}
	props, err := userjson.Object(in.Properties, PropertyLimits)
	if err != nil {
		return Request{}, apperr.Invalid(f+".properties", "%s", err.Error())
	}
	traits, err := userjson.Object(in.Traits, profile.TraitLimits)
	if err != nil {
		return Request{}, apperr.Invalid(f+".traits", "%s", err.Error())
	}
	at, err := occurredAt(f+".occurredAt", in.OccurredAt, now)
	if err != nil {
		return Request{}, err
	}
	return Request{IDs: ids, Traits: traits, Event: Event{
		Kind: KindEvent, Name: name, MessageID: msgID, Properties: userjson.WithoutNulls(props),
		Channel: channel, OccurredAt: at, ReceivedAt: now.Truncate(time.Millisecond),
	}}, nil
}

// existingMany looks up the events stored with messageIDs, in reads of
// up to store.MaxIn: messageId → event, absent when none.
func (s *Service) existingMany(ctx context.Context, tn store.Tenant, messageIDs []string) (map[string]*Event, error) {
	out := make(map[string]*Event, len(messageIDs))
	for in := range store.InLists(messageIDs) {
		docs, err := tn.C(Events).Find(ctx, store.Query{Index: EventsByMessage, In: in})
		if err != nil {
			return nil, fmt.Errorf("look up %d messages: %w", len(in), err)
		}
		for _, d := range docs {
			ev := new(Event)
			if err := d.Decode(ev); err != nil {
				return nil, fmt.Errorf("decode event: %w", err)
			}
			ev.normalise()
			out[ev.MessageID] = ev
		}
	}
	return out, nil
}

// StoredCount counts the messageIDs that have a stored item (once each:
// a messageId is unique per workspace), in reads of up to store.MaxIn:
// what a crash check expects of the acknowledged ones.
func StoredCount(ctx context.Context, tn store.Tenant, messageIDs []string) (int, error) {
	n := 0
	for in := range store.InLists(messageIDs) {
		k, err := tn.C(Events).Count(ctx, store.Query{Index: EventsByMessage, In: in})
		if err != nil {
			return n, fmt.Errorf("count %d messages: %w", len(in), err)
		}
		n += int(k)
	}
	return n, nil
}

// ProfilesOfMessages lists the profiles (distinct, as stored) of the
// stored items among messageIDs, and how many of those there are: where
// a crash check looks for events stored by calls never answered.
func ProfilesOfMessages(ctx context.Context, tn store.Tenant, messageIDs []string) ([]string, int, error) {
	seen := map[string]bool{}
	var out []string
	n := 0
	for in := range store.InLists(messageIDs) {
		docs, err := tn.C(Events).Find(ctx, store.Query{Index: EventsByMessage, In: in})
		if err != nil {
			return nil, n, fmt.Errorf("look up %d messages: %w", len(in), err)
		}
		n += len(docs)
		for _, d := range docs {
			if pid, ok := d.Raw.Lookup("profileId").StringValueOK(); ok && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out, n, nil
}

// existing returns the stored event with messageID, or nil.
func (s *Service) existing(ctx context.Context, tn store.Tenant, messageID string) (*Event, error) {
	var ev Event
	err := tn.C(Events).FindOne(ctx, store.Query{Index: EventsByMessage, Eq: []any{messageID}}, &ev)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up message %s: %w", messageID, err)
	}
	ev.normalise()
	return &ev, nil
}

// CheckSuppressed refuses the call if any identifier of reqs is
// suppressed: one check of all the call's distinct identifiers (the
// suppression salt read once), then, only to name the first input at
// fault (indexed when batch), one check per identifier set.
func (s *Service) CheckSuppressed(ctx context.Context, tn store.Tenant, field string, reqs []Request, batch bool) error {
	seen := map[identity.Identifier]bool{}
	var all []identity.Identifier
	for i := range reqs {
		for _, id := range reqs[i].IDs {
			if !seen[id] {
				seen[id] = true
				all = append(all, id)
			}
		}
	}
	err := s.identity.CheckSuppressed(ctx, tn, all)
	if err == nil {
		return nil
	}
	checked := map[string]bool{}
	for i := range reqs {
		if checked[reqs[i].Key] {
			continue
		}
		checked[reqs[i].Key] = true
		if err := s.identity.CheckSuppressed(ctx, tn, reqs[i].IDs); err != nil {
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

// UnmoveEvents is the timeline's step of an unmerge (internal/merge): items of the
// restored profile (by origin) and items that arrived after the merge
// with one of its identifiers go back.
func UnmoveEvents(ctx context.Context, tn store.Tenant, fromID, toID string, origins []string, since time.Time, restored []identity.Identifier) error {
	c := tn.C(Events)
	after := ""
	for {
		docs, err := c.Find(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{fromID}, After: after, Limit: 1000})
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

// CountEvents is the timeline's count after an unmerge (internal/merge): how many items a
// profile has and the span they cover.
func CountEvents(ctx context.Context, tn store.Tenant, profileID string) (int64, time.Time, time.Time, error) {
	c := tn.C(Events)
	q := store.Query{Index: EventsByProfileTime, Eq: []any{profileID}}
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

// MoveEvents is the timeline's step of a merge (internal/merge).
func MoveEvents(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	c := tn.C(Events)
	for {
		// Moved events leave the (profileId = source) range, so each pass
		// reads from the start until nothing is left.
		docs, err := c.Find(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{sourceID}, Limit: 500})
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
