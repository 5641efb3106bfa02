// Command bench is Halo's scale harness: it builds a dataset (100,000
// people and 1,000,000 events by default, reproducible from a seed)
// through a real server process, then runs each scenario of the write-path
// targets against a copy of it and prints one table: target, figure,
// verdict.
//
//	go run ./tools/bench                        # full size, all scenarios
//	go run ./tools/bench -profiles 2000 -events 20000 -duration 5s   # a quick look
//	go run ./tools/bench -only ingest,reads     # some scenarios
//	go run ./tools/bench -only ingest -cpuprofile prof   # where the server's time goes
//
// The dataset is built once into -dir and reused while its size, seed and
// anchor day match; each run starts from a fresh copy of it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

// benchWorkspace is the workspace the dataset and every scenario use.
const benchWorkspace = "bench"

// harness is one invocation: the server binary, the working dir, the
// token secret, and the results so far.
type harness struct {
	bin, dir string
	commit   string // what the server binary was built from
	secret   []byte
	token    string
	opts     options
	results  []result
	loads    int // load runs so far (loadSeed)
	// Figures one scenario leaves for another's row: the engine's raw
	// insert rate and event document size (raw), and trackBatch's rate.
	rawRate, eventDocSize, ingestRate float64
}

type options struct {
	duration time.Duration
	only     []string
	data     dataset
	probes   int // event → ENTERED probes (realtime)
	// cpuprofile, when set, is a directory that receives a CPU profile of
	// the server during each ingest load (trackBatch.pprof, ...).
	cpuprofile string
}

func main() {
	var (
		o    options
		dir  string
		only string
		out  string
	)
	flag.StringVar(&dir, "dir", filepath.Join(os.TempDir(), "halo-bench"), "working dir: the server binary, the dataset (reused while it matches) and each run's copy")
	flag.IntVar(&o.data.Profiles, "profiles", 100_000, "people in the dataset")
	flag.IntVar(&o.data.Events, "events", 1_000_000, "events in the dataset")
	flag.Uint64Var(&o.data.Seed, "seed", 1, "dataset seed")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long each sustained-load scenario runs")
	flag.IntVar(&o.probes, "probes", 200, "event → ENTERED probes of the realtime scenario")
	flag.StringVar(&only, "only", "", "comma-separated scenarios to run (default all): "+strings.Join(scenarioNames(), ","))
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the server during each ingest load into this directory (go tool pprof <dir>/trackBatch.pprof)")
	flag.StringVar(&out, "markdown", "", "also write the table as Markdown to this file")
	flag.Parse()
	if only != "" {
		o.only = strings.Split(only, ",")
		for _, s := range o.only {
			if !slices.Contains(scenarioNames(), s) {
				fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (have %s)\n", s, strings.Join(scenarioNames(), ", "))
				os.Exit(2)
			}
		}
	}
	// The anchor is the day the dataset is built for, so "last 7 days"
	// rules match the same share of it on any day it is used.
	o.data.Anchor = time.Now().UTC().Truncate(24 * time.Hour)
	o.data.Format = datasetFormat
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	h, err := newHarness(ctx, dir, o)
	if err == nil {
		err = h.run(ctx)
	}
	fmt.Print(h.table())
	if out != "" {
		if werr := os.WriteFile(out, []byte(h.markdown()), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func newHarness(ctx context.Context, dir string, o options) (*harness, error) {
	h := &harness{dir: dir, opts: o, secret: []byte("halo-bench-secret-not-for-production-0123456789")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return h, err
	}
	h.bin = filepath.Join(dir, "halo-server")
	h.logf("building the server binary")
	h.commit = sourceCommit()
	build := exec.CommandContext(ctx, "go", "build", "-o", h.bin, "github.com/halo-cdp/halo/server")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return h, fmt.Errorf("go build the server (run inside the repository): %w", err)
	}
	tok, err := auth.IssueHS256(h.secret, auth.Principal{Workspace: benchWorkspace, Subject: "bench", Scopes: auth.AllScopes}, 48*time.Hour)
	if err != nil {
		return h, err
	}
	h.token = tok
	return h, nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (h *harness) client(s *server) *client { return newClient(s.URL, h.token) }

// start runs a server over dataDir, logging to <dir>/<name>.log.
func (h *harness) start(ctx context.Context, dataDir, name string, extra ...string) (*server, error) {
	if h.opts.cpuprofile != "" {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		extra = append(extra, "HALO_DEBUG_ADDR="+addr)
	}
	return startServer(ctx, h.bin, dataDir, string(h.secret), filepath.Join(h.dir, name+".log"), extra...)
}

// fresh replaces <dir>/run with a fresh copy of the dataset and returns
// it: each scenario starts from the data as built, whatever the previous
// one wrote.
func (h *harness) fresh() (string, error) {
	dst := filepath.Join(h.dir, "run")
	if err := copyDir(filepath.Join(h.dir, "dataset"), dst); err != nil {
		return "", fmt.Errorf("copy the dataset: %w", err)
	}
	return dst, nil
}

func (h *harness) wants(name string) bool {
	return len(h.opts.only) == 0 || slices.Contains(h.opts.only, name)
}

func (h *harness) run(ctx context.Context) error {
	t0 := time.Now()
	d, err := prepareDataset(ctx, h, h.opts.data)
	if err != nil {
		return err
	}
	h.opts.data = d
	h.add(result{area: "dataset", what: fmt.Sprintf("build %d profiles / %d events through the API", d.Profiles, d.Events),
		target: "< 300 s", figure: fmt.Sprintf("%.0f s", d.BuildSeconds), ok: verdict(d.BuildSeconds < 300)})
	for _, sc := range scenarios {
		if !h.wants(sc.name) {
			continue
		}
		h.logf("scenario %s", sc.name)
		if err := sc.run(ctx, h); err != nil {
			h.add(result{area: sc.name, what: "scenario failed", figure: err.Error(), ok: "FAILED"})
			h.logf("scenario %s failed: %v", sc.name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	h.logf("done in %s", time.Since(t0).Round(time.Second))
	return nil
}
