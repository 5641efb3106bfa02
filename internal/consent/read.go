package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// State is the current consent of a profile for one (purpose, channel):
// its current record, and the purpose's lawful basis.
type State struct {
	ProfileID   string
	Purpose     string
	Channel     string
	LawfulBasis string
	rule.ConsentEntry
}

// bases returns every purpose's lawful basis by key.
func (s *Service) bases(ctx context.Context, tn store.Tenant) (map[string]string, error) {
	list, err := s.Purposes(ctx, tn)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(list))
	for _, p := range list {
		out[p.Key] = p.LawfulBasis
	}
	return out, nil
}

// stateOf is the key's own current state (no ANY fallback).
func stateOf(p *profile.Profile, purpose, channel string, bases map[string]string, now time.Time) (State, bool) {
	e, ok := rule.CurrentConsent(p.Consent[rule.ConsentKey(purpose, channel)], now)
	if !ok {
		return State{}, false
	}
	return State{ProfileID: p.ID, Purpose: purpose, Channel: channel, LawfulBasis: bases[purpose], ConsentEntry: e}, true
}

// States lists the profile's current state for every (purpose, channel)
// with a record that has not expired, by purpose then channel (ANY first).
func (s *Service) States(ctx context.Context, tn store.Tenant, p *profile.Profile) ([]State, error) {
	bases, err := s.bases(ctx, tn)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []State{}
	for k := range p.Consent {
		purpose, channel, ok := strings.Cut(k, ":")
		if !ok {
			continue
		}
		if st, ok := stateOf(p, purpose, channel, bases, now); ok {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b State) int {
		if c := strings.Compare(a.Purpose, b.Purpose); c != 0 {
			return c
		}
		return slices.Index(rule.ConsentChannels, a.Channel) - slices.Index(rule.ConsentChannels, b.Channel)
	})
	return out, nil
}

// State returns the current state of one key of a profile (false when it
// has none).
func (s *Service) State(ctx context.Context, tn store.Tenant, p *profile.Profile, purpose, channel string) (State, bool, error) {
	bases, err := s.bases(ctx, tn)
	if err != nil {
		return State{}, false, err
	}
	st, ok := stateOf(p, purpose, channel, bases, s.now())
	return st, ok, nil
}

// CanContact tells whether p may be contacted (or its data processed) for
// purpose on channel now: the channel's own state, else ANY's, else the
// purpose's basis. An unknown purpose or channel is BAD_USER_INPUT.
func (s *Service) CanContact(ctx context.Context, tn store.Tenant, p *profile.Profile, purpose, channel string) (bool, error) {
	pur, err := s.Purpose(ctx, tn, "purpose", purpose)
	if err != nil {
		return false, err
	}
	if !slices.Contains(rule.ConsentChannels, channel) {
		return false, apperr.Invalid("channel", "must be one of %s", strings.Join(rule.ConsentChannels, ", "))
	}
	return rule.ConsentAllows(p.Consent, purpose, channel, pur.AllowedWithoutRecord(), s.now()), nil
}

// HistorySize is how many records the profile's consent log holds
// (History's pages put together).
func HistorySize(ctx context.Context, tn store.Tenant, profileID string) (int64, error) {
	n, err := tn.C(ConsentLog).Count(ctx, store.Query{Index: ConsentByProfile, Eq: []any{profileID}})
	if err != nil {
		return 0, fmt.Errorf("count consent log of %s: %w", profileID, err)
	}
	return n, nil
}

// History returns a page of a profile's consent log, newest first
// (recordedAt), with each record's cursor, and whether more follow.
func (s *Service) History(ctx context.Context, tn store.Tenant, profileID string, first int, after string) ([]Record, []string, bool, error) {
	docs, err := tn.C(ConsentLog).Find(ctx, store.Query{Index: ConsentByProfile, Eq: []any{profileID}, Desc: true, After: after, Limit: first + 1})
	if err != nil {
		if errors.Is(err, store.ErrBadCursor) {
			return nil, nil, false, apperr.Invalid("after", "malformed cursor")
		}
		return nil, nil, false, fmt.Errorf("consent log of %s: %w", profileID, err)
	}
	var (
		out     []Record
		cursors []string
	)
	for i, d := range docs {
		if i == first {
			return out, cursors, true, nil
		}
		var r Record
		if err := d.Decode(&r); err != nil {
			return nil, nil, false, fmt.Errorf("decode consent record: %w", err)
		}
		r.normalise()
		out = append(out, r)
		cursors = append(cursors, d.Key)
	}
	return out, cursors, false, nil
}

// Log returns every consent record of a profile, oldest first (for the
// state rebuild after merges; a person has few).
func Log(ctx context.Context, tn store.Tenant, profileID string) ([]Record, error) {
	var (
		out   []Record
		after string
	)
	for {
		docs, err := tn.C(ConsentLog).Find(ctx, store.Query{Index: ConsentByProfile, Eq: []any{profileID}, After: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("consent log of %s: %w", profileID, err)
		}
		for _, d := range docs {
			after = d.Key
			var r Record
			if err := d.Decode(&r); err != nil {
				return nil, fmt.Errorf("decode consent record: %w", err)
			}
			r.normalise()
			out = append(out, r)
		}
		if len(docs) < 1000 {
			return out, nil
		}
	}
}
