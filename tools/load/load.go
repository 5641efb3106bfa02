// Package load drives a running Halo over HTTP with a mix of operations —
// track (single or batched), identify, and profile reads with a timeline
// page — from concurrent workers, and reports throughput, latency
// percentiles and errors by code. The command is tools/loadgen.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Mix weights the operations (relative; zero leaves one out).
type Mix struct {
	Track, Identify, Read int
}

// Config is one load run.
type Config struct {
	URL      string        // the GraphQL endpoint, e.g. http://localhost:8080/graphql
	Token    string        // a bearer token with events:write and profiles:read
	Workers  int           // concurrent clients (default 4)
	Duration time.Duration // how long to run (default 10s)
	Batch    int           // events per track call: 1 is track, more is trackBatch (default 1, at most 500)
	People   int           // distinct people the workload touches (default 1000)
	Mix      Mix           // default 80/5/15
	Seed     uint64        // same seed, same sequence of calls per worker
	Client   *http.Client  // default: a client with a 10 s timeout
	// RunID names the people of a run: known person n is "<RunID>-p<n>"
	// (n < People), and message ids start with it. Runs with the same
	// RunID read and write the same people, so a read-only run after a
	// seeding run reads people who exist (default: the start time, a new
	// set of people each run).
	RunID string
	// NewShare is the share (0..1) of tracked events and identifies that
	// come from people never seen before ("<RunID>-n<Seed>..."), the rest
	// from the People known ones (default 0). Message ids and new people
	// include Seed: two runs with one RunID need different Seeds to send
	// different events.
	NewShare float64
	// Rate caps the calls per second of all workers together (0: as fast
	// as the workers go): a steady background load beside a measurement.
	Rate float64
	// Read is the query of a read call, given $id (IdentifierInput!)
	// (default ReadTimeline).
	Read string
	// Acked, when set, is told the messageIds of every track call the
	// server acknowledged (duplicates included): what a crash test then
	// expects to find stored. Workers call it concurrently.
	Acked func(messageIDs []string)
	// Unacked, when set, is told the messageIds of every track call that
	// failed or got no answer: a crash test checks that those the server
	// stored anyway are counted. Workers call it concurrently.
	Unacked func(messageIDs []string)
}

// Reads a run can make.
const (
	// ReadTimeline is a profile with 20 timeline items.
	ReadTimeline = `query($id: IdentifierInput!) { profile(identifier: $id) { id traits eventCount timeline(first: 20) { nodes { name occurredAt } } } }`
	// Read360 is the profile 360 a CRM screen opens: profile, identifiers,
	// traits, 50 timeline items, segments, consent, scores and computed
	// traits.
	Read360 = `query($id: IdentifierInput!) { profile(identifier: $id) { id traits eventCount lastSeenAt
  identifiers { type value }
  timeline(first: 50) { nodes { id kind name occurredAt properties } }
  segments { segment { id name } enteredAt }
  consent { purpose channel status }
  scores { engagement churnRisk lifetimeValue rfm { label } }
  computed } }`
)

// Report is what a run measured.
type Report struct {
	Elapsed time.Duration
	Ops     map[string]*OpStats // by operation: track, identify, read
	Events  int                 // events accepted (tracked, not duplicate)
	Errors  map[string]int      // by extensions.code (or HTTP status)
}

// OpStats is one operation's figures.
type OpStats struct {
	Count     int
	latencies []time.Duration
}

// Percentile returns the p-th percentile latency (0 < p <= 100), 0 when
// the operation has no successful call. It is nil-safe because a report
// has no OpStats for an operation that never succeeded, and callers index
// Report.Ops by name.
func (s *OpStats) Percentile(p float64) time.Duration {
	if s == nil {
		return 0
	}
	return Percentile(s.latencies, p)
}

