package main

// Hostile-input suite of the GraphQL API (issue 8): scopes by schema
// directive, tenant isolation, operation limits, injection payloads,
// introspection and persisted queries. Every hostile case asserts the exact
// error code and that the store did not change (a snapshot of every
// document of every collection, before and after). The cases share one
// server, seeded once.

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/ingest/journal"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/resolvers"
	"github.com/halo-cdp/halo/store"
)

// secWorld is the seeded state the hostile cases aim at: acme's data, and
// globex's, which acme's tokens must never reach.
type secWorld struct {
	s  *testServer
	st *store.Store
	// acme
	profile, other, merged string // other: a second profile; merged: a merge record id
	static, dynamic        string // segment ids
	account, deal, task    string // an account, a deal, a task
	ticket, dupAccount     string // a ticket; an account to merge
	// globex
	gProfile, gMerge, gSegment, gAccount, gDeal, gTask string
	gTicket                                            string
	gEmail                                             string

	cases atomic.Int64 // hostile cases run
}

const secEmail = "ana@acme.test"

func seedSecurity(t *testing.T) *secWorld {
	t.Helper()
	// No rate limits: the suite sends a few hundred requests in a second.
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_RATE_LIMIT": "0", "HALO_WORKSPACE_RATE_LIMIT": "0"}})
	w := &secWorld{s: s, st: secondStore(t, s), gEmail: "gina@globex.test"}
	acme, globex := s.token(t, "acme"), s.token(t, "globex")

	p, _ := identify(t, s, acme, ids("email", secEmail), map[string]any{"firstName": "Ana", "plan": "pro"})
	w.profile = p.ID
	track(t, s, acme, "sec-seed-1", ids("email", secEmail), "order_completed", time.Now().Add(-time.Hour))
	w.other = identifyID(t, s, acme, "bo@acme.test")
	src := identifyID(t, s, acme, "cy@acme.test")
	w.merged = mergeRecord(t, s, acme, src, w.profile)
	s.gql(t, acme, `mutation($p: ID!) { setConsent(input: {profileId: $p, purpose: "marketing", channel: EMAIL, status: GRANTED}) { status } }`,
		map[string]any{"p": w.profile}).requireOK(t)
	w.static = createSegment(t, s, acme, map[string]any{"name": "vip", "kind": "STATIC"}).ID
	s.gql(t, acme, `mutation($s: ID!, $p: ID!) { addToStaticSegment(segmentId: $s, profileIds: [$p]) { id } }`,
		map[string]any{"s": w.static, "p": w.profile}).requireOK(t)
	w.dynamic = createSegment(t, s, acme, map[string]any{"name": "pro", "rule": map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": "pro"}}}).ID
	w.account = createAccount(t, s, acme, map[string]any{"name": "Acme", "domains": []any{"acme.test"}}).ID
	w.deal = createDeal(t, s, acme, map[string]any{"name": "Acme deal", "currency": "EUR", "amount": 10}).ID
	w.task = createTask(t, s, acme, "Acme task")
	w.ticket = openTicket(t, s, acme, w.profile, "Acme ticket")
	w.dupAccount = createAccount(t, s, acme, map[string]any{"name": "Acme duplicate"}).ID

	g, _ := identify(t, s, globex, ids("email", w.gEmail), map[string]any{"firstName": "Gina", "plan": "pro"})
	w.gProfile = g.ID
	track(t, s, globex, "sec-seed-g", ids("email", w.gEmail), "order_completed", time.Now().Add(-time.Hour))
	gsrc := identifyID(t, s, globex, "gus@globex.test")
	w.gMerge = mergeRecord(t, s, globex, gsrc, w.gProfile)
	s.gql(t, globex, `mutation($p: ID!) { setConsent(input: {profileId: $p, purpose: "marketing", channel: EMAIL, status: GRANTED}) { status } }`,
		map[string]any{"p": w.gProfile}).requireOK(t)
	w.gSegment = createSegment(t, s, globex, map[string]any{"name": "globex-vip", "kind": "STATIC"}).ID
	w.gAccount = createAccount(t, s, globex, map[string]any{"name": "Globex", "domains": []any{"globex.test"}}).ID
	w.gDeal = createDeal(t, s, globex, map[string]any{"name": "Globex deal", "currency": "EUR", "amount": 10}).ID
	w.gTask = createTask(t, s, globex, "Globex task")
	w.gTicket = openTicket(t, s, globex, w.gProfile, "Globex ticket")
	s.gql(t, globex, `mutation($s: ID!, $p: ID!) { addToStaticSegment(segmentId: $s, profileIds: [$p]) { id } }`,
		map[string]any{"s": w.gSegment, "p": w.gProfile}).requireOK(t)
	return w
}

func identifyID(t *testing.T, s *testServer, tok, email string) string {
	t.Helper()
	p, _ := identify(t, s, tok, ids("email", email), nil)
	return p.ID
}

// mergeRecord merges src into dst and returns the merge record's id.
func mergeRecord(t *testing.T, s *testServer, tok, src, dst string) string {
	t.Helper()
	r := s.gql(t, tok, `mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { merges { id kind } } }`, map[string]any{"a": src, "b": dst})
	r.requireOK(t)
	var out struct {
		MergeProfiles struct{ Merges []struct{ ID, Kind string } }
	}
	r.decode(t, &out)
	for _, m := range out.MergeProfiles.Merges {
		if m.Kind == "MERGE" {
			return m.ID
		}
	}
	t.Fatalf("no merge record: %s", r.Body)
	return ""
}

// snapshot reads every document of every collection of the workspaces the
// suite uses (and the system workspace), through every index so documents
// missing an indexed field are seen too.
func (w *secWorld) snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := context.Background()
	for _, ws := range []string{"acme", "globex", store.SystemWorkspace} {
		tn := w.st.Tenant(ws)
		for _, spec := range app.Collections {
			if slices.Contains(analytics.Background, spec.Name) {
				// Folded in the background from the stored events, which
				// the snapshot holds: a fold may land between two reads.
				continue
			}
			if spec.Name == journal.Entries {
				// The instance's heartbeat, rewritten every interval by
				// a timer (journal.Beat), requests or not: a beat may
				// land between two reads.
				continue
			}
			for _, idx := range spec.Indexes {
				docs, err := tn.C(spec.Name).Find(ctx, store.Query{Index: idx.Name})
				if err != nil {
					t.Fatalf("snapshot %s/%s by %s: %v", ws, spec.Name, idx.Name, err)
				}
				for _, d := range docs {
					id := d.Raw.Lookup("_id").String()
					out[ws+"/"+spec.Name+"/"+id] = d.Raw.String()
				}
			}
		}
	}
	return out
}

// requireUnchanged fails the test naming the documents that differ.
func requireUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	if maps.Equal(before, after) {
		return
	}
	var diff []string
	for k, v := range after {
		if b, ok := before[k]; !ok {
			diff = append(diff, "added "+k)
		} else if b != v {
			diff = append(diff, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			diff = append(diff, "removed "+k)
		}
	}
	slices.Sort(diff)
	t.Fatalf("the store changed: %s", strings.Join(diff, "; "))
}

// hostile sends one hostile operation, and asserts its error code and that
// nothing in the store changed. It returns the response for further checks.
func (w *secWorld) hostile(t *testing.T, tok, query string, vars map[string]any, code string) gqlResponse {
	t.Helper()
	return w.hostileDo(t, code, func() gqlResponse { return w.s.gql(t, tok, query, vars) })
}

func (w *secWorld) hostileDo(t *testing.T, code string, send func() gqlResponse) gqlResponse {
	t.Helper()
	w.cases.Add(1)
	before := w.snapshot(t)
	r := send()
	r.requireError(t, 0, code)
	for _, e := range r.Errors {
		if e.Code() != code {
			t.Errorf("another error code besides %s: %s", code, r.Body)
		}
	}
	requireUnchanged(t, before, w.snapshot(t))
	return r
}

// noData fails unless field is absent or null in r's data.
func noData(t *testing.T, r gqlResponse, field string) {
	t.Helper()
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return
	}
	var m map[string]any
	r.decode(t, &m)
	if v, ok := m[field]; ok && v != nil {
		t.Fatalf("%s returned data: %s", field, r.Body)
	}
}

