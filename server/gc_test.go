package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// The defaults apply only where GOGC and GOMEMLIMIT are unset: a value an
// operator chose (which the runtime has already applied) stays.
func TestTuneGCDefaults(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) })
	current := func() (int, int64) {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1)
	}

	tuneGC(func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if p, l := current(); p != defaultGCPercent || l != defaultMemoryLimit {
		t.Fatalf("unset: GOGC %d, limit %d; want %d, %d", p, l, defaultGCPercent, defaultMemoryLimit)
	}

	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}
	tuneGC(func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	if p, l := current(); p != 150 || l != 1<<30 {
		t.Fatalf("set: GOGC %d, limit %d; want the operator's 150, 1 GiB", p, l)
	}
}
