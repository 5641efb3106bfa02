package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// rawEvents is the harness's own copy of the events collection: the same
// indexes as timeline's, in a store of its own.
const rawEvents = "raw_events"

// runRaw measures the engine alone: the dataset's events as stored event
// documents (same fields, same indexes), inserted into a fresh embedded
// store in batches of 100 from 4 goroutines. Halo's ingest rate divided by
// this is the share of the engine's speed the write path keeps.
func runRaw(ctx context.Context, h *harness) error {
	dir, err := os.MkdirTemp(h.dir, "raw")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := openStore(ctx, dir, []store.CollectionSpec{{Name: rawEvents, Indexes: timeline.Collections[0].Indexes}})
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	events := st.Tenant(benchWorkspace).C(rawEvents)
	d := h.opts.data
	n := min(d.Events, 200_000)
	docs := make([]any, n)
	var size int64
	now := time.Now().UTC()
	for k := range n {
		in := d.genEvent(k)
		ids := in["identifiers"].([]any)[0].(map[string]any)
		at, _ := time.Parse(time.RFC3339Nano, in["occurredAt"].(string))
		ev := timeline.Event{
			ID: store.NewID(), WorkspaceID: benchWorkspace, ProfileID: store.NewID(), Kind: "EVENT", Name: in["name"].(string),
			MessageID:   in["messageId"].(string),
			Identifiers: []identity.Identifier{{Type: ids["type"].(string), Value: ids["value"].(string)}},
			Properties:  in["properties"].(map[string]any), Channel: in["channel"].(string), OccurredAt: at, ReceivedAt: now,
		}
		ev.OriginProfileID = ev.ProfileID
		raw, err := bson.Marshal(ev)
		if err != nil {
			return err
		}
		size += int64(len(raw))
		docs[k] = ev
	}
	h.eventDocSize = float64(size) / float64(n)
	// The first failure is the one to report, and it stops the other
	// workers (through ctx) rather than letting them insert the rest.
	// sync.Once records it: an atomic.Value panics when a second Store
	// holds an error of another concrete type, and keeps the last error,
	// not the first.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		failOnce sync.Once
		firstErr error
	)
	fail := func(err error) { failOnce.Do(func() { firstErr = err; cancel() }) }
	t0 := time.Now()
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(100) - 100)
				if i >= n {
					return
				}
				errs, err := events.InsertMany(ctx, docs[i:min(i+100, n)])
				if err == nil {
					// The batch's first failed document is enough to
					// report (a join of up to 100 would swamp the table).
					if k := slices.IndexFunc(errs, func(e error) bool { return e != nil }); k >= 0 {
						err = errs[k]
					}
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("raw insert: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err // interrupted: not all n were inserted, no rate to report
	}
	h.rawRate = float64(n) / time.Since(t0).Seconds()
	h.add(result{area: "raw", what: fmt.Sprintf("engine alone: %d event documents (%.0f B each), batches of 100, 4 goroutines", n, h.eventDocSize),
		figure: fmt.Sprintf("%.0f events/s", h.rawRate)})
	return nil
}
