package ingest_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
)

// The write path is exact under concurrency: four writers send random
// batches and single events by new and known visitors, with traits, while
// identify calls merge visitors by a shared email; afterwards every live
// profile's event count, feature counters, memberships and members index
// equal what its stored events give (segment.Verify), and every
// acknowledged event is counted once. The seed is printed: it replays the
// random draws, not the interleaving of the writers.
func TestWritePathIsExact(t *testing.T) {
	for _, seed := range []uint64{1, uint64(time.Now().UnixNano())} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { writePathIsExact(t, seed) })
	}
}

func writePathIsExact(t *testing.T, seed uint64) {
	t.Logf("seed %d", seed)
	e := benchEnv(t, 20, 40) // 20 mixed segments, known people p0..p39
	// Computed traits of several kinds and the score tally, checked with
	// the rest (traits.Verify).
	for _, in := range []traits.Input{
		{Key: "ev3s", Kind: "COUNT", Event: "ev3"},
		{Key: "spent", Kind: "SUM", Event: "ev5", Property: "amount"},
		{Key: "last_amount", Kind: "LAST", Event: "ev7", Property: "amount"},
		{Key: "favourite", Kind: "MOST_FREQUENT", Event: "ev2", Property: "amount"},
	} {
		if _, err := e.Services.Traits.Define(e.Ctx, e.Tenant, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Services.Traits.SetScoreSettings(e.Ctx, e.Tenant, traits.ScoreSettings{OrderEvent: "ev1", RevenueProperty: "amount"}, "t"); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		msg     int
		whoOf   = map[string]string{} // messageId → the visitor it was sent for
		stored  int64                 // events acknowledged as new
		refused int                   // calls refused with CONFLICT
	)
	next := func() int { mu.Lock(); defer mu.Unlock(); msg++; return msg }
	// replay picks a messageId sent before and the visitor it was sent
	// for, so that most replays are duplicates; "" before any was sent.
	replay := func(rng *rand.Rand) (string, string) {
		mu.Lock()
		defer mu.Unlock()
		if msg == 0 {
			return "", ""
		}
		id := fmt.Sprint("m", 1+rng.IntN(msg))
		return id, whoOf[id]
	}
	plans := []string{"free", "pro"}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range 15 {
				if rng.IntN(5) == 0 {
					// Two visitors become one person.
					a, b := fmt.Sprint("v", rng.IntN(30)), fmt.Sprint("v", rng.IntN(30))
					mail := fmt.Sprintf("m%d@example.com", rng.IntN(10))
					for _, v := range []string{a, b} {
						ids := []identity.Identifier{{Type: identity.AnonymousID, Value: v}, {Type: identity.Email, Value: mail}}
						if _, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{Identifiers: ids, Traits: map[string]any{"plan": plans[rng.IntN(2)]}}); err != nil {
							t.Error(err)
							return
						}
					}
					continue
				}
				n := 1 + rng.IntN(40)
				in := make([]timeline.TrackInput, n)
				for j := range in {
					who := fmt.Sprint("p", rng.IntN(40))
					if rng.IntN(2) == 0 {
						who = fmt.Sprint("v", rng.IntN(30))
					}
					at := start.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)
					id := fmt.Sprint("m", next())
					switch r := rng.IntN(20); {
					case r < 2: // a replay by the same visitor: a duplicate
						if old, by := replay(rng); by != "" {
							id, who = old, by
						}
					case r == 2: // someone else's messageId: CONFLICT
						if old, _ := replay(rng); old != "" {
							id = old
						}
					}
					in[j] = timeline.TrackInput{MessageID: id, Identifiers: anon(who),
						Name: fmt.Sprint("ev", rng.IntN(12)), Properties: map[string]any{"amount": float64(rng.IntN(100))}, OccurredAt: &at}
				}
				res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", in)
				if err != nil {
					// Only a messageId taken by someone else may refuse
					// a call; it then stores nothing.
					if apperr.CodeOf(err) != apperr.Conflict {
						t.Error(err)
						return
					}
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				mu.Lock()
				for _, r := range res {
					if !r.Duplicate {
						stored++
						whoOf[r.Event.MessageID] = r.Event.Identifiers[0].Value
					}
				}
				mu.Unlock()
			}
		})
	}
	// Recounts from the stored events, as after a crash, racing the
	// writers: a call whose events a recount included, counting them
	// after it, must recount in turn rather than add them again; and a
	// recount during a merge must not lose the items still moving.
	writing := make(chan struct{})
	recounts := 0
	var rwg sync.WaitGroup
	rwg.Go(func() {
		for {
			select {
			case <-writing:
				return
			case <-time.After(3 * time.Millisecond):
			}
			var ids []string
			if err := profile.EachLive(e.Ctx, e.Tenant, func(p *profile.Profile) error {
				ids = append(ids, p.ID)
				return nil
			}); err != nil {
				t.Error(err)
				return
			}
			if _, err := e.Services.Ingest.Recount(e.Ctx, e.Tenant, ids, "test"); err != nil {
				t.Error(err)
				return
			}
			recounts++
		}
	})
	wg.Wait()
	close(writing)
	rwg.Wait()
	t.Logf("%d recounts of every profile ran beside the writers", recounts)
	checked, counted := 0, int64(0)
	if err := profile.EachLive(e.Ctx, e.Tenant, func(p *profile.Profile) error {
		checked++
		counted += p.EventCount
		ms, err := e.Services.Ingest.Verify(e.Ctx, e.Tenant, p, e.Clock.Now())
		for _, m := range ms {
			t.Error(m)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if checked < 40 || stored < 200 {
		t.Fatalf("%d profiles checked, %d events stored: the run tested too little", checked, stored)
	}
	// Every stored event is counted on a live profile (none left on a
	// merged-away one), and every acknowledged one is stored. (A call
	// refused for a messageId raced by another keeps its other events:
	// more may be stored than were acknowledged.)
	if all := e.Count(t, timeline.Events, timeline.EventsByMessage); counted != all || all < stored {
		t.Errorf("profiles count %d events; %d are stored, %d were acknowledged", counted, all, stored)
	}
	t.Logf("%d profiles exact, %d events stored, %d calls refused", checked, stored, refused)
}

// A crash between creating a person and the write that decides their
// memberships (here: resolution alone, as a trackBatch killed before it
// stored its events) leaves a profile born due: the sweeper decides it.
func TestUndecidedNewProfileIsSwept(t *testing.T) {
	e := benchEnv(t, 5, 0)
	// Inactive for 14 days: true of a person with no events yet.
	quiet, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "quiet", Rule: &rule.Rule{
		LastEvent: &rule.InactivityCond{Name: "ev0", NotWithin: rule.Last{Amount: 14, Unit: rule.Days}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon("crashed"), Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p.NextEvalAt.After(e.Clock.Now()) || len(p.Segments) != 0 {
		t.Fatalf("new profile due at %s with segments %v; want due now, undecided", p.NextEvalAt, p.Segments)
	}
	if _, err := e.Services.Segments.Sweep(e.Ctx, e.Tenant, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	p = e.Profile(t, p.ID)
	if !slices.Contains(p.Segments, quiet.ID) || !p.NextEvalAt.After(e.Clock.Now()) {
		t.Fatalf("after the sweep: segments %v, next %s", p.Segments, p.NextEvalAt)
	}
	ms, err := e.Services.Ingest.Verify(e.Ctx, e.Tenant, p, e.Clock.Now())
	if err != nil || len(ms) != 0 {
		t.Fatalf("verify after the sweep: %v %v", ms, err)
	}
}
