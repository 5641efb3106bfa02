// Command loadgen drives a running Halo with concurrent clients and prints
// throughput and latency percentiles (package tools/load).
//
//	go run ./server &                      # prints a dev token
//	go run ./tools/loadgen -token <token> -workers 8 -batch 100 -duration 30s -run-id seed1
//	go run ./tools/loadgen -token <token> -track 0 -identify 0 -run-id seed1   # read-only: the people seed1 made
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/halo-cdp/halo/tools/load"
)

func main() {
	cfg := load.Config{}
	flag.StringVar(&cfg.URL, "url", "http://localhost:8080/graphql", "GraphQL endpoint")
	flag.StringVar(&cfg.Token, "token", os.Getenv("HALO_TOKEN"), "bearer token with events:write and profiles:read (default $HALO_TOKEN)")
	flag.IntVar(&cfg.Workers, "workers", 4, "concurrent clients")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run")
	flag.IntVar(&cfg.Batch, "batch", 1, "events per track call (1: track, more: trackBatch, at most 500)")
	flag.IntVar(&cfg.People, "people", 1000, "distinct people")
	flag.IntVar(&cfg.Mix.Track, "track", 80, "weight of track calls")
	flag.IntVar(&cfg.Mix.Identify, "identify", 5, "weight of identify calls")
	flag.IntVar(&cfg.Mix.Read, "read", 15, "weight of profile reads: each reads a known person <run-id>-p<n> (n < -people) by anonymousId, the profile with 20 timeline items (the 360 with -read-360); -track 0 -identify 0 makes a read-only run, which with a seeding run's -run-id and -people reads the people that run wrote")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	flag.StringVar(&cfg.RunID, "run-id", "", "names the run's people (<run-id>-p<n>): reuse a seeding run's id to read and write the people it made (default: new people each run)")
	flag.Float64Var(&cfg.NewShare, "new-share", 0, "share (0..1) of tracks and identifies from people never seen before")
	read360 := flag.Bool("read-360", false, "reads fetch the profile 360 (50 timeline items, segments, consent, scores, computed) instead of 20 timeline items")
	flag.Parse()
	if *read360 {
		cfg.Read = load.Read360
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	fmt.Print(rep)
}
