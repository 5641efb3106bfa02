package consent

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
	"github.com/halo-cdp/halo/store"
)

// ProofLimits bound a record's proof (a JSON object).
var ProofLimits = userjson.Limits{MaxDepth: 5, MaxBytes: 8 << 10}

// Record is one consent_log document.
type Record struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	ProfileID   string `bson:"profileId"`
	// OriginProfileID is the profile the record was first stored on (a
	// merge re-points ProfileID; an unmerge gives the record back).
	OriginProfileID string         `bson:"originProfileId,omitempty"`
	Purpose         string         `bson:"purpose"`
	Channel         string         `bson:"channel"`
	Status          string         `bson:"status"`
	Source          string         `bson:"source"`
	CapturedAt      time.Time      `bson:"capturedAt"`
	RecordedAt      time.Time      `bson:"recordedAt"`
	ExpiresAt       *time.Time     `bson:"expiresAt,omitempty"`
	Proof           map[string]any `bson:"proof,omitempty"`
}

func (r *Record) normalise() {
	r.CapturedAt, r.RecordedAt = r.CapturedAt.UTC(), r.RecordedAt.UTC()
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC()
		r.ExpiresAt = &t
	}
	if r.Proof != nil {
		r.Proof = userjson.PlainObject(r.Proof)
	}
}

func (r *Record) entry() rule.ConsentEntry {
	e := rule.ConsentEntry{ID: r.ID, Status: r.Status, CapturedAt: r.CapturedAt, RecordedAt: r.RecordedAt, Source: r.Source}
	if r.ExpiresAt != nil {
		e.ExpiresAt = *r.ExpiresAt
	}
	return e
}

// Choice is one decision, without the person.
type Choice struct {
	Purpose    string
	Channel    string // "" is ANY
	Status     string
	Source     string
	CapturedAt *time.Time // nil is now
	ExpiresAt  *time.Time
	Proof      any // a JSON object, or nil
}

// Batch is a set of checked choices, ready to be recorded (Apply).
type Batch struct {
	records []Record
}

// Len is how many records the batch holds.
func (b Batch) Len() int { return len(b.records) }

// Prepare checks choices (field names the list in errors, e.g.
// "input.consent") and returns them ready to record. Nothing is written:
// callers check every input of a call before the first write.
func (s *Service) Prepare(ctx context.Context, tn store.Tenant, field string, choices []Choice) (Batch, error) {
	return s.prepare(ctx, tn, field, choices, false)
}

// prepare is Prepare; single: the one choice's fields are at field itself.
func (s *Service) prepare(ctx context.Context, tn store.Tenant, field string, choices []Choice, single bool) (Batch, error) {
	if len(choices) > MaxChoices {
		return Batch{}, apperr.Invalid(field, "at most %d choices per call, got %d", MaxChoices, len(choices))
	}
	if len(choices) == 0 {
		return Batch{}, nil
	}
	now := s.now()
	b := Batch{records: make([]Record, 0, len(choices))}
	for i, c := range choices {
		f := fmt.Sprintf("%s[%d]", field, i)
		if single {
			f = field
		}
		r, err := s.check(ctx, tn, f, c, now)
		if err != nil {
			return Batch{}, err
		}
		b.records = append(b.records, r)
	}
	return b, nil
}

