package main

import (
	"context"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/tools/load"
)

// The load generator against the real server: what it reports as accepted
// is what the store holds, and an ingest key with profiles:read runs the
// whole mix without errors.
func TestLoadGenerator(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme", auth.ScopeEventsWrite, auth.ScopeProfilesRead)
	rep, err := load.Run(t.Context(), load.Config{
		URL: s.URL + "/graphql", Token: tok, Workers: 2, Duration: 500 * time.Millisecond, Batch: 10, People: 50, RunID: "e2e",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 || rep.Events == 0 || rep.Ops["read"] == nil || rep.Ops["identify"] == nil {
		t.Fatalf("report:\n%s", rep)
	}
	st, err := openStore(context.Background(), s.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	n, err := st.Tenant("acme").C(timeline.Events).Count(t.Context(), store.Query{Index: timeline.EventsByMessage})
	if err != nil || n != int64(rep.Events) {
		t.Fatalf("store holds %d events, the report says %d (%v)", n, rep.Events, err)
	}
}
