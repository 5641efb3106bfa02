package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/tools/load"
)

// runReads measures the profile 360 (profile, identifiers, traits, 50
// timeline items, segments, consent, scores, computed traits) of the
// dataset's people: alone, with the server's CPU per request; then beside
// single-track ingest at 2,000 events/s.
func runReads(ctx context.Context, h *harness) error {
	dir, err := h.fresh()
	if err != nil {
		return err
	}
	srv, err := h.start(ctx, dir, "reads")
	if err != nil {
		return err
	}
	defer srv.stop()
	d := h.opts.duration / 2
	cfg := h.loadCfg(srv, 4, 1, load.Mix{Read: 1}, d)
	cpu0, err := srv.cpu()
	if err != nil {
		return err
	}
	rep, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	cpu1, err := srv.cpu()
	if err != nil {
		return err
	}
	s := rep.Ops["read"]
	if s == nil || s.Count == 0 {
		return fmt.Errorf("no successful read%s", errs(rep))
	}
	perReq := (cpu1 - cpu0) / time.Duration(s.Count)
	rps := float64(s.Count) / rep.Elapsed.Seconds()
	h.add(result{area: "reads", what: fmt.Sprintf("profile 360, 4 clients, %s: requests/s, p50 / p99", d), target: "≥ 2,000/s",
		figure: fmt.Sprintf("%.0f, %s / %s%s", rps, ms(s.Percentile(50)), ms(s.Percentile(99)), errs(rep)), ok: verdict(rps >= 2000 && len(rep.Errors) == 0)})
	h.add(result{area: "reads", what: "profile 360: server CPU per request", target: "≤ 0.6 ms",
		figure: fmt.Sprintf("%.2f ms", float64(perReq)/1e6), ok: verdict(perReq <= 600*time.Microsecond)})

	// The same reads beside ingest at 2,000 single-event tracks per second;
	// the background starts a second early and runs a second past the
	// reads, so they happen under its full rate.
	bgCfg := h.loadCfg(srv, 8, 1, load.Mix{Track: 1}, d+2*time.Second)
	bgCfg.Rate = bgTarget
	bg := startBackground(ctx, bgCfg)
	time.Sleep(time.Second)
	cfg.Seed = h.loadSeed()
	rep, err = load.Run(ctx, cfg)
	bgRep, bgErr := bg.wait()
	if err := errors.Join(err, bgErr); err != nil {
		return err
	}
	s = rep.Ops["read"]
	if s == nil || s.Count == 0 {
		return fmt.Errorf("no successful read under ingest%s", errs(rep))
	}
	ingest, underLoad, note := bgLoad(bgRep)
	p99 := s.Percentile(99)
	h.add(result{area: "reads", what: fmt.Sprintf("profile 360 p99 beside ingest (%.0f events/s reached of %d)", ingest, bgTarget), target: "< 10 ms",
		figure: fmt.Sprintf("%s (p50 %s)%s%s", ms(p99), ms(s.Percentile(50)), errs(rep), note), ok: verdict(p99 < 10*time.Millisecond && underLoad)})
	h.add(result{area: "reads", what: "server peak RSS", target: "< 300 MiB", figure: mib(srv.peak()), ok: verdict(srv.peak() < 300<<20)})
	return nil
}
