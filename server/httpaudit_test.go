package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestGraphQLOverHTTPAudit runs the graphql-http package's server audit
// (tools/httpaudit, pinned in its package-lock.json) against the real
// server: every audit must pass, warnings and notices included. It needs
// Node.js and `npm ci` in tools/httpaudit, which .ci/run does; elsewhere
// it is skipped with what to run, unless CI is set.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	dir, err := filepath.Abs("../tools/httpaudit")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	_, missing := os.Stat(filepath.Join(dir, "node_modules", "graphql-http"))
	if err != nil || missing != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the audit needs node and `npm ci` in tools/httpaudit (node: %v, graphql-http: %v)", err, missing)
		}
		t.Skip("needs node and `npm ci` in tools/httpaudit (.ci/run installs them)")
	}
	// Dev mode: one audit's variables go to __type, introspection.
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_DEV": "1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "audit.mjs"), s.URL+"/graphql", s.token(t, "acme"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("audit (node 18 or later): %v\n%s\n%s", err, out, stderr.String())
	}
	var results []struct{ ID, Name, Status, Reason string }
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("audit output: %v\n%s", err, out)
	}
	if len(results) < 50 {
		t.Fatalf("only %d audits ran", len(results))
	}
	for _, r := range results {
		if r.Status != "ok" {
			t.Errorf("%s %s: %s (%s)", r.Status, r.ID, r.Name, r.Reason)
		}
	}
	if !t.Failed() {
		t.Logf("%d audits, all ok", len(results))
	}
}
