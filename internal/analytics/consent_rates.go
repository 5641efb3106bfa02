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
			replayConsent(out, decided, q, h.entries, at, stored)
		}
		batch = batch[:0]
		return nil
	}
	err = consent.EachLog(ctx, tn, q.Purpose, func(profileID string, entries []consent.LogEntry) error {
		if privacy.IsPseudonym(profileID) {
			// An erased person's kept proof: counted as records, never
			// as a profile.
			replayConsent(out, decided, q, entries, time.Time{}, false)
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
// the series: their counts, their lapses, and, for a stored profile
// created at createdAt, whether a record decided each bucket's end and
// allowed contact.
func replayConsent(out *ConsentRates, decided []int64, q ConsentQuery, entries []consent.LogEntry, createdAt time.Time, stored bool) {
	sp := out.Span
	state := map[string][]rule.ConsentEntry{}
	for _, e := range entries {
		if e.Channel != q.Channel {
			continue
		}
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
		if i := sp.Index(e.ExpiresAt); !e.ExpiresAt.IsZero() && i >= 0 && lapsed(entries, e) {
			out.Buckets[i].Expired++
		}
	}
	if !stored {
		return
	}
	next := 0 // entries[:next] were received before the bucket's end
	for i := range out.Buckets {
		end := sp.Bounds[i+1]
		if !createdAt.Before(end) {
			continue
		}
		for ; next < len(entries) && entries[next].RecordedAt.Before(end); next++ {
			e := entries[next]
			k := rule.ConsentKey(q.Purpose, e.Channel)
			state[k] = rule.InsertConsent(state[k], e.ConsentEntry, e.RecordedAt)
		}
		if e, ok := rule.EffectiveConsent(state, q.Purpose, q.Channel, end); ok {
			decided[i]++
			if e.Status == rule.Granted {
				out.Buckets[i].Contactable++
			}
		}
	}
}

// lapsed tells whether e was its key's current record when it expired,
// as the log stood then.
func lapsed(entries []consent.LogEntry, e consent.LogEntry) bool {
	var known []rule.ConsentEntry
	for _, x := range entries {
		if x.Channel == e.Channel && x.RecordedAt.Before(e.ExpiresAt) {
			known = rule.InsertConsent(known, x.ConsentEntry, x.RecordedAt)
		}
	}
	cur, ok := rule.CurrentConsent(known, e.ExpiresAt.Add(-time.Nanosecond))
	return ok && cur.ID == e.ID
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
