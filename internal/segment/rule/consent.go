package rule

import (
	"slices"
	"time"
)

// Consent channels and statuses, as the API spells them. AnyChannel stands
// for every channel without a record of its own.
const (
	AnyChannel = "ANY"
	Granted    = "GRANTED"
	Denied     = "DENIED"
	Withdrawn  = "WITHDRAWN"
)

// ConsentChannels lists every channel, AnyChannel first.
var ConsentChannels = []string{AnyChannel, "EMAIL", "SMS", "PHONE", "PUSH", "WEB", "POSTAL"}

// ConsentStatuses lists every status.
var ConsentStatuses = []string{Granted, Denied, Withdrawn}

// MaxConsentEntries bounds the entries kept per (purpose, channel) on a
// profile (see InsertConsent); the consent log keeps everything.
const MaxConsentEntries = 16

// ConsentCond holds when the profile's consent for Purpose on Channel
// (default ANY) is Status (default GRANTED) now:
//   - GRANTED: contact is allowed — the channel's own current record if
//     any, else the ANY record, else the purpose's lawful basis (allowed
//     without a record unless it is CONSENT), is GRANTED / allows it;
//   - DENIED, WITHDRAWN: the effective current record (the channel's own,
//     else ANY) has that status; no record never matches.
//
// A record stops counting when it expires, so the answer can change with
// time alone: Evaluate reports the first expiry that flips it as
// nextEvalAt.
type ConsentCond struct {
	Purpose string `bson:"purpose" json:"purpose"`
	Channel string `bson:"channel,omitempty" json:"channel,omitempty"`
	Status  string `bson:"status,omitempty" json:"status,omitempty"`
}

func (c *ConsentCond) channel() string {
	if c.Channel == "" {
		return AnyChannel
	}
	return c.Channel
}

func (c *ConsentCond) status() string {
	if c.Status == "" {
		return Granted
	}
	return c.Status
}

// ConsentEntry is one consent record as the profile document keeps it
// (the full record, with its proof, is in the consent log).
type ConsentEntry struct {
	// ID is the consent log record's id.
	ID         string    `bson:"id" json:"id"`
	Status     string    `bson:"status" json:"status"`
	CapturedAt time.Time `bson:"capturedAt" json:"capturedAt"`
	RecordedAt time.Time `bson:"recordedAt" json:"recordedAt"`
	// ExpiresAt is zero when the record never expires.
	ExpiresAt time.Time `bson:"expiresAt,omitempty" json:"expiresAt,omitzero"`
	Source    string    `bson:"source,omitempty" json:"source,omitempty"`
}

// Live tells whether the entry still counts at t (it expires at ExpiresAt).
func (e ConsentEntry) Live(t time.Time) bool {
	return e.ExpiresAt.IsZero() || t.Before(e.ExpiresAt)
}

// ConsentKey is the key of a (purpose, channel) state on a profile.
func ConsentKey(purpose, channel string) string { return purpose + ":" + channel }

// consentOrder orders entries oldest first: by capturedAt, then
// recordedAt, then id (so two copies of one set order the same).
func consentOrder(a, b ConsentEntry) int {
	if c := a.CapturedAt.Compare(b.CapturedAt); c != 0 {
		return c
	}
	if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
		return c
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// CurrentConsent returns the current entry of one key's entries (oldest
// first) at t: the latest one that has not expired.
func CurrentConsent(entries []ConsentEntry, t time.Time) (ConsentEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Live(t) {
			return entries[i], true
		}
	}
	return ConsentEntry{}, false
}

// EffectiveConsent returns the record that decides purpose on channel at
// t: the channel's own current entry, else the ANY one.
func EffectiveConsent(consent map[string][]ConsentEntry, purpose, channel string, t time.Time) (ConsentEntry, bool) {
	if e, ok := CurrentConsent(consent[ConsentKey(purpose, channel)], t); ok {
		return e, true
	}
	if channel != AnyChannel {
		return CurrentConsent(consent[ConsentKey(purpose, AnyChannel)], t)
	}
	return ConsentEntry{}, false
}

// ConsentAllows tells whether purpose on channel is allowed at t: the
// effective record is GRANTED, or there is none and allowedWithout (the
// purpose's lawful basis is not CONSENT).
func ConsentAllows(consent map[string][]ConsentEntry, purpose, channel string, allowedWithout bool, t time.Time) bool {
	if e, ok := EffectiveConsent(consent, purpose, channel, t); ok {
		return e.Status == Granted
	}
	return allowedWithout
}

// InsertConsent adds e to one key's entries (oldest first), in order, and
// drops the entries that can no longer become current at now or later:
// expired ones, and those expiring no later than a newer entry (once the
// newer one expires, they have too). Inserting an entry already there (by
// ID) changes nothing. At most MaxConsentEntries are kept, dropping the
// oldest (in practice the list holds one or two entries).
func InsertConsent(entries []ConsentEntry, e ConsentEntry, now time.Time) []ConsentEntry {
	if slices.ContainsFunc(entries, func(x ConsentEntry) bool { return x.ID == e.ID }) {
		return PruneConsent(entries, now)
	}
	out := slices.Clone(entries)
	i, _ := slices.BinarySearchFunc(out, e, consentOrder)
	out = slices.Insert(out, i, e)
	return PruneConsent(out, now)
}

// PruneConsent drops the entries that can no longer become current at now
// or later (see InsertConsent). The result is a new slice.
func PruneConsent(entries []ConsentEntry, now time.Time) []ConsentEntry {
	var (
		kept   []ConsentEntry
		latest = now // an entry must outlive every newer one and now
		never  = false
	)
	for i := len(entries) - 1; i >= 0 && !never; i-- {
		e := entries[i]
		if e.ExpiresAt.IsZero() {
			kept = append(kept, e)
			never = true
			continue
		}
		if e.ExpiresAt.After(latest) {
			kept = append(kept, e)
			latest = e.ExpiresAt
		}
	}
	slices.Reverse(kept)
	if len(kept) > MaxConsentEntries {
		kept = kept[len(kept)-MaxConsentEntries:]
	}
	return kept
}

// consent evaluates a consent node and finds the first expiry after now
// that flips it.
func (e *evaluator) consent(c *ConsentCond) (bool, time.Time) {
	own := e.in.Consent[ConsentKey(c.Purpose, c.channel())]
	var fallback []ConsentEntry
	if c.channel() != AnyChannel {
		fallback = e.in.Consent[ConsentKey(c.Purpose, AnyChannel)]
	}
	allowed := e.in.ConsentDefaults[c.Purpose]
	want := c.status()
	at := func(t time.Time) bool {
		if want == Granted {
			return ConsentAllows(e.in.Consent, c.Purpose, c.channel(), allowed, t)
		}
		r, ok := EffectiveConsent(e.in.Consent, c.Purpose, c.channel(), t)
		return ok && r.Status == want
	}
	cur := at(e.now)
	var edges []time.Time
	for _, list := range [][]ConsentEntry{own, fallback} {
		for _, x := range list {
			if !x.ExpiresAt.IsZero() && x.ExpiresAt.After(e.now) {
				edges = append(edges, x.ExpiresAt)
			}
		}
	}
	slices.SortFunc(edges, time.Time.Compare)
	for _, t := range edges {
		if at(t) != cur {
			return cur, t.UTC()
		}
	}
	return cur, time.Time{}
}
