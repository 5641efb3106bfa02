package analytics

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// ConsentQuery asks for one purpose's consent figures on one channel.
type ConsentQuery struct {
	SeriesQuery
	Purpose string
	Channel string // "" is ANY
}

// ConsentRates is a consent series.
type ConsentRates struct {
	Span Span
	// AllowedWithoutRecord: the purpose's lawful basis is not consent, so
	// a profile without a record may be contacted.
	AllowedWithoutRecord bool
	Buckets              []ConsentBucket
}

// ConsentBucket is one bucket of it.
type ConsentBucket struct {
	// Granted, Denied and Withdrawn count the channel's own records
	// received in the bucket (by recordedAt), by status.
	Granted, Denied, Withdrawn int64
	// Expired counts the channel's records that lapsed in the bucket
	// while they were its current record.
	Expired int64
	// Profiles are the stored profiles created before the bucket's end;
	// Contactable those of them that could be contacted then, as the log
	// stood: the channel's current record, else ANY's, else the purpose's
	// basis (consent.CanContact at that instant).
	Profiles, Contactable int64
}

// consentBatch is how many profiles' records are held at once: their
// creation times are read together.
const consentBatch = 1000

// ConsentRates walks the purpose's consent log once, a profile at a time,
// replaying each profile's records in the order they were received, so
// every bucket's figures are what CanContact answered at its end.
func (s *Service) ConsentRates(ctx context.Context, tn store.Tenant, q ConsentQuery) (*ConsentRates, error) {
	if q.Channel == "" {
		q.Channel = rule.AnyChannel
	}
	if !slices.Contains(rule.ConsentChannels, q.Channel) {
		return nil, apperr.Invalid("channel", "must be one of %s", strings.Join(rule.ConsentChannels, ", "))
	}
	allow, err := s.purposes.Allowances(ctx, tn)
	if err != nil {
		return nil, err
	}
	allowedWithout, ok := allow[q.Purpose]
	if !ok {
		return nil, apperr.Invalid("purpose", "unknown purpose %q (see consentPurposes)", q.Purpose)
	}
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	out := &ConsentRates{Span: sp, AllowedWithoutRecord: allowedWithout, Buckets: make([]ConsentBucket, sp.Len())}
	now := s.clock()
	if err := profilesAt(ctx, tn, sp, func(i int, created, total int64) { out.Buckets[i].Profiles = total }); err != nil {
		return nil, err
	}
	// decided[i]: profiles with a record deciding the bucket's end.
	decided := make([]int64, sp.Len())
	type held struct {
		id      string
		entries []consent.LogEntry
	}
	var batch []held
	replay := func() error {
		ids := make([]string, len(batch))
		for i, h := range batch {
			ids[i] = h.id
		}
		created, err := profile.CreatedAt(ctx, tn, ids)
		if err != nil {
			return err
		}
		for _, h := range batch {
			at, stored := created[h.id]
			replayConsent(out, decided, q, h.entries, at, stored, now)
		}
		batch = batch[:0]
		return nil
	}
	err = consent.EachLog(ctx, tn, q.Purpose, func(profileID string, entries []consent.LogEntry) error {
		if privacy.IsPseudonym(profileID) {
			// An erased person's kept proof: counted as records, never
			// as a profile.
			replayConsent(out, decided, q, entries, time.Time{}, false, now)
			return nil
		}
		batch = append(batch, held{profileID, slices.Clone(entries)})
		if len(batch) == consentBatch {
			return replay()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = replay()
	}
	if err != nil {
		return nil, err
	}
	for i := range out.Buckets {
		if allowedWithout {
			out.Buckets[i].Contactable += out.Buckets[i].Profiles - decided[i]
		}
	}
	return out, nil
}

// replayConsent adds one profile's records (in the order received) to
// the series: their counts, their lapses up to now, and, for a stored
// profile created at createdAt, whether a record decided each bucket's
// end (now, for the bucket under way) and allowed contact.
func replayConsent(out *ConsentRates, decided []int64, q ConsentQuery, entries []consent.LogEntry, createdAt time.Time, stored bool, now time.Time) {
	sp := out.Span
	var own, lapsing []consent.LogEntry // the channel's records; those lapsed in the span
	for _, e := range entries {
		if e.Channel != q.Channel {
			continue
		}
		own = append(own, e)
		if i := sp.Index(e.RecordedAt); i >= 0 {
			switch e.Status {
			case rule.Granted:
				out.Buckets[i].Granted++
			case rule.Denied:
				out.Buckets[i].Denied++
			case rule.Withdrawn:
				out.Buckets[i].Withdrawn++
			}
		}
		if !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(now) && sp.Index(e.ExpiresAt) >= 0 {
			lapsing = append(lapsing, e)
		}
	}
	// A record lapses if it was its key's current one just before it
	// expired, as the log stood then: one sweep in expiry order, the
	// records received before each expiry added as it comes.
	slices.SortFunc(lapsing, func(a, b consent.LogEntry) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	var known []rule.ConsentEntry
	p := 0
	for _, e := range lapsing {
		for ; p < len(own) && own[p].RecordedAt.Before(e.ExpiresAt); p++ {
			known = rule.InsertConsent(known, own[p].ConsentEntry, own[p].RecordedAt)
		}
		if cur, ok := rule.CurrentConsent(known, e.ExpiresAt.Add(-time.Nanosecond)); ok && cur.ID == e.ID {
			out.Buckets[sp.Index(e.ExpiresAt)].Expired++
		}
	}
	if !stored {
		return
	}
	state := map[string][]rule.ConsentEntry{}
	next := 0 // entries[:next] were received before the bucket's end
	for i := range out.Buckets {
		end := sp.Bounds[i+1]
		if !createdAt.Before(end) {
			continue
		}
		at := end
		if now.Before(at) {
			at = now // the bucket under way: what canContact answers now
		}
		for ; next < len(entries) && entries[next].RecordedAt.Before(at); next++ {
			e := entries[next]
			k := rule.ConsentKey(q.Purpose, e.Channel)
			state[k] = rule.InsertConsent(state[k], e.ConsentEntry, e.RecordedAt)
		}
		if e, ok := rule.EffectiveConsent(state, q.Purpose, q.Channel, at); ok {
			decided[i]++
			if e.Status == rule.Granted {
				out.Buckets[i].Contactable++
			}
		}
	}
}

// profilesAt calls fn for every bucket with the stored profiles created
// in it and before its end: one index count per bucket.
func profilesAt(ctx context.Context, tn store.Tenant, sp Span, fn func(i int, created, total int64)) error {
	total, err := profile.CountCreated(ctx, tn, time.Time{}, sp.Start())
	if err != nil {
		return err
	}
	for i := range sp.Len() {
		n, err := profile.CountCreated(ctx, tn, sp.Bounds[i], sp.Bounds[i+1])
		if err != nil {
			return err
		}
		total += n
		fn(i, n, total)
	}
	return nil
}
