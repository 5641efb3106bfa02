package ingest_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
)

// The write path is exact under concurrency: four writers send random
// batches and single events by new and known visitors, with traits, while
// identify calls merge visitors by a shared email; afterwards every live
// profile's event count, feature counters, memberships and members index
// equal what its stored events give (segment.Verify). The seed is
// printed; set it in seeds to replay a failure.
func TestWritePathIsExact(t *testing.T) {
	for _, seed := range []uint64{1, uint64(time.Now().UnixNano())} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { writePathIsExact(t, seed) })
	}
}

func writePathIsExact(t *testing.T, seed uint64) {
	t.Logf("seed %d", seed)
	e := benchEnv(t, 20, 40) // 20 mixed segments, known people p0..p39
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		msg int
	)
	next := func() int { mu.Lock(); defer mu.Unlock(); msg++; return msg }
	sent := func() int { mu.Lock(); defer mu.Unlock(); return msg }
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
					in[j] = timeline.TrackInput{MessageID: fmt.Sprint("m", next()), Identifiers: anon(who),
						Name: fmt.Sprint("ev", rng.IntN(12)), Properties: map[string]any{"amount": float64(rng.IntN(100))}, OccurredAt: &at}
					if rng.IntN(10) == 0 {
						in[j].MessageID = fmt.Sprint("m", 1+rng.IntN(sent())) // a replay (or a CONFLICT)
					}
				}
				// A refused call (a replayed messageId by someone else)
				// stores nothing; the exactness holds either way.
				e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", in) //nolint:errcheck
			}
		})
	}
	wg.Wait()
	checked := 0
	if err := profile.EachLive(e.Ctx, e.Tenant, func(p *profile.Profile) error {
		checked++
		ms, err := e.Services.Segments.Verify(e.Ctx, e.Tenant, p, e.Clock.Now())
		for _, m := range ms {
			t.Error(m)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if checked < 40 {
		t.Fatalf("%d profiles checked", checked)
	}
	t.Logf("%d profiles exact", checked)
}
