package identity_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// concIdentity is an identities document as the store holds it.
type concIdentity struct {
	ID        string `bson:"_id"`
	Type      string `bson:"type"`
	Value     string `bson:"value"`
	ProfileID string `bson:"profileId"`
}

// concCall is what one goroutine did in one call, for the checks after.
type concCall struct {
	track     bool
	messageID string
	ids       []identity.Identifier
	err       error
	dup       bool
	// refused: a shared messageId another person's event holds (CONFLICT,
	// by design: a replay counts only for the same person). Refused before
	// anything is written, unless it lost a race at the insert: then its
	// identifiers may have been attached, so they may, not must, be held.
	refused bool
}

// TestConcurrencyMixedIdentifyTrack races 20 goroutines × 50 identify and
// track calls over a small pool of overlapping identifiers (issue 5): the
// calls create, attach, merge and refuse merges all at once. Afterwards
// the store must be consistent: every identifier on exactly one live
// profile, every accepted messageId stored exactly once, no profile with
// two values of a unique type, counters equal to the events, and no merge
// left in the queue.
//
// The pool holds 5 emails, the default per-profile limit, so no email is
// ever trimmed off a profile and every identifier a call attached must
// still be held at the end.
func TestConcurrencyMixedIdentifyTrack(t *testing.T) {
	e := apptest.New(t, t0)
	e.Clock.SetTick(time.Microsecond) // distinct createdAt: merge direction is by age
	const (
		goroutines = 20
		calls      = 50
		shared     = 40 // messageIds "shared-0".."shared-39" are sent by many goroutines
	)
	var pool []identity.Identifier
	for i := range 10 {
		pool = append(pool, identity.Identifier{Type: identity.AnonymousID, Value: fmt.Sprintf("anon-%d", i)})
	}
	for i := range 5 {
		pool = append(pool, identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("person%d@example.com", i)})
	}
	for i := range 4 {
		pool = append(pool, identity.Identifier{Type: identity.UserID, Value: fmt.Sprintf("user-%d", i)})
	}
	users := pool[15:]

	log := make([][]concCall, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 5))
			<-start
			for i := range calls {
				var ids []identity.Identifier
				bad := rnd.IntN(25) == 0 // two userIds in one call: refused by design
				if bad {
					a := rnd.IntN(len(users))
					ids = []identity.Identifier{users[a], users[(a+1+rnd.IntN(len(users)-1))%len(users)]}
					if rnd.IntN(2) == 0 {
						ids = append(ids, pool[rnd.IntN(15)])
					}
				} else {
					n := 1 + rnd.IntN(3)
					for _, k := range rnd.Perm(len(pool)) {
						if len(ids) == n {
							break
						}
						if pool[k].Type == identity.UserID && slices.ContainsFunc(ids, func(x identity.Identifier) bool { return x.Type == identity.UserID }) {
							continue
						}
						ids = append(ids, pool[k])
					}
				}
				var traits map[string]any
				if rnd.IntN(3) == 0 {
					traits = map[string]any{"plan": []string{"free", "pro", "team"}[rnd.IntN(3)], fmt.Sprintf("g%d", g): int64(i)}
				}
				c := concCall{ids: ids}
				if rnd.IntN(2) == 0 {
					c.track = true
					c.messageID = fmt.Sprintf("m-%d-%d", g, i)
					if !bad && rnd.IntN(4) == 0 {
						c.messageID = fmt.Sprintf("shared-%d", rnd.IntN(shared))
					}
					in := timeline.TrackInput{MessageID: c.messageID, Identifiers: ids, Name: "page_viewed"}
					if traits != nil {
						in.Traits = traits
					}
					var res []timeline.TrackResult
					res, c.err = e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{in})
					if c.err == nil {
						c.dup = res[0].Duplicate
					} else if !bad && apperr.CodeOf(c.err) == apperr.Conflict && strings.HasPrefix(c.messageID, "shared-") {
						c.err, c.refused = nil, true
					}
				} else {
					_, c.err = e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: ids, Traits: traits, Actor: "tester"})
				}
				if bad {
					if apperr.CodeOf(c.err) != apperr.BadUserInput {
						c.err = fmt.Errorf("two userIds %v: want BAD_USER_INPUT, got %v", ids, c.err)
					} else {
						c.err = nil
						c.ids = nil // attached nothing
						c.messageID = ""
					}
				}
				log[g] = append(log[g], c)
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d calls in %v", goroutines*calls, time.Since(began).Round(time.Millisecond))

	used := map[identity.Identifier]bool{}
	maybe := map[identity.Identifier]bool{} // sent by refused calls
	accepted := map[string]bool{}
	tracks, dups, refused := 0, 0, 0
	for g, cs := range log {
		for i, c := range cs {
			if c.err != nil {
				t.Errorf("goroutine %d call %d (%v): %v", g, i, c.ids, c.err)
				continue
			}
			if c.refused {
				refused++
				for _, id := range c.ids {
					maybe[id] = true
				}
				continue
			}
			for _, id := range c.ids {
				used[id] = true
			}
			if c.messageID != "" {
				tracks++
				accepted[c.messageID] = true
				if c.dup {
					dups++
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if dups == 0 {
		t.Errorf("no track call reported a duplicate: the shared messageIds did not collide")
	}

	// Profiles: all live, none left claimed by a merge.
	profiles := map[string]*profile.Profile{}
	docs, err := e.Tenant.C(profile.Profiles).Find(e.Ctx, store.Query{Index: profile.ProfilesByCreated})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		var p profile.Profile
		if err := d.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.MergingInto != "" {
			t.Errorf("profile %s still claimed by merge %s into %s", p.ID, p.MergeID, p.MergingInto)
		}
		profiles[p.ID] = &p
	}

	// Identities: each identifier once, on a live profile; every
	// identifier a call used is still held.
	docs, err = e.Tenant.C(identity.Identities).Find(e.Ctx, store.Query{Index: identity.IdentitiesByValue})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[identity.Identifier]string{}
	held := map[string]map[string][]string{} // profile → type → values
	for _, d := range docs {
		var doc concIdentity
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		id := identity.Identifier{Type: doc.Type, Value: doc.Value}
		if prev, ok := owner[id]; ok {
			t.Errorf("identifier %s=%s held twice: profiles %s and %s", doc.Type, doc.Value, prev, doc.ProfileID)
		}
		owner[id] = doc.ProfileID
		if _, ok := profiles[doc.ProfileID]; !ok {
			t.Errorf("identifier %s=%s points at %s, which is not a live profile", doc.Type, doc.Value, doc.ProfileID)
		}
		if held[doc.ProfileID] == nil {
			held[doc.ProfileID] = map[string][]string{}
		}
		held[doc.ProfileID][doc.Type] = append(held[doc.ProfileID][doc.Type], doc.Value)
	}
	for id := range used {
		if _, ok := owner[id]; !ok {
			t.Errorf("identifier %s=%s was used but no profile holds it", id.Type, id.Value)
		}
	}
	for id := range owner {
		if !used[id] && !maybe[id] {
			t.Errorf("identifier %s=%s is held but no accepted call sent it", id.Type, id.Value)
		}
	}

	// Unique types: at most one value per profile, and profile.Uniques
	// (the compare-and-swap guard) agrees with the identities.
	types, err := identity.LoadTypes(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for pid, p := range profiles {
		if len(held[pid]) == 0 {
			t.Errorf("profile %s holds no identifiers", pid)
		}
		for typ, cfg := range types {
			if !cfg.Unique {
				continue
			}
			vals := held[pid][typ]
			if len(vals) > 1 {
				t.Errorf("profile %s holds %d %s values: %v", pid, len(vals), typ, vals)
			}
			guard, ok := p.Uniques[typ]
			switch {
			case len(vals) == 0 && ok:
				t.Errorf("profile %s: uniques says %s=%q but it holds no %s", pid, typ, guard, typ)
			case len(vals) > 0 && guard != vals[0]:
				t.Errorf("profile %s holds %s=%q but uniques says %q", pid, typ, vals[0], guard)
			}
		}
		for typ := range p.Uniques {
			if !types.Base(typ).Unique {
				t.Errorf("profile %s: uniques holds non-unique type %s", pid, typ)
			}
		}
	}

	// Events: every accepted messageId stored exactly once, on a live
	// profile, and nothing else stored.
	docs, err = e.Tenant.C(timeline.Events).Find(e.Ctx, store.Query{Index: timeline.EventsByMessage})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	perProfile := map[string]int64{}
	for _, d := range docs {
		var ev timeline.Event
		if err := d.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		stored[ev.MessageID]++
		perProfile[ev.ProfileID]++
		if _, ok := profiles[ev.ProfileID]; !ok {
			t.Errorf("event %s is on %s, which is not a live profile", ev.MessageID, ev.ProfileID)
		}
	}
	for m, n := range stored {
		if n != 1 {
			t.Errorf("messageId %s stored %d times", m, n)
		}
		if !accepted[m] {
			t.Errorf("messageId %s stored but no call was accepted with it", m)
		}
	}
	for m := range accepted {
		if stored[m] == 0 {
			t.Errorf("accepted messageId %s is not stored", m)
		}
	}
	if len(docs) != len(accepted) {
		t.Errorf("%d events stored, want %d (distinct accepted messageIds)", len(docs), len(accepted))
	}

	// Counters: each profile's eventCount is its events, and they add up
	// to the events stored. (Issue 15: a merge whose fold went past a
	// pending claim that was then refused folded its source twice, and
	// slow moves into a profile merged away meanwhile stranded events on
	// it; see TestFoldDoesNotPassAPendingClaim and sweepOn.)
	var ids []string
	for pid := range profiles {
		ids = append(ids, pid)
	}
	sort.Strings(ids)
	var total int64
	for _, pid := range ids {
		total += profiles[pid].EventCount
		if got, want := profiles[pid].EventCount, perProfile[pid]; got != want {
			t.Errorf("COUNTER DRIFT: profile %s: eventCount %d, but %d events on its timeline", pid, got, want)
		}
	}
	if total != int64(len(docs)) {
		t.Errorf("COUNTER DRIFT: eventCounts add up to %d, but %d events are stored", total, len(docs))
	}

	// No merge left half-done.
	if n, err := e.Store.Tenant(store.SystemWorkspace).C(identity.MergeQueue).Count(e.Ctx, store.Query{Index: identity.QueueByAt}); err != nil || n != 0 {
		t.Errorf("merge queue holds %d entries (err %v), want 0", n, err)
	}
	if n, err := e.Tenant.C(identity.Merges).Count(e.Ctx, store.Query{Index: identity.MergesByStatus, Eq: []any{"running"}}); err != nil || n != 0 {
		t.Errorf("%d merge records still running (err %v), want 0", n, err)
	}
	merges, err := e.Tenant.C(identity.Merges).Count(e.Ctx, store.Query{Index: identity.MergesByStatus, Eq: []any{"done"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d profiles, %d identities, %d tracks accepted (%d duplicates, %d refused as another person's messageId), %d events, %d merges done",
		len(profiles), len(owner), tracks, dups, refused, len(docs), merges)
}
