package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/halo-cdp/halo/tools/load"
)

// loadCfg is a load run against srv over the dataset's people, with a
// seed of its own (loadSeed).
func (h *harness) loadCfg(srv *server, workers, batch int, mix load.Mix, d time.Duration) load.Config {
	return load.Config{URL: srv.URL + "/graphql", Token: h.token, Workers: workers, Batch: batch, Mix: mix, Duration: d,
		People: h.opts.data.Profiles, RunID: h.opts.data.runID(), NewShare: 0.5, Seed: h.loadSeed(), Read: load.Read360}
}

// loadSeed is the Seed of the harness's next load run. Every run shares
// the dataset's RunID, and message ids and new people are named by RunID
// and Seed: two runs on one server with one seed would send the same
// message ids again (stored as duplicates, not as events) and the same
// "new" people. So each run gets a distinct seed, seed×1000 + a counter:
// distinct within the harness whatever the seed, and reproducible from
// -seed (and -only), readable in the server's logs.
func (h *harness) loadSeed() uint64 {
	h.loads++
	return h.opts.data.Seed*1000 + uint64(h.loads)
}

// background is a load run going on beside a measurement.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
	rep    load.Report
	err    error
}

// startBackground starts cfg in a goroutine; it runs until cfg.Duration
// has passed or stop is called.
func startBackground(ctx context.Context, cfg load.Config) *background {
	ctx, cancel := context.WithCancel(ctx)
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.rep, b.err = load.Run(ctx, cfg)
	}()
	return b
}

// wait returns the run's report once it has ended by itself.
func (b *background) wait() (load.Report, error) {
	<-b.done
	b.cancel()
	if b.err != nil {
		return b.rep, fmt.Errorf("background load: %w", b.err)
	}
	return b.rep, nil
}

// stop ends the run now and returns its report: the figures up to the
// stop, with Elapsed the time it actually ran.
func (b *background) stop() (load.Report, error) {
	b.cancel()
	return b.wait()
}

// bgTarget is the rate of the background ingest some scenarios measure
// beside, and bgFloor the least it must reach for a figure to count as
// measured under that load (the limiter's pacing and start-up cost a
// little).
const (
	bgTarget = 2000
	bgFloor  = 1900
)

// bgLoad describes a background run for a row: its rate over the time it
// actually ran, whether it reached bgFloor, and a note for the figure
// when it did not or when calls failed.
func bgLoad(rep load.Report) (rate float64, ok bool, note string) {
	if s := rep.Elapsed.Seconds(); s > 0 {
		rate = float64(rep.Events) / s
	}
	ok = rate >= bgFloor
	if !ok {
		note = fmt.Sprintf(" [not under the stated load: background ingest reached %.0f events/s of %d]", rate, bgTarget)
	}
	if len(rep.Errors) > 0 {
		note += fmt.Sprintf(" [background errors %v]", rep.Errors)
	}
	return rate, ok, note
}

