package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Garbage collector defaults, when the standard variables leave them unset.
//
// Go's default (GOGC=100) collects each time the heap doubles. Ingest
// allocates quickly (request decoding, BSON documents) and keeps little, so
// at that pace the collector took about a sixth of the CPU on 2 cores and
// starved the store's single writer: at 4 × 100-event trackBatch calls,
// GOGC=400 gave 14% more events per second (same sitting, two runs each)
// for 165 MiB of peak RSS instead of 130. The memory limit bounds what a
// larger live heap would let GOGC=400 grow to; past it the collector runs
// more often (at most half the CPU), so a deployment whose live heap nears
// it sets GOMEMLIMIT (docs/operations.md).
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 256 << 20
)

// tuneGC applies the defaults above where GOGC and GOMEMLIMIT are not set
// (the runtime has already applied those that are).
func tuneGC(getenv func(string) string, log *slog.Logger) {
	gogc, limit := getenv("GOGC"), getenv("GOMEMLIMIT")
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if limit == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	log.Debug("garbage collector",
		"GOGC", cmp.Or(gogc, fmt.Sprint(defaultGCPercent, " (default)")),
		"GOMEMLIMIT", cmp.Or(limit, fmt.Sprint(defaultMemoryLimit>>20, "MiB (default)")))
}
