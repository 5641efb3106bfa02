package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/tools/load"
)

// dataset is what the harness builds once and copies for each run: P
// people (anonymousId "<RunID>-p<n>", the ids tools/loadgen -run-id uses),
// E events over the 180 days before Anchor, 30% of the people identified
// with an email and traits, 20 computed traits and 50 segments (45
// dynamic, 5 static lists) maintained on ingest.
// Everything derives from Seed and Anchor: message ids too, so building
// twice stores everything once.
type dataset struct {
	Profiles int       `json:"profiles"`
	Events   int       `json:"events"`
	Seed     uint64    `json:"seed"`
	Anchor   time.Time `json:"anchor"`
	// What the build measured.
	BuildSeconds float64 `json:"buildSeconds"`
	Identified   int     `json:"identified"`
	// Format is datasetFormat when built: a dataset from an older harness
	// is built again (2: backfills and builds settled before the snapshot;
	// 3: built by a server that prunes its outbox to 15 minutes, so that
	// no scenario pays for pruning a day of the dataset's changes).
	Format int `json:"format"`
	// OutboxCleared: the changes the build left in the outbox were
	// deleted (clearOutbox).
	OutboxCleared bool `json:"outboxCleared,omitempty"`
}

// datasetFormat is the current dataset format (see dataset.Format).
const datasetFormat = 3

func (d dataset) runID() string { return fmt.Sprintf("bench%d", d.Seed) }

// same reports whether o is the dataset d describes (what was built).
func (d dataset) same(o dataset) bool {
	return d.Profiles == o.Profiles && d.Events == o.Events && d.Seed == o.Seed && d.Anchor.Equal(o.Anchor) && d.Format == o.Format
}

// eventMix is the dataset's event names with their weights (out of 100).
var eventMix = []struct {
	name   string
	weight int
}{{"page_viewed", 50}, {"product_viewed", 25}, {"added_to_cart", 12}, {"order_completed", 8}, {"signup", 5}}

var (
	skus     = []string{"SKU-1001", "SKU-1002", "SKU-2001", "SKU-3001", "SKU-4001", "SKU-5001", "SKU-6001", "SKU-7001"}
	paths    = []string{"/", "/pricing", "/blog", "/products", "/cart", "/help", "/account", "/checkout"}
	channels = []string{"web", "web", "web", "ios", "android"}
	plans    = []string{"free", "starter", "pro", "enterprise"}
	country  = []string{"FR", "DE", "US", "JP", "BR", "GB"}
)

// genEvent is event k of the dataset (deterministic in seed and k).
// Event k < Profiles is person k's, so every person has at least one
// event; the rest fall on random people. That event is not the person's
// earliest (occurredAt is random in the window) nor stored first (build
// sends batches from concurrent workers): only the mapping is fixed.
func (d dataset) genEvent(k int) map[string]any {
	r := rand.New(rand.NewPCG(d.Seed, uint64(k)))
	person := k
	if k >= d.Profiles {
		person = r.IntN(d.Profiles)
	}
	x, name := r.IntN(100), ""
	for _, m := range eventMix {
		if x < m.weight {
			name = m.name
			break
		}
		x -= m.weight
	}
	props := map[string]any{"path": paths[r.IntN(len(paths))]}
	switch name {
	case "product_viewed", "added_to_cart":
		props = map[string]any{"sku": skus[r.IntN(len(skus))], "price": float64(5 + r.IntN(200))}
	case "order_completed":
		props = map[string]any{"sku": skus[r.IntN(len(skus))], "revenue": float64(10+r.IntN(500)) + 0.5, "currency": "USD"}
	}
	at := d.Anchor.Add(-time.Duration(r.Int64N(int64(180 * 24 * time.Hour))))
	return map[string]any{
		"messageId":   fmt.Sprintf("%s-e%d", d.runID(), k),
		"identifiers": []any{map[string]any{"type": "anonymousId", "value": load.KnownPerson(d.runID(), person)}},
		"name":        name, "properties": props, "occurredAt": at.Format(time.RFC3339Nano),
		"channel": channels[r.IntN(len(channels))],
	}
}

