package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/tools/load"
)

// The harness end to end at a small size: it builds the dataset through a
// real server process (every event stored once, every person a profile,
// 50 segments), reuses it on a second run, and every scenario yields its
// rows without failing. The figures themselves are the full-size run's
// business (BENCHMARKS.md); here only that each was measured.
func TestHarnessSmall(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	o := options{duration: 2 * time.Second, probes: 10,
		data: dataset{Profiles: 300, Events: 1500, Seed: 7, Anchor: time.Now().UTC().Truncate(24 * time.Hour), Format: datasetFormat}}
	h, err := newHarness(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.run(ctx); err != nil {
		t.Fatalf("%v\n%s", err, h.table())
	}
	table := h.table()
	for _, r := range h.results {
		if r.ok == "FAILED" {
			t.Errorf("scenario %s failed: %s", r.area, r.figure)
		}
	}
	for _, want := range []string{"dataset", "createSegment", "segmentPreview", "ad-hoc list", "engine alone", "trackBatch", "track 8 clients", "identify",
		"bytes on disk", "largest collections: rows + indexes", "events ", "exactness", "0 differences", "profile 360", "CPU per request", "ENTERED on the same instance", "second server process", "kill -9", "exactness after the restart", "rollups of every event", "dashboard query", "eventVolume alone"} {
		if !strings.Contains(table, want) {
			t.Errorf("no %q row in\n%s", want, table)
		}
	}

	// The dataset as built: what the seed says, stored once.
	st, err := openStore(ctx, filepath.Join(dir, "dataset"), app.Collections)
	if err != nil {
		t.Fatal(err)
	}
	tn := st.Tenant("bench")
	var events int64
	err = timeline.ScanEvents(ctx, tn, func(string) bool { return true }, func(*timeline.Event) error { events++; return nil })
	if err != nil || events != 1500 {
		t.Errorf("dataset holds %d events, want 1500 (%v)", events, err)
	}
	people, err := profile.Count(ctx, tn)
	if err != nil || people != 300 {
		t.Errorf("dataset holds %d profiles, want 300 (%v)", people, err)
	}
	segs, err := segmentList(ctx, tn)
	if err != nil || segs != 50 {
		t.Errorf("dataset holds %d segments, want 50 (%v)", segs, err)
	}
	st.Close(context.Background())

	// A second harness over the same dir reuses the dataset: no rebuild.
	meta, err := os.Stat(filepath.Join(dir, "dataset.json"))
	if err != nil {
		t.Fatal(err)
	}
	o.only = []string{"raw"}
	h2, err := newHarness(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.run(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := os.Stat(filepath.Join(dir, "dataset.json"))
	if err != nil || !again.ModTime().Equal(meta.ModTime()) {
		t.Errorf("the dataset was rebuilt (%v)", err)
	}
	if h2.opts.data.BuildSeconds != h.opts.data.BuildSeconds {
		t.Errorf("reused dataset reports build %v s, the first run %v s", h2.opts.data.BuildSeconds, h.opts.data.BuildSeconds)
	}
}

// segmentList counts the workspace's segments: one page of up to 500,
// ten times the 50 a dataset holds.
func segmentList(ctx context.Context, tn store.Tenant) (int, error) {
	segs, _, _, err := app.New(time.Now).Segments.List(ctx, tn, 500, "")
	return len(segs), err
}

// A dataset is the same one only with the same size, seed and anchor; its
// events are a function of the seed and their index.
func TestDatasetDeterministic(t *testing.T) {
	anchor := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := dataset{Profiles: 100, Events: 1000, Seed: 3, Anchor: anchor}
	if !d.same(dataset{Profiles: 100, Events: 1000, Seed: 3, Anchor: anchor, BuildSeconds: 9}) {
		t.Fatal("same dataset not recognised")
	}
	for _, o := range []dataset{{Profiles: 101, Events: 1000, Seed: 3, Anchor: anchor}, {Profiles: 100, Events: 1000, Seed: 4, Anchor: anchor},
		{Profiles: 100, Events: 1000, Seed: 3, Anchor: anchor.Add(24 * time.Hour)}, {Profiles: 100, Events: 1000, Seed: 3, Anchor: anchor, Format: datasetFormat + 1}} {
		if d.same(o) {
			t.Errorf("%+v taken for %+v", o, d)
		}
	}
	seen := map[string]bool{}
	for k := range 1000 {
		a, b := d.genEvent(k), d.genEvent(k)
		if a["messageId"] != b["messageId"] || a["occurredAt"] != b["occurredAt"] || a["name"] != b["name"] {
			t.Fatalf("event %d differs between calls", k)
		}
		if seen[a["messageId"].(string)] {
			t.Fatalf("message id %s repeated", a["messageId"])
		}
		seen[a["messageId"].(string)] = true
		at, err := time.Parse(time.RFC3339Nano, a["occurredAt"].(string))
		if err != nil || at.After(anchor) || at.Before(anchor.Add(-180*24*time.Hour)) {
			t.Fatalf("event %d at %v, outside the 180 days before the anchor", k, at)
		}
		person := a["identifiers"].([]any)[0].(map[string]any)["value"].(string)
		if k < d.Profiles && !strings.HasSuffix(person, "-p"+strconv.Itoa(k)) {
			t.Fatalf("event %d is %s's: event k < Profiles must be person k's", k, person)
		}
	}
}

func TestPercentileAndFormat(t *testing.T) {
	// The harness's percentiles are load.Percentile's (nearest rank,
	// tested there); what the rows rely on here: it leaves a slice of
	// measurements as it is, and an operation without a successful call
	// (no OpStats in the report) reads as 0 rather than panicking.
	var l []time.Duration
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	if load.Percentile(l, 50) != 50*time.Millisecond || load.Percentile(l, 99) != 99*time.Millisecond || load.Percentile(nil, 50) != 0 {
		t.Fatalf("p50 %v p99 %v", load.Percentile(l, 50), load.Percentile(l, 99))
	}
	if l[0] != 100*time.Millisecond {
		t.Fatal("Percentile sorted its argument")
	}
	if p := (load.Report{}).Ops["identify"].Percentile(99); p != 0 {
		t.Fatalf("p99 of no calls: %v", p)
	}
	if ms(1500*time.Microsecond) != "1.5 ms" || ms(12*time.Second) != "12.0 s" || mib(3<<20) != "3 MiB" {
		t.Fatal(ms(1500*time.Microsecond), ms(12*time.Second), mib(3<<20))
	}
}

// Each load run of a harness gets its own seed (message ids and new
// people are named by it), reproducibly from the dataset seed.
func TestLoadSeeds(t *testing.T) {
	seeds := func() []uint64 {
		h := &harness{opts: options{data: dataset{Seed: 7, Profiles: 10}}}
		srv := &server{URL: "http://x"}
		var out []uint64
		for range 5 {
			out = append(out, h.loadCfg(srv, 1, 1, load.Mix{Track: 1}, time.Second).Seed)
		}
		return out
	}
	a, b := seeds(), seeds()
	seen := map[uint64]bool{}
	for i, s := range a {
		if seen[s] || s != b[i] {
			t.Fatalf("seeds %v then %v: want distinct and the same each time", a, b)
		}
		seen[s] = true
	}
}

// bgLoad takes the background's rate over the time it ran and marks a
// figure not taken under the stated load.
func TestBackgroundLoad(t *testing.T) {
	rate, ok, note := bgLoad(load.Report{Elapsed: 2 * time.Second, Events: 3900})
	if rate != 1950 || !ok || note != "" {
		t.Fatalf("1950/s: %v %v %q", rate, ok, note)
	}
	rate, ok, note = bgLoad(load.Report{Elapsed: 4 * time.Second, Events: 3900, Errors: map[string]int{"TRANSPORT": 2}})
	if rate != 975 || ok || !strings.Contains(note, "not under the stated load") || !strings.Contains(note, "TRANSPORT") {
		t.Fatalf("975/s: %v %v %q", rate, ok, note)
	}
}
