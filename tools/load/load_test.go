package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A fake endpoint checks what the workers send: the token, one operation
// per body, batches of the configured size, message ids never repeated;
// it answers like Halo, with a RATE_LIMITED error now and then.
func TestRunSendsTheMix(t *testing.T) {
	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		refused  = map[string]bool{} // messageIds of track calls answered 429
		kinds    = map[string]int{}
		repeated int
		calls    int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		var body struct {
			Query     string
			Variables map[string]json.RawMessage
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		w.Header().Set("Content-Type", "application/json")
		if calls%50 == 0 {
			if strings.Contains(body.Query, "trackBatch") {
				var in []struct{ MessageID string }
				_ = json.Unmarshal(body.Variables["in"], &in)
				for _, e := range in {
					refused[e.MessageID] = true
				}
			}
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfter":1}}]}`))
			return
		}
		switch {
		case strings.Contains(body.Query, "trackBatch"):
			var in []struct{ MessageID string }
			_ = json.Unmarshal(body.Variables["in"], &in)
			if len(in) != 5 {
				t.Errorf("batch of %d", len(in))
			}
			for _, e := range in {
				if seen[e.MessageID] {
					repeated++
				}
				seen[e.MessageID] = true
			}
			kinds["track"]++
			_, _ = w.Write([]byte(`{"data":{"trackBatch":{"accepted":5}}}`))
		case strings.Contains(body.Query, "identify"):
			kinds["identify"]++
			_, _ = w.Write([]byte(`{"data":{"identify":{"created":false,"profile":{"id":"p"}}}}`))
		case strings.Contains(body.Query, "profile(identifier"):
			kinds["read"]++
			_, _ = w.Write([]byte(`{"data":{"profile":null}}`))
		default:
			t.Errorf("unexpected query %q", body.Query)
		}
	}))
	defer srv.Close()
	var (
		ackMu   sync.Mutex
		acked   = map[string]bool{}
		unacked = map[string]bool{}
	)
	rep, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Workers: 3, Duration: 300 * time.Millisecond, Batch: 5, People: 20, Mix: Mix{Track: 6, Identify: 2, Read: 2}, RunID: "t",
		Acked: func(ids []string) {
			ackMu.Lock()
			defer ackMu.Unlock()
			for _, id := range ids {
				acked[id] = true
			}
		},
		Unacked: func(ids []string) {
			ackMu.Lock()
			defer ackMu.Unlock()
			for _, id := range ids {
				unacked[id] = true
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Acked hears exactly the message ids of the track calls answered
	// without an error (the rate-limited ones are not).
	ackMu.Lock()
	if len(acked) != len(seen) || len(acked) == 0 {
		t.Errorf("acked %d message ids, the server accepted %d", len(acked), len(seen))
	}
	for id := range seen {
		if !acked[id] {
			t.Errorf("accepted %s not acked", id)
			break
		}
	}
	// Unacked hears exactly those of the refused ones.
	if len(unacked) != len(refused) {
		t.Errorf("unacked %d message ids, the server refused %d", len(unacked), len(refused))
	}
	for id := range refused {
		if !unacked[id] {
			t.Errorf("refused %s not told as unacked", id)
			break
		}
	}
	ackMu.Unlock()
	if repeated > 0 || kinds["track"] == 0 || kinds["identify"] == 0 || kinds["read"] == 0 {
		t.Fatalf("kinds %v, repeated message ids %d", kinds, repeated)
	}
	if rep.Events != 5*kinds["track"] || rep.Ops["track"].Count != kinds["track"] || rep.Ops["read"].Count != kinds["read"] {
		t.Fatalf("report %+v vs server %v", rep, kinds)
	}
	if rep.Errors["RATE_LIMITED"] == 0 || rep.Ops["track"].Percentile(99) <= 0 {
		t.Fatalf("errors %v", rep.Errors)
	}
	if s := rep.String(); !strings.Contains(s, "events/s") || !strings.Contains(s, "RATE_LIMITED") {
		t.Fatalf("summary %q", s)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no url":       {Token: "t"},
		"no token":     {URL: "http://x"},
		"batch of 501": {URL: "http://x", Token: "t", Batch: 501},
		"negative mix": {URL: "http://x", Token: "t", Mix: Mix{Track: -1, Read: 2}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPercentile(t *testing.T) {
	s := &OpStats{}
	for i := 1; i <= 100; i++ {
		s.latencies = append(s.latencies, time.Duration(i)*time.Millisecond)
	}
	if s.Percentile(50) != 50*time.Millisecond || s.Percentile(99) != 99*time.Millisecond || s.Percentile(100) != 100*time.Millisecond {
		t.Fatalf("p50 %s p99 %s p100 %s", s.Percentile(50), s.Percentile(99), s.Percentile(100))
	}
	if (&OpStats{}).Percentile(50) != 0 {
		t.Fatal("empty")
	}
	// A report has no OpStats for an operation that never succeeded.
	var none *OpStats
	if none.Percentile(99) != 0 || (Report{}).Ops["track"].Percentile(99) != 0 {
		t.Fatal("nil OpStats")
	}
	// Nearest rank: index ceil(p/100·n)-1 of the sorted values, whatever
	// the order given, which Percentile leaves as it is.
	l := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {94, 10}, {90, 9}, {91, 10}, {99, 10}, {100, 10}, {1, 1}, {10, 1}, {11, 2}, {99.9, 10}} {
		if got := Percentile(l, c.p); got != c.want {
			t.Errorf("p%v of 1..10 = %d, want %d", c.p, got, c.want)
		}
	}
	if l[0] != 10 || Percentile(nil, 50) != 0 {
		t.Fatal("Percentile sorted its argument, or took nil for a value")
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i + 1)
	}
	if got := Percentile(thousand, 99.9); got != 999 {
		t.Fatalf("p99.9 of 1..1000 = %d, want 999", got)
	}
}

// The people a run touches: with the same RunID two runs read and write
// the same known people (what makes a read-only run after a seeding run
// measure something); NewShare sends about that share of tracked events
// from people never seen, each new id used once per worker.
func TestRunIDAndNewShare(t *testing.T) {
	var (
		mu     sync.Mutex
		people = map[string]int{}
		reads  = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Query     string
			Variables struct {
				In []struct{ Identifiers []struct{ Value string } }
				ID struct{ Value string }
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(body.Query, "trackBatch") {
			for _, e := range body.Variables.In {
				people[e.Identifiers[0].Value]++
			}
			_, _ = w.Write([]byte(`{"data":{"trackBatch":{"accepted":4}}}`))
			return
		}
		reads[body.Variables.ID.Value]++
		if !strings.Contains(body.Query, "timeline(first: 50)") {
			t.Errorf("read query %q is not the 360", body.Query)
		}
		_, _ = w.Write([]byte(`{"data":{"profile":null}}`))
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Token: "tok", Workers: 2, Duration: 300 * time.Millisecond, Batch: 4, People: 10,
		Mix: Mix{Track: 3, Read: 1}, RunID: "seeded", NewShare: 0.5, Read: Read360}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	known, fresh := 0, 0
	for id, n := range people {
		switch {
		case strings.HasPrefix(id, "seeded-p"):
			known += n
		case strings.HasPrefix(id, "seeded-n"):
			fresh += n
			if n != 1 {
				t.Errorf("new person %s used %d times", id, n)
			}
		default:
			t.Errorf("identifier %q outside the run", id)
		}
	}
	if share := float64(fresh) / float64(known+fresh); known+fresh < 40 || share < 0.35 || share > 0.65 {
		t.Fatalf("%d known and %d new events: share %.2f, want about 0.5", known, fresh, share)
	}
	for id := range reads {
		if !strings.HasPrefix(id, "seeded-p") {
			t.Errorf("read of %q: reads must hit known people", id)
		}
	}
	if len(reads) == 0 {
		t.Fatal("no reads")
	}
	if KnownPerson("seeded", 3) != "seeded-p3" {
		t.Fatal(KnownPerson("seeded", 3))
	}
	if _, err := Run(context.Background(), Config{URL: "http://x", Token: "t", NewShare: 1.5}); err == nil {
		t.Fatal("NewShare 1.5 accepted")
	}
}

// Rate paces all workers together: a background load of a known size.
func TestRate(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"track":{"duplicate":false}}}`))
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Token: "t", Workers: 4, Duration: time.Second, Rate: 100, Mix: Mix{Track: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// The rate over the run's measured elapsed time, not a count over the
	// nominal second: on a loaded machine the run may take longer, or its
	// workers start late, and an absolute bound on the count flakes. The
	// band is wide (the burst of 2 alone adds 2/s); what it rules out is
	// the thousands per second four unpaced workers send to a local
	// server, and a limiter that throttles far below its Rate.
	n := calls.Load()
	r := float64(n) / rep.Elapsed.Seconds()
	if r < 50 || r > 120 || rep.Events != int(n) {
		t.Fatalf("%d calls in %s (%.0f/s, report %d events) at Rate 100", n, rep.Elapsed, r, rep.Events)
	}
}