// computedTraits are the 20 definitions the dataset maintains.
func computedTraits() []map[string]any {
	days := func(n int) map[string]any { return map[string]any{"last": map[string]any{"amount": n, "unit": "DAYS"}} }
	defs := []map[string]any{
		{"key": "views_30d", "kind": "COUNT", "event": "page_viewed", "window": days(30)},
		{"key": "views_7d", "kind": "COUNT", "event": "page_viewed", "window": days(7)},
		{"key": "product_views_30d", "kind": "COUNT", "event": "product_viewed", "window": days(30)},
		{"key": "carts_30d", "kind": "COUNT", "event": "added_to_cart", "window": days(30)},
		{"key": "orders_90d", "kind": "COUNT", "event": "order_completed", "window": days(90)},
		{"key": "revenue_total", "kind": "SUM", "event": "order_completed", "property": "revenue"},
		{"key": "revenue_90d", "kind": "SUM", "event": "order_completed", "property": "revenue", "window": days(90)},
		{"key": "avg_order", "kind": "AVG", "event": "order_completed", "property": "revenue"},
		{"key": "min_price_viewed", "kind": "MIN", "event": "product_viewed", "property": "price"},
		{"key": "max_price_viewed", "kind": "MAX", "event": "product_viewed", "property": "price"},
		{"key": "first_sku", "kind": "FIRST", "event": "product_viewed", "property": "sku"},
		{"key": "last_sku", "kind": "LAST", "event": "product_viewed", "property": "sku"},
		{"key": "top_path", "kind": "MOST_FREQUENT", "event": "page_viewed", "property": "path"},
		{"key": "skus_bought", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "sku"},
		{"key": "cart_value_30d", "kind": "SUM", "event": "added_to_cart", "property": "price", "window": days(30)},
		{"key": "big_orders", "kind": "COUNT", "event": "order_completed", "where": []any{map[string]any{"key": "revenue", "op": "GT", "value": 300}}},
		{"key": "pricing_views", "kind": "COUNT", "event": "page_viewed", "where": []any{map[string]any{"key": "path", "op": "EQ", "value": "/pricing"}}},
		{"key": "signups", "kind": "COUNT", "event": "signup"},
		{"key": "last_order_sku", "kind": "LAST", "event": "order_completed", "property": "sku"},
		{"key": "max_order", "kind": "MAX", "event": "order_completed", "property": "revenue", "window": days(90)},
	}
	return defs
}

