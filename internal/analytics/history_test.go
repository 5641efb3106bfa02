package analytics_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// observed is what the live API answered at one instant.
type observed struct {
	at                time.Time
	pros, vips        int64 // segment sizes
	profiles, known   int64
	contact           map[string]int64 // "purpose:channel" → profiles canContact
	consentDecisions  map[string]int64 // "purpose:channel:STATUS" received so far
	prosIn, prosOut   int64            // history entries so far
	merges, erasures  int64
	unmerges, erasedP int64
}

// consentKeys are the (purpose, channel) pairs the stream records and the
// series are asked for: a purpose that needs consent and one that does
// not (legitimate interest), on ANY and on EMAIL (which falls back to ANY).
var consentKeys = [][2]string{{"marketing", "ANY"}, {"marketing", "EMAIL"}, {"service", "ANY"}, {"service", "EMAIL"}}

// The history series (segmentSize, profileGrowth, consentRates) are the
// live API's answers at each bucket's end, replayed: a random stream of
// identifies, consent (backdated, expiring), static-list edits, merges,
// unmerges and erasures runs on a clock across Lisbon's autumn DST change;
// at every hour's end the test asks the live API (segment sizes, profile
// count, canContact of every profile) and afterwards compares the hourly
// and daily series, in Lisbon, with those answers. The stream's first part
// has no merge or erasure, so that the past stays as it was observed;
// after them only the present is compared (the series describe what is
// stored, and a merge or erasure changes the stored past).
func TestHistorySeriesAreTheLiveAnswers(t *testing.T) {
	rng := rand.New(rand.NewPCG(seedOf(t, "HISTORY_SEED"), 7))
	lisbon, err := time.LoadLocation("Europe/Lisbon")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 10, 24, 0, 0, 0, 0, lisbon) // the 25th has 25 hours
	e := apptest.New(t, start)
	an := e.Services.Analytics
	if _, err := e.Services.Consent.DefinePurpose(e.Ctx, e.Tenant, consent.PurposeInput{Key: "service", LawfulBasis: consent.BasisLegitimateInterest}); err != nil {
		t.Fatal(err)
	}
	pros, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "pros", Rule: &rule.Rule{Trait: &rule.TraitCond{Key: "plan", Op: rule.EQ, Value: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	vips, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "vips", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}

	const people = 30
	profileOf := map[int]string{}
	var (
		obs            []observed
		erasures       int64
		erasedProfiles int64
		decisions      = map[string]int64{}
		phase2         bool
		calls          int
	)
	observe := func() observed {
		o := observed{at: e.Clock.Now(), contact: map[string]int64{}, consentDecisions: map[string]int64{}, erasures: erasures, erasedP: erasedProfiles}
		// Merges also happen behind a call (the merge queue), and an
		// erasure deletes the person's merge records: the stored records
		// that took effect are the truth.
		recs, err := e.Tenant.C(identity.Merges).Find(e.Ctx, store.Query{Index: store.ByID})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range recs {
			switch st, kind := d.Raw.Lookup("status").StringValue(), d.Raw.Lookup("kind").StringValue(); {
			case kind == identity.KindMerge && (st == "done" || st == "undone"):
				o.merges++
			case kind == identity.KindUnmerge && st == "done":
				o.unmerges++
			}
		}
		if o.pros, err = segment.Size(e.Ctx, e.Tenant, pros.ID); err != nil {
			t.Fatal(err)
		}
		if o.vips, err = segment.Size(e.Ctx, e.Tenant, vips.ID); err != nil {
			t.Fatal(err)
		}
		if o.profiles, err = profile.Count(e.Ctx, e.Tenant); err != nil {
			t.Fatal(err)
		}
		err = e.Tenant.C(profile.Profiles).Each(e.Ctx, store.Query{Index: profile.ProfilesByCreated}, func(raw bson.Raw) error {
			var p profile.Profile
			if err := bson.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, k := range consentKeys {
				ok, err := e.Services.Consent.CanContact(e.Ctx, e.Tenant, &p, k[0], k[1])
				if err != nil {
					return err
				}
				if ok {
					o.contact[k[0]+":"+k[1]]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = identity.EachKnown(e.Ctx, e.Tenant, func(string, time.Time) error { o.known++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		for k, n := range decisions {
			o.consentDecisions[k] = n
		}
		return o
	}

	gone := map[int]bool{} // erased: their identifiers are suppressed
	suppressed := func(p int, err error) bool {
		if apperr.CodeOf(err) == apperr.Suppressed {
			gone[p] = true
			return true
		}
		return false
	}
	step := func() {
		calls++
		p := rng.IntN(people)
		if gone[p] {
			return
		}
		ids := []identity.Identifier{{Type: "anonymousId", Value: fmt.Sprintf("a%d", p)}}
		switch r := rng.IntN(10); {
		case r < 4: // identify, sometimes with an email, sometimes changing plan
			if rng.IntN(3) == 0 {
				ids = append(ids, identity.Identifier{Type: "email", Value: fmt.Sprintf("p%d@example.com", p)})
			}
			if phase2 && rng.IntN(4) == 0 {
				// Two visitors with one userId: their profiles merge.
				ids = append(ids, identity.Identifier{Type: "userId", Value: fmt.Sprintf("u%d", p/2)})
			}
			plan := []string{"pro", "free"}[rng.IntN(2)]
			res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{Identifiers: ids, Traits: map[string]any{"plan": plan}})
			if suppressed(p, err) {
				return
			}
			if err != nil {
				t.Fatalf("identify: %v", err)
			}
			profileOf[p] = res.Profile.ID
			for q, id := range profileOf {
				for _, gone := range res.Merged {
					if id == gone {
						profileOf[q] = res.Profile.ID
					}
				}
			}
		case r < 8: // consent, now or backdated, now and then expiring
			k := consentKeys[rng.IntN(len(consentKeys))]
			c := consent.Choice{Purpose: k[0], Channel: k[1], Status: rule.ConsentStatuses[rng.IntN(3)], Source: "test"}
			if k[1] == "ANY" {
				c.Channel = ""
			}
			if rng.IntN(3) == 0 {
				at := e.Clock.Now().Add(-time.Duration(rng.IntN(300)) * time.Minute)
				c.CapturedAt = &at
			}
			if rng.IntN(3) == 0 {
				at := e.Clock.Now().Add(time.Duration(10+rng.IntN(240)) * time.Minute)
				c.ExpiresAt = &at
			}
			id := ids[0]
			_, err := e.Services.Consent.Set(e.Ctx, e.Tenant, "input", consent.Subject{Identifier: &id}, "", []consent.Choice{c}, "t")
			if suppressed(p, err) {
				return
			}
			if err != nil {
				t.Fatalf("consent: %v", err)
			}
			decisions[k[0]+":"+k[1]+":"+c.Status]++
		case r < 9: // the static list
			pid, ok := profileOf[p]
			if !ok {
				return
			}
			var err error
			if rng.IntN(2) == 0 {
				_, err = e.Services.Segments.AddStatic(e.Ctx, e.Tenant, vips.ID, []string{pid})
			} else {
				_, err = e.Services.Segments.RemoveStatic(e.Ctx, e.Tenant, vips.ID, []string{pid})
			}
			if err != nil && apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("static list: %v", err)
			}
		default:
			if !phase2 {
				return
			}
			pid, ok := profileOf[p]
			if !ok {
				return
			}
			if rng.IntN(2) == 0 {
				rec, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, pid, "test", "t")
				if err != nil {
					t.Fatalf("erase: %v", err)
				}
				erasures++
				erasedProfiles += int64(len(rec.ErasedProfileIDs))
				for q, id := range profileOf {
					if id == pid {
						delete(profileOf, q)
						gone[q] = true
					}
				}
				return
			}
			done := doneMerges(t, e)
			if len(done) == 0 {
				return
			}
			if _, err := e.Services.Identity.UnmergeProfiles(e.Ctx, e.Tenant, done[rng.IntN(len(done))], "t"); err != nil {
				if apperr.CodeOf(err) == "" {
					t.Fatalf("unmerge: %v", err)
				}
				return
			}
			for q := range profileOf {
				if q/2 == p/2 {
					delete(profileOf, q) // found again on their next call
				}
			}
		}
	}

	// Phase 1: 54 hours, a few calls per hour; observe at every hour's end.
	hour := start
	for range 54 {
		hour = hour.Add(time.Hour)
		for e.Clock.Now().Before(hour) {
			d := time.Duration(1+rng.IntN(25)) * time.Minute
			if !e.Clock.Now().Add(d).Before(hour) {
				e.Clock.Set(hour)
				break
			}
			e.Clock.Set(e.Clock.Now().Add(d))
			step()
		}
		obs = append(obs, observed{})
		obs[len(obs)-1] = observe()
	}
	t.Logf("%d calls, %d profiles, %d known", calls, obs[len(obs)-1].profiles, obs[len(obs)-1].known)

	check := func(label string, iv analytics.Interval, until time.Time, phase1 bool) {
		t.Helper()
		q := analytics.SeriesQuery{Since: start, Until: until, Interval: iv, TimeZone: "Europe/Lisbon"}
		sz, err := an.SegmentSize(e.Ctx, e.Tenant, pros.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		vz, err := an.SegmentSize(e.Ctx, e.Tenant, vips.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		gr, err := an.ProfileGrowth(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		rates := map[string]*analytics.ConsentRates{}
		for _, k := range consentKeys {
			if rates[k[0]+":"+k[1]], err = an.ConsentRates(e.Ctx, e.Tenant, analytics.ConsentQuery{SeriesQuery: q, Purpose: k[0], Channel: k[1]}); err != nil {
				t.Fatal(err)
			}
		}
		var known, merged, unmerged, erased, erasedP int64
		received := map[string]int64{}
		for i := range sz.Buckets {
			known += gr.Buckets[i].Known
			merged += gr.Buckets[i].Merges
			unmerged += gr.Buckets[i].Unmerges
			erased += gr.Buckets[i].Erasures
			erasedP += gr.Buckets[i].ErasedProfiles
			for k, r := range rates {
				b := r.Buckets[i]
				received[k+":GRANTED"] += b.Granted
				received[k+":DENIED"] += b.Denied
				received[k+":WITHDRAWN"] += b.Withdrawn
			}
			end := sz.Span.Bounds[i+1]
			var o *observed
			for j := range obs {
				if obs[j].at.Equal(end) {
					o = &obs[j]
				}
			}
			if o == nil {
				if !phase1 && i == len(sz.Buckets)-1 {
					now := observe()
					o = &now
				} else {
					continue
				}
			}
			where := fmt.Sprintf("%s bucket %d ending %s", label, i, end.In(lisbon).Format(time.RFC3339))
			if !phase1 && i == len(sz.Buckets)-1 {
				t.Logf("%s: %d merges, %d unmerges, %d erasures in all", where, merged, unmerged, erased)
			}
			if phase1 || i == len(sz.Buckets)-1 {
				if sz.Buckets[i].Size != o.pros || vz.Buckets[i].Size != o.vips {
					t.Errorf("%s: sizes %d, %d; the live answers were %d, %d", where, sz.Buckets[i].Size, vz.Buckets[i].Size, o.pros, o.vips)
				}
				if gr.Buckets[i].Profiles != o.profiles || known != o.known {
					t.Errorf("%s: %d profiles, %d known so far; the live answers were %d, %d", where, gr.Buckets[i].Profiles, known, o.profiles, o.known)
				}
				for k, r := range rates {
					if r.Buckets[i].Contactable != o.contact[k] || r.Buckets[i].Profiles != o.profiles {
						t.Errorf("%s: %s contactable %d of %d; canContact said %d of %d", where, k, r.Buckets[i].Contactable, r.Buckets[i].Profiles, o.contact[k], o.profiles)
					}
				}
				for k, n := range o.consentDecisions {
					if received[k] != n {
						t.Errorf("%s: %s received %d so far, %d were sent", where, k, received[k], n)
					}
				}
				if merged != o.merges || unmerged != o.unmerges || erased != o.erasures || erasedP != o.erasedP {

					t.Errorf("%s: merges %d, unmerges %d, erasures %d (%d profiles) so far; %d, %d, %d (%d) were made", where, merged, unmerged, erased, erasedP, o.merges, o.unmerges, o.erasures, o.erasedP)
				}
			}
		}
	}
	end := start.Add(54 * time.Hour)
	check("hourly", analytics.Hour, end, true)
	check("daily", analytics.Day, end.Add(-time.Minute), true)

	// Phase 2: merges, unmerges and erasures; then the present is checked.
	phase2 = true
	for range 120 {
		e.Clock.Set(e.Clock.Now().Add(time.Duration(1+rng.IntN(20)) * time.Minute))
		step()
	}
	e.Clock.Set(e.Clock.Now().Truncate(time.Hour).Add(time.Hour))
	// The last bucket ends now: its figures are the live answers now.
	check("hourly after merges and erasures", analytics.Hour, e.Clock.Now().Add(-time.Minute), false)
}