func (s *Service) check(ctx context.Context, tn store.Tenant, f string, c Choice, now time.Time) (Record, error) {
	if _, err := s.Purpose(ctx, tn, f+".purpose", c.Purpose); err != nil {
		return Record{}, err
	}
	ch := c.Channel
	if ch == "" {
		ch = rule.AnyChannel
	}
	if !slices.Contains(rule.ConsentChannels, ch) {
		return Record{}, apperr.Invalid(f+".channel", "must be one of %s", strings.Join(rule.ConsentChannels, ", "))
	}
	if !slices.Contains(rule.ConsentStatuses, c.Status) {
		return Record{}, apperr.Invalid(f+".status", "must be one of %s", strings.Join(rule.ConsentStatuses, ", "))
	}
	src := strings.TrimSpace(c.Source)
	if len(src) > MaxSource || !validText(src) {
		return Record{}, apperr.Invalid(f+".source", "must be text of at most %d bytes", MaxSource)
	}
	captured := now
	if c.CapturedAt != nil {
		captured = c.CapturedAt.UTC().Truncate(time.Millisecond)
		if captured.IsZero() || captured.After(now.Add(MaxFuture)) {
			return Record{}, apperr.Invalid(f+".capturedAt", "must be at most %s in the future", MaxFuture)
		}
	}
	r := Record{
		ID: store.NewID(), Purpose: c.Purpose, Channel: ch, Status: c.Status, Source: src,
		CapturedAt: captured, RecordedAt: now,
	}
	if c.ExpiresAt != nil {
		exp := c.ExpiresAt.UTC().Truncate(time.Millisecond)
		switch {
		case !exp.After(captured):
			return Record{}, apperr.Invalid(f+".expiresAt", "must be after capturedAt")
		case !exp.After(now):
			return Record{}, apperr.Invalid(f+".expiresAt", "must be in the future (an expired record would change nothing)")
		}
		r.ExpiresAt = &exp
	}
	if c.Proof != nil {
		proof, err := userjson.Object(c.Proof, ProofLimits)
		if err != nil {
			return Record{}, apperr.Invalid(f+".proof", "%s", err.Error())
		}
		if len(proof) > 0 {
			r.Proof = proof
		}
	}
	return r, nil
}

func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Subject is the person of a setConsent call: exactly one of ProfileID
// and Identifier.
type Subject struct {
	ProfileID  *string
	Identifier *identity.Identifier
}

// Set records choices for one person (setConsent, setConsents): every
// choice is checked first, then the person is found (ProfileID: NOT_FOUND
// if unknown; Identifier: resolved, created when new), then the batch is
// applied. field is the input's path ("input"); choicesField names the
// list ("input.choices"), or "" for a single choice at field.
func (s *Service) Set(ctx context.Context, tn store.Tenant, field string, who Subject, choicesField string, choices []Choice, actor string) ([]State, error) {
	if (who.ProfileID == nil) == (who.Identifier == nil) {
		return nil, apperr.Invalid(field, "set exactly one of profileId and identifier")
	}
	single := choicesField == ""
	if single {
		choicesField = field
	} else if len(choices) == 0 {
		return nil, apperr.Invalid(choicesField, "needs at least one choice")
	}
	var types identity.Types
	var ids []identity.Identifier
	if who.Identifier != nil {
		var err error
		if types, err = identity.LoadTypes(ctx, tn); err != nil {
			return nil, err
		}
		if ids, err = types.Normalise(field+".identifier", []identity.Identifier{*who.Identifier}); err != nil {
			return nil, err
		}
	} else if *who.ProfileID == "" || len(*who.ProfileID) > 128 {
		return nil, apperr.New(apperr.NotFound, "profile not found")
	}
	b, err := s.prepare(ctx, tn, choicesField, choices, single)
	if err != nil {
		return nil, err
	}
	if who.ProfileID != nil {
		p, err := profile.Resolve(ctx, tn, *who.ProfileID, s.redirect())
		if err != nil {
			return nil, err
		}
		return s.apply(ctx, tn, p, b)
	}
	res, err := s.identity.Resolve(ctx, tn, identity.Request{Identifiers: ids, Actor: actor, Types: types})
	if err != nil {
		return nil, err
	}
	return s.apply(ctx, tn, res.Profile, b)
}

func (s *Service) redirect() profile.Redirector {
	if s.identity == nil {
		return nil
	}
	return s.identity.Redirect
}

// Apply records a prepared batch on a profile (following a merge to the
// survivor): log, state, segments, notifications. It returns the state of
// each record's (purpose, channel) after the batch, in batch order.
func (s *Service) Apply(ctx context.Context, tn store.Tenant, profileID string, b Batch) ([]State, error) {
	if len(b.records) == 0 {
		return nil, nil
	}
	p, err := profile.Resolve(ctx, tn, profileID, s.redirect())
	if err != nil {
		return nil, err
	}
	return s.apply(ctx, tn, p, b)
}