// runIngest measures trackBatch, single track and identify, half from
// new people and half from the dataset's, with its 50 segments and 20
// computed traits live; then the bytes on disk per stored event.
func runIngest(ctx context.Context, h *harness) error {
	dir, err := h.fresh()
	if err != nil {
		return err
	}
	srv, err := h.start(ctx, dir, "ingest")
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	d := h.opts.duration
	events := 0
	rep, err := h.profiled(srv, "trackBatch", d, func() (load.Report, error) {
		return load.Run(ctx, h.loadCfg(srv, 4, 100, load.Mix{Track: 1}, d))
	})
	if err != nil {
		return err
	}
	rate := float64(rep.Events) / rep.Elapsed.Seconds()
	events += rep.Events
	h.ingestRate = rate
	h.add(result{area: "ingest", what: fmt.Sprintf("trackBatch 4 clients × 100, half new people, %s: events/s (p99 per batch)", d), target: "≥ 5,000/s",
		figure: fmt.Sprintf("%.0f (%s)%s", rate, ms(rep.Ops["track"].Percentile(99)), errs(rep)), ok: verdict(rate >= 5000 && len(rep.Errors) == 0)})
	if h.rawRate > 0 {
		r := rate / h.rawRate
		h.add(result{area: "ingest", what: "trackBatch rate ÷ the engine's raw insert rate", target: "≥ 0.15 (aim)",
			figure: fmt.Sprintf("%.3f", r), ok: verdict(r >= 0.15)})
	}
	rep, err = h.profiled(srv, "track", d/2, func() (load.Report, error) {
		return load.Run(ctx, h.loadCfg(srv, 8, 1, load.Mix{Track: 1}, d/2))
	})
	if err != nil {
		return err
	}
	rate = float64(rep.Events) / rep.Elapsed.Seconds()
	events += rep.Events
	p99 := rep.Ops["track"].Percentile(99)
	h.add(result{area: "ingest", what: fmt.Sprintf("track 8 clients, %s: events/s, p99", d/2), target: "≥ 2,000/s, p99 < 25 ms",
		figure: fmt.Sprintf("%.0f, %s%s", rate, ms(p99), errs(rep)), ok: verdict(rate >= 2000 && p99 < 25*time.Millisecond && len(rep.Errors) == 0)})
	rep, err = h.profiled(srv, "identify", d/2, func() (load.Report, error) {
		return load.Run(ctx, h.loadCfg(srv, 8, 1, load.Mix{Identify: 1}, d/2))
	})
	if err != nil {
		return err
	}
	n := 0
	if s := rep.Ops["identify"]; s != nil {
		n = s.Count
	}
	rate = float64(n) / rep.Elapsed.Seconds()
	h.add(result{area: "ingest", what: fmt.Sprintf("identify 8 clients, %s: calls/s, p99", d/2), target: "≥ 2,000/s",
		figure: fmt.Sprintf("%.0f, %s%s", rate, ms(rep.Ops["identify"].Percentile(99)), errs(rep)), ok: verdict(rate >= 2000 && len(rep.Errors) == 0)})
	h.add(result{area: "ingest", what: "server peak RSS", target: "< 300 MiB", figure: mib(srv.peak()), ok: verdict(srv.peak() < 300<<20)})
	stopped = true
	if err := srv.stop(); err != nil {
		return err
	}
	size, err := dirSize(dir)
	if err != nil {
		return err
	}
	stored := h.opts.data.Events + events
	use, err := measureDisk(ctx, dir)
	if err != nil {
		return fmt.Errorf("disk use: %w", err)
	}
	// Pages in use, not the file: the outbox's pruned pages are free and
	// reused by later writes (the file size is reported beside it).
	per := float64(use.used) / float64(stored)
	fig := fmt.Sprintf("%.0f B per event (%d MiB in use for %d events and everything else; file %d MiB)", per, use.used>>20, stored, size>>20)
	ok := "info"
	if h.eventDocSize > 0 {
		fig += fmt.Sprintf("; %.1f× the %0.f B event document", per/h.eventDocSize, h.eventDocSize)
		ok = verdict(per <= 1.5*h.eventDocSize)
	}
	h.add(result{area: "ingest", what: "bytes on disk per stored event (pages in use)", target: "≤ 1.5× the document", figure: fig, ok: ok})
	h.add(result{area: "ingest", what: "largest collections: rows + indexes", figure: use.top(6)})
	// Exactness after the load: what ingest maintained equals what the
	// stored events give, for random profiles.
	return h.addExactness(ctx, dir, "ingest", "exactness: %d random profiles recomputed from their stored events (count, features, memberships, members index, computed traits, score tally)")
}

// profiled runs a load of about d on srv, taking a CPU profile of the
// server over it into <cpuprofile>/<name>.pprof when -cpuprofile is set.
func (h *harness) profiled(srv *server, name string, d time.Duration, run func() (load.Report, error)) (load.Report, error) {
	if h.opts.cpuprofile == "" {
		return run()
	}
	if err := os.MkdirAll(h.opts.cpuprofile, 0o755); err != nil {
		return load.Report{}, err
	}
	path := filepath.Join(h.opts.cpuprofile, name+".pprof")
	wait := srv.profileCPU(d-time.Second, path)
	rep, err := run()
	if perr := wait(); perr != nil {
		h.logf("cpu profile %s: %v", name, perr)
	} else if srv.debugURL != "" {
		h.logf("cpu profile of the server: %s", path)
	}
	return rep, err
}

func errs(rep load.Report) string {
	if len(rep.Errors) == 0 {
		return ""
	}
	return fmt.Sprintf(" errors %v", rep.Errors)
}
