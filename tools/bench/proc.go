package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one Halo server process the harness started.
type server struct {
	cmd *exec.Cmd
	URL string // http://127.0.0.1:port
	// debugURL is the profiler's listener (HALO_DEBUG_ADDR), if it has one.
	debugURL string
	log      *os.File
	done     chan struct{}

	mu      sync.Mutex
	peakRSS int64 // bytes, sampled every 200 ms
	stopRSS func()
}

// serverEnv is the environment every harness server runs with: its own
// data dir and secret, no demo data, no rate limits (the harness measures
// the engine, not the limiter), JSON logs to a file.
func serverEnv(dataDir, secret, addr string, extra ...string) []string {
	env := append(os.Environ(),
		"HALO_DATA_DIR="+dataDir,
		"HALO_JWT_SECRET="+secret,
		"HALO_ADDR="+addr,
		"HALO_DEMO_DATA=false",
		"HALO_DEV=false",
		"HALO_RATE_LIMIT=0",
		"HALO_WORKSPACE_RATE_LIMIT=0",
		"HALO_LOG_FORMAT=json",
		"MONGODB_URI=",
	)
	return append(env, extra...)
}

// startServer runs bin on a free port over dataDir and waits until
// /readyz answers 200.
func startServer(ctx context.Context, bin, dataDir, secret, logPath string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = serverEnv(dataDir, secret, addr, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, URL: "http://" + addr, log: logf, done: make(chan struct{})}
	for _, kv := range extra {
		if v, ok := strings.CutPrefix(kv, "HALO_DEBUG_ADDR="); ok {
			s.debugURL = "http://" + v
		}
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, 5*time.Minute); err != nil {
		// Whichever way start-up failed (the server exited, ctx ended, it
		// never got ready), kill reaps the process if it still runs and
		// closes the log file, which the caller, given no server, cannot.
		s.kill()
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	s.sampleRSS()
	return s, nil
}

// waitReady polls /readyz every 50 ms until it answers 200, the server
// exits, ctx ends or patience runs out.
func (s *server) waitReady(ctx context.Context, patience time.Duration) error {
	// A per-request timeout: a server that accepts the connection but
	// does not answer (busy opening a large store) must not hang the poll
	// past the deadline or past ctx; the next poll tries again.
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-s.done:
			return errors.New("server exited during start-up")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // drained, the connection is reused
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %s", patience)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// stop ends the server as an operator would (SIGTERM) and waits.
func (s *server) stop() error {
	s.stopRSS()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.kill()
		return errors.New("server did not stop within 60 s of SIGTERM")
	}
	return s.log.Close()
}

// kill ends the server with SIGKILL (no shutdown work runs), waits for it
// and closes its log file; on a server that already exited it only does
// the closing.
func (s *server) kill() {
	if s.stopRSS != nil {
		s.stopRSS()
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.log.Close()
}

// cpu is the CPU time (user + system) the process used so far.
func (s *server) cpu() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100), nil // USER_HZ is 100 on Linux
}

// rss is the process's resident memory now, in bytes.
func (s *server) rss() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *server) sampleRSS() {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	stopped := make(chan struct{})
	s.stopRSS = func() { once.Do(func() { cancel(); <-stopped }) }
	go func() {
		defer close(stopped)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if r := s.rss(); r > 0 {
				s.mu.Lock()
				s.peakRSS = max(s.peakRSS, r)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// peak is the largest resident memory seen since start.
func (s *server) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakRSS
}

// dirSize is the bytes the files under dir take.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}

// profileCPU starts taking a CPU profile of the server for d and returns
// a function that waits for it and writes it to path. A server without a
// profiler listener, or a failed fetch, writes nothing: profiles are an
// aid to reading the figures, not a figure.
func (s *server) profileCPU(d time.Duration, path string) (wait func() error) {
	if s.debugURL == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Seconds()))
		resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.debugURL, secs))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("profile: %s", resp.Status)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() error { return <-done }
}