// build loads the dataset into the server behind c with workers
// concurrent trackBatch clients, then identifies 30% of the people.
func (d *dataset) build(ctx context.Context, c *client, workers int, logf func(string, ...any)) error {
	t0 := time.Now()
	for _, def := range computedTraits() {
		if err := c.do(ctx, `mutation($in: DefineComputedTraitInput!) { defineComputedTrait(input: $in) { key } }`, map[string]any{"in": def}, nil); err != nil {
			return fmt.Errorf("define computed trait %s: %w", def["key"], err)
		}
	}
	if _, err := createSegments(ctx, *d, c, false); err != nil {
		return err
	}
	const batch = 100
	batches := (d.Events + batch - 1) / batch
	next := atomic.Int64{}
	done := atomic.Int64{}
	var (
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	for range workers {
		wg.Go(func() {
			for {
				b := int(next.Add(1) - 1)
				if b >= batches || ctx.Err() != nil {
					return
				}
				in := make([]any, 0, batch)
				for k := b * batch; k < min((b+1)*batch, d.Events); k++ {
					in = append(in, d.genEvent(k))
				}
				var out struct{ TrackBatch struct{ Accepted int } }
				if err := c.do(ctx, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": in}, &out); err != nil {
					fail(fmt.Errorf("trackBatch %d: %w", b, err))
					return
				}
				if n := done.Add(int64(len(in))); n/100000 != (n-int64(len(in)))/100000 {
					logf("dataset: %d events in %s (%.0f/s)", n, time.Since(t0).Round(time.Second), float64(n)/time.Since(t0).Seconds())
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Identify 30% of the people: an email joins their anonymous id, with
	// traits segments read.
	next.Store(0)
	identified := atomic.Int64{}
	for range workers {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= d.Profiles || ctx.Err() != nil {
					return
				}
				r := rand.New(rand.NewPCG(d.Seed^0x1d, uint64(n)))
				if r.IntN(10) >= 3 {
					continue
				}
				in := map[string]any{
					"identifiers": []any{
						map[string]any{"type": "anonymousId", "value": load.KnownPerson(d.runID(), n)},
						map[string]any{"type": "email", "value": fmt.Sprintf("p%d.%d@example.com", n, d.Seed)},
					},
					"traits": map[string]any{"plan": plans[r.IntN(len(plans))], "address": map[string]any{"country": country[r.IntN(len(country))]},
						"newsletter": r.IntN(2) == 0},
				}
				if err := c.do(ctx, `mutation($in: IdentifyInput!) { identify(input: $in) { created } }`, map[string]any{"in": in}, nil); err != nil {
					fail(fmt.Errorf("identify %d: %w", n, err))
					return
				}
				identified.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	d.Identified = int(identified.Load())
	if _, err := createSegments(ctx, *d, c, true); err != nil {
		return err
	}
	d.BuildSeconds = time.Since(t0).Seconds()
	return nil
}

// prepareDataset returns the dataset want describes, built into
// <dir>/dataset and described (with what its build measured) by
// <dir>/dataset.json. When dataset.json matches want's size, seed and
// anchor the data there is reused as it is; otherwise both are removed
// and the dataset is built afresh through a server process, and
// dataset.json is written only once the build has succeeded.
func prepareDataset(ctx context.Context, h *harness, want dataset) (dataset, error) {
	dir := filepath.Join(h.dir, "dataset")
	meta := filepath.Join(h.dir, "dataset.json")
	if raw, err := os.ReadFile(meta); err == nil {
		var have dataset
		if json.Unmarshal(raw, &have) == nil && have.same(want) {
			h.logf("dataset: reusing %s (%d profiles, %d events, built in %.0f s)", dir, have.Profiles, have.Events, have.BuildSeconds)
			if !have.OutboxCleared {
				return have, clearOutbox(ctx, h, dir, meta, &have)
			}
			return have, nil
		}
	}
	_ = os.Remove(meta)
	if err := os.RemoveAll(dir); err != nil {
		return want, err
	}
	srv, err := h.start(ctx, dir, "build")
	if err != nil {
		return want, err
	}
	h.logf("dataset: building %d profiles and %d events (seed %d)", want.Profiles, want.Events, want.Seed)
	err = want.build(ctx, h.client(srv), 4, h.logf)
	if err == nil {
		var waited time.Duration
		waited, err = settle(ctx, h.client(srv), nil, 60*time.Minute, h.logf)
		h.logf("dataset: backfills and builds settled in %s", waited.Round(time.Second))
	}
	if stopErr := srv.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return want, fmt.Errorf("build dataset: %w", err)
	}
	raw, _ := json.MarshalIndent(want, "", "  ")
	if err := os.WriteFile(meta, raw, 0o644); err != nil {
		return want, err
	}
	h.logf("dataset: built in %.0f s", want.BuildSeconds)
	return want, clearOutbox(ctx, h, dir, meta, &want)
}

// clearOutbox deletes the changes the dataset's build left in the outbox
// and (re)writes meta, marking d. By the time a scenario runs they are
// older than the outbox retention, and the first server of every
// scenario pruned them, two million of them, at half of its writer's
// time for minutes: a backlog no steady server has, which made the
// ingest figures swing by a third between runs.
func clearOutbox(ctx context.Context, h *harness, dir, meta string, d *dataset) error {
	st, err := openStore(ctx, dir, app.Collections)
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	// Everything older than an hour from now: the whole outbox.
	total, err := realtime.Prune(ctx, st.Tenant(benchWorkspace), time.Now().Add(time.Hour), 0)
	if err != nil {
		return fmt.Errorf("clear the dataset's outbox: %w", err)
	}
	h.logf("dataset: cleared the build's outbox (%d documents)", total)
	d.OutboxCleared = true
	raw, _ := json.MarshalIndent(d, "", "  ")
	return os.WriteFile(meta, raw, 0o644)
}

// copyDir copies the files of src into a fresh dst (a run works on a copy,
// so every run starts from the same data).
func copyDir(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return errors.New("copy: not a regular file: " + path)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