// loadSchema parses schema/*.graphqls as the server does.
func loadSchema(t *testing.T) *ast.Schema {
	t.Helper()
	files, err := filepath.Glob("../schema/*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v", err)
	}
	var srcs []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, &ast.Source{Name: f, Input: string(b)})
	}
	s, gerr := gqlparser.LoadSchema(srcs...)
	if gerr != nil {
		t.Fatalf("schema: %v", gerr)
	}
	return s
}

// scopesOf lists the scopes the fields an operation selects need,
// according to the schema's @hasScope directives.
func scopesOf(t *testing.T, schema *ast.Schema, query string) []string {
	t.Helper()
	doc, gerr := gqlparser.LoadQuery(schema, query)
	if gerr != nil {
		t.Fatalf("invalid operation %q: %v", query, gerr)
	}
	set := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(sel ast.SelectionSet) {
		for _, s := range sel {
			switch s := s.(type) {
			case *ast.Field:
				if sc := resolvers.ScopeOf(s.Definition); sc != "" {
					set[sc] = true
				}
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				walk(s.Definition.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet)
	}
	return slices.Sorted(maps.Keys(set))
}

// allBut is every scope except the given ones.
func allBut(except ...string) []string {
	var out []string
	for _, s := range auth.AllScopes {
		if !slices.Contains(except, s) {
			out = append(out, s)
		}
	}
	return out
}

func rootName(t *testing.T, schema *ast.Schema, query string) string {
	t.Helper()
	doc, gerr := gqlparser.LoadQuery(schema, query)
	if gerr != nil {
		t.Fatalf("invalid operation %q: %v", query, gerr)
	}
	return doc.Operations[0].SelectionSet[0].(*ast.Field).Name
}

// TestSecurityAPI runs the hostile cases on one seeded server, one group
// after the other (the store snapshots need no concurrent writer).
func TestSecurityAPI(t *testing.T) {
	w := seedSecurity(t)
	schema := loadSchema(t)
	t.Run("scopes", func(t *testing.T) { w.scopeCases(t, schema) })
	t.Run("isolation", func(t *testing.T) { w.isolationCases(t) })
	t.Run("limits", func(t *testing.T) { w.limitCases(t) })
	t.Run("injection", func(t *testing.T) { w.injectionCases(t) })
	t.Run("apq", func(t *testing.T) { w.apqCases(t) })
	t.Logf("%d hostile cases, each with its error code and an unchanged store", w.cases.Load())
	if n := w.cases.Load(); n < 40 {
		t.Errorf("only %d hostile cases ran", n)
	}
}