// apply is Apply on p, the live profile as just read: it seeds the first
// compare-and-swap, so the profile is not read again.
func (s *Service) apply(ctx context.Context, tn store.Tenant, p *profile.Profile, b Batch) ([]State, error) {
	if len(b.records) == 0 {
		return nil, nil
	}
	recs := slices.Clone(b.records)
	id, seed := p.ID, p
	var err error
	for hops := 0; ; hops++ {
		docs := make([]any, len(recs))
		for i := range recs {
			recs[i].ProfileID, recs[i].OriginProfileID = id, id
			docs[i] = recs[i]
		}
		// The log first: a state is never ahead of its log. A retry after a
		// merge re-points the same records (Put, same ids).
		if hops == 0 {
			errs, err := tn.C(ConsentLog).InsertMany(ctx, docs)
			if err != nil {
				return nil, fmt.Errorf("append consent log: %w", err)
			}
			for _, e := range errs {
				if e != nil {
					return nil, fmt.Errorf("append consent log: %w", e)
				}
			}
		} else {
			for _, d := range docs {
				if err := tn.C(ConsentLog).Put(ctx, d); err != nil {
					return nil, fmt.Errorf("re-point consent log: %w", err)
				}
			}
		}
		now := s.now()
		add := func(p *profile.Profile) error {
			for i := range recs {
				addEntry(p, &recs[i], now)
			}
			return nil
		}
		if seed != nil {
			p, err = profile.UpdateFrom(ctx, tn, seed, now, add)
			seed = nil
		} else {
			p, err = profile.Update(ctx, tn, id, now, add)
		}
		if err == nil {
			break
		}
		if (!errors.Is(err, profile.ErrMerging) && !errors.Is(err, store.ErrNotFound)) || hops > 16 {
			return nil, fmt.Errorf("record consent on %s: %w", id, err)
		}
		// Being merged away: the records follow to the survivor.
		next, rerr := profile.Resolve(ctx, tn, id, s.redirect())
		if rerr != nil {
			return nil, fmt.Errorf("record consent on %s: %w", id, errors.Join(err, rerr))
		}
		id = next.ID
	}
	touched := rule.Touched{}
	for _, r := range recs {
		if !slices.Contains(touched.Purposes, r.Purpose) {
			touched.Purposes = append(touched.Purposes, r.Purpose)
		}
	}
	if s.segments != nil {
		s.segments.AfterProfiles(context.WithoutCancel(ctx), tn, []*profile.Profile{p}, "consent", touched)
	}
	notes := make([]realtime.Change, len(recs))
	for i, r := range recs {
		notes[i] = realtime.Change{Kind: realtime.ConsentChanged, ProfileID: p.ID, Payload: map[string]any{
			realtime.PayloadPurpose: r.Purpose, realtime.PayloadChannel: r.Channel, "recordId": r.ID, realtime.PayloadCause: "consent",
		}}
	}
	realtime.Notify(ctx, s.changes, tn, notes...)
	return s.statesOf(ctx, tn, p, recs)
}

// addEntry puts a record into the profile's state.
func addEntry(p *profile.Profile, r *Record, now time.Time) {
	if p.Consent == nil {
		p.Consent = map[string][]rule.ConsentEntry{}
	}
	k := rule.ConsentKey(r.Purpose, r.Channel)
	list := rule.InsertConsent(p.Consent[k], r.entry(), now)
	if len(list) == 0 {
		delete(p.Consent, k)
		return
	}
	p.Consent[k] = list
}

// statesOf returns the state of each record's key on p.
func (s *Service) statesOf(ctx context.Context, tn store.Tenant, p *profile.Profile, recs []Record) ([]State, error) {
	bases, err := s.bases(ctx, tn)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]State, 0, len(recs))
	for _, r := range recs {
		st, ok := stateOf(p, r.Purpose, r.Channel, bases, now)
		if !ok {
			// Only if the record expired meanwhile: report the record
			// itself rather than nothing.
			st = State{ProfileID: p.ID, Purpose: r.Purpose, Channel: r.Channel, ConsentEntry: r.entry(), LawfulBasis: bases[r.Purpose]}
		}
		out = append(out, st)
	}
	return out, nil
}
