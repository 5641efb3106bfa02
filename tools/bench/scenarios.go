package main

import "context"

// scenario is one measured part of the targets; each starts its servers
// on a fresh copy of the dataset unless it says otherwise.
type scenario struct {
	name string
	run  func(ctx context.Context, h *harness) error
}

// scenarios run in this order; -only picks some.
var scenarios = []scenario{
	{"segments", runSegments},
	{"raw", runRaw},
	{"ingest", runIngest},
	{"reads", runReads},
	{"realtime", runRealtime},
	{"crash", runCrash},
	{"analytics", runAnalytics},
}

func scenarioNames() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}