// Percentile returns the p-th percentile (0 < p <= 100) of l by nearest
// rank: the value at index ceil(p/100·n)-1 of l sorted, so it is always
// one of the measured values (p100 is the maximum). It returns 0 for an
// empty l and leaves l as it is (it sorts a copy). tools/bench uses it
// too, so every figure in a table means the same thing.
func Percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	// p*n/100 rather than p/100*n: with integer p and n the product is
	// exact, so 99*100/100 is 99, not 99.00000000000001 (which ceil would
	// lift to 100). The epsilon covers fractional p such as 99.9.
	rank := int(math.Ceil(p*float64(len(s))/100 - 1e-9))
	return s[min(max(rank-1, 0), len(s)-1)]
}

// String is a human summary.
func (r Report) String() string {
	var b strings.Builder
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(&b, "elapsed %.1fs, events accepted %d (%.0f events/s)\n", secs, r.Events, float64(r.Events)/secs)
	names := make([]string, 0, len(r.Ops))
	for n := range r.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := r.Ops[n]
		fmt.Fprintf(&b, "%-8s %7d calls %8.1f/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms\n", n, s.Count, float64(s.Count)/secs,
			ms(s.Percentile(50)), ms(s.Percentile(95)), ms(s.Percentile(99)))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "errors: %v\n", r.Errors)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (c *Config) defaults() error {
	if c.URL == "" || c.Token == "" {
		return errors.New("load: URL and Token are required")
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Batch > 500 {
		return errors.New("load: Batch is at most 500 (trackBatch's limit)")
	}
	if c.People <= 0 {
		c.People = 1000
	}
	if c.Mix == (Mix{}) {
		c.Mix = Mix{Track: 80, Identify: 5, Read: 15}
	}
	if c.Mix.Track < 0 || c.Mix.Identify < 0 || c.Mix.Read < 0 {
		return errors.New("load: Mix weights must not be negative")
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("load%d", time.Now().UnixNano())
	}
	if c.NewShare < 0 || c.NewShare > 1 {
		return errors.New("load: NewShare is a share between 0 and 1")
	}
	if c.Rate < 0 {
		return errors.New("load: Rate must not be negative")
	}
	if c.Read == "" {
		c.Read = ReadTimeline
	}
	return nil
}

// Run drives the load until cfg.Duration has passed or ctx ends, and
// reports. Failed calls are counted by code, not returned: a run under
// rate limits or errors still reports what it saw.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	// Calls started before the end finish (under the caller's ctx): the
	// report then counts exactly what the server did.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu  sync.Mutex
		rep = Report{Ops: map[string]*OpStats{}, Errors: map[string]int{}}
		wg  sync.WaitGroup
	)
	record := func(op string, d time.Duration, events int, code string) {
		mu.Lock()
		defer mu.Unlock()
		if code != "" {
			rep.Errors[code]++
			return
		}
		s := rep.Ops[op]
		if s == nil {
			s = &OpStats{}
			rep.Ops[op] = s
		}
		s.Count++
		s.latencies = append(s.latencies, d)
		rep.Events += events
	}
	var limit *rate.Limiter
	if cfg.Rate > 0 {
		limit = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/50)))
	}
	start := time.Now()
	for w := range cfg.Workers {
		wg.Go(func() {
			wk := worker{cfg: &cfg, id: w, r: rand.New(rand.NewPCG(cfg.Seed, uint64(w)))}
			for ctx.Err() == nil {
				if limit != nil && limit.Wait(ctx) != nil {
					return
				}
				op, body, ids := wk.next()
				t0 := time.Now()
				events, code := wk.call(parent, body)
				if parent.Err() != nil && code != "" {
					return // interrupted, not a failure
				}
				record(op, time.Since(t0), events, code)
				switch {
				case len(ids) == 0:
				case code == "" && cfg.Acked != nil:
					cfg.Acked(ids)
				case code != "" && cfg.Unacked != nil:
					cfg.Unacked(ids)
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep, nil
}

type worker struct {
	cfg *Config
	id  int
	r   *rand.Rand
	n   int
	// fresh counts the new people this worker made up.
	fresh int
}

// eventNames are the names of tracked events, drawn uniformly from this
// list: repeating a name weights it (page_viewed 3 in 7, product_viewed 2
// in 7, added_to_cart and order_completed 1 in 7 each).
var eventNames = []string{"page_viewed", "page_viewed", "page_viewed", "product_viewed", "product_viewed", "added_to_cart", "order_completed"}

// person is a known person (People of them), or with NewShare a person
// never seen before, as an identifier.
func (w *worker) person(allowNew bool) map[string]any {
	if allowNew && w.cfg.NewShare > 0 && w.r.Float64() < w.cfg.NewShare {
		w.fresh++
		return map[string]any{"type": "anonymousId", "value": fmt.Sprintf("%s-n%d.%d-%d", w.cfg.RunID, w.cfg.Seed, w.id, w.fresh)}
	}
	return map[string]any{"type": "anonymousId", "value": KnownPerson(w.cfg.RunID, w.r.IntN(w.cfg.People))}
}

// KnownPerson is the anonymousId of known person n of a run.
func KnownPerson(runID string, n int) string { return fmt.Sprintf("%s-p%d", runID, n) }

// next picks an operation and builds its request body.
func (w *worker) next() (op string, body map[string]any, messageIDs []string) {
	m := w.cfg.Mix
	x := w.r.IntN(m.Track + m.Identify + m.Read)
	switch {
	case x < m.Track:
		in := make([]map[string]any, w.cfg.Batch)
		ids := make([]string, len(in))
		for i := range in {
			w.n++
			ids[i] = fmt.Sprintf("%s-s%d-w%d-%d", w.cfg.RunID, w.cfg.Seed, w.id, w.n)
			in[i] = map[string]any{
				"messageId":   ids[i],
				"identifiers": []any{w.person(true)},
				"name":        eventNames[w.r.IntN(len(eventNames))],
				"properties":  map[string]any{"amount": w.r.IntN(200), "sku": fmt.Sprintf("sku-%d", w.r.IntN(50))},
			}
		}
		if w.cfg.Batch == 1 {
			return "track", map[string]any{"query": `mutation($in: TrackInput!) { track(input: $in) { duplicate } }`, "variables": map[string]any{"in": in[0]}}, ids
		}
		return "track", map[string]any{"query": `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, "variables": map[string]any{"in": in}}, ids
	case x < m.Track+m.Identify:
		return "identify", map[string]any{
			"query":     `mutation($in: IdentifyInput!) { identify(input: $in) { created profile { id } } }`,
			"variables": map[string]any{"in": map[string]any{"identifiers": []any{w.person(true)}, "traits": map[string]any{"plan": []string{"free", "pro", "team"}[w.r.IntN(3)]}}},
		}, nil
	default:
		return "read", map[string]any{
			"query":     w.cfg.Read,
			"variables": map[string]any{"id": w.person(false)},
		}, nil
	}
}

// call sends body and returns the events it stored (track) or the error
// code ("" when it succeeded).
func (w *worker) call(ctx context.Context, body map[string]any) (int, string) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "ENCODE"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(b))
	if err != nil {
		return 0, "REQUEST"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return 0, "TRANSPORT"
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, "TRANSPORT"
	}
	var out struct {
		Data struct {
			Track      *struct{ Duplicate bool }
			TrackBatch *struct{ Accepted int }
		}
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, fmt.Sprintf("HTTP_%d", resp.StatusCode)
	}
	if len(out.Errors) > 0 {
		if c := out.Errors[0].Extensions.Code; c != "" {
			return 0, c
		}
		return 0, fmt.Sprintf("HTTP_%d", resp.StatusCode)
	}
	switch {
	case out.Data.Track != nil && !out.Data.Track.Duplicate:
		return 1, ""
	case out.Data.TrackBatch != nil:
		return out.Data.TrackBatch.Accepted, ""
	}
	return 0, ""
}
