package main

// End-to-end harness: starts the real server (run) in-process on a random
// loopback port and talks to it over HTTP. Reuse it for every e2e test:
//
//	s := startServer(t, serverOptions{})
//	tok := s.token(t, "acme", auth.ScopeProfilesRead)
//	resp := s.gql(t, tok, `query($id: ID!) { profile(id: $id) { id } }`, map[string]any{"id": id})
//	resp.requireOK(t)
//	var out struct{ Profile struct{ ID string } }
//	resp.decode(t, &out)
//
// To run on the MongoDB engine instead, set Mongo: true (FerretDB in-process,
// or the server in HALO_TEST_MONGODB_URI); each server gets a fresh database.
// A restart test passes the first server's DataDir and MongoURI back in.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/store/ferrettest"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// serverOptions configures startServer. The zero value is an embedded
// store in a fresh temp dir, no demo data, and a random HALO_JWT_SECRET.
type serverOptions struct {
	// DataDir reuses a data dir (restart tests); default t.TempDir().
	DataDir string
	// DevMode leaves HALO_JWT_SECRET unset, so the server generates and
	// persists its own secret and prints a dev token.
	DevMode bool
	// Mongo runs the server on the MongoDB engine: against MongoURI if set,
	// else a fresh database on HALO_TEST_MONGODB_URI if set, else on a
	// FerretDB started for the test.
	Mongo    bool
	MongoURI string
	// Env overrides or adds environment variables (HALO_DEMO_DATA, ...).
	// HALO_ADDR is always 127.0.0.1:0.
	Env map[string]string
	// Clock, when set, is the server's domain clock (services, segment
	// sweeper); tests move segment windows with it. Default time.Now.
	Clock *app.ManualClock
	// Tune, when set, adjusts the loaded configuration (settings that
	// have no environment variable, e.g. bodyReadTimeout).
	Tune func(*Config)
}

// testServer is a running server.
type testServer struct {
	URL     string // base URL without trailing slash, e.g. http://127.0.0.1:41234
	DataDir string
	Secret  []byte // the HS256 key the server verifies with
	Config  Config
	// MongoURI is the database URI when the server runs on MongoDB.
	MongoURI string

	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startServer starts a server and stops it (gracefully, checking run's
// error) when the test ends.
func startServer(t testing.TB, opts serverOptions) *testServer {
	t.Helper()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	env := map[string]string{
		"HALO_DATA_DIR":  dataDir,
		"HALO_DEMO_DATA": "false",
		// Tests fire requests far faster than any client should; the rate
		// limit tests set their own limits in Env.
		"HALO_RATE_LIMIT":           "0",
		"HALO_WORKSPACE_RATE_LIMIT": "0",
		// Tests read members right after saving a segment: its save waits
		// for the build (a moment here), however loaded the machine.
		"HALO_SEGMENT_BUILD_WAIT": "1m",
	}
	if !opts.DevMode {
		env["HALO_JWT_SECRET"] = randomSecret(t)
	}
	if opts.Mongo {
		uri := opts.MongoURI
		if uri == "" {
			uri = freshMongoDatabase(t)
		}
		env["MONGODB_URI"] = uri
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	env["HALO_ADDR"] = "127.0.0.1:0"
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if opts.Clock != nil {
		cfg.now = opts.Clock.Now
	}
	// One engine per data dir in most tests: no cache of another one to
	// wait for (the two-server tests share a process and its caches' TTL
	// is what the settle covers; they set no segment rule during ingest).
	noSettle := time.Duration(0)
	cfg.segmentBuildSettle = &noSettle
	if opts.Tune != nil {
		opts.Tune(&cfg)
	}

	logger := slog.New(requestIDHandler{slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})})
	s := &testServer{DataDir: dataDir, Config: cfg, MongoURI: cfg.MongoURI, stdout: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan string, 1)
	go func() { s.done <- run(ctx, cfg, logger, s.stdout, func(addr string) { ready <- addr }) }()

	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("server did not start within 60s")
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("server stop: %v", err)
		}
	})

	if opts.DevMode {
		b, err := os.ReadFile(filepath.Join(dataDir, secretFile))
		if err != nil {
			t.Fatalf("dev secret: %v", err)
		}
		s.Secret = bytes.TrimSpace(b)
	} else {
		s.Secret = cfg.JWTSecret
	}
	return s
}

// stop cancels the server's context and waits for run to return; safe to
// call more than once. It returns run's error.
func (s *testServer) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = fmt.Errorf("run did not return within 30s of cancellation")
		}
	})
	return s.err
}

// output is what the server printed on stdout so far (the banner).
func (s *testServer) output() string { return s.stdout.String() }

// token signs a token the server accepts, for workspace with scopes (all
// scopes when none are given), subject "test", valid for an hour.
func (s *testServer) token(t testing.TB, workspace string, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = auth.AllScopes
	}
	tok, err := auth.IssueHS256(s.Secret, auth.Principal{Workspace: workspace, Subject: "test", Scopes: scopes}, time.Hour)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok
}

// gqlResponse is a decoded GraphQL HTTP response.
type gqlResponse struct {
	Status int
	Header http.Header
	Body   []byte // raw
	Data   json.RawMessage
	Errors []gqlError
}

// gqlError is one entry of "errors".
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is extensions.code ("" if absent).
func (e gqlError) Code() string { s, _ := e.Extensions["code"].(string); return s }

// gql POSTs a GraphQL operation with token ("" sends no Authorization
// header) and variables (may be nil). It fails the test only on transport
// problems; GraphQL errors are in the response.
func (s *testServer) gql(t testing.TB, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(t, req, token)
}

// gqlGet sends a query with GET /graphql?query=...&variables=....
func (s *testServer) gqlGet(t testing.TB, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	q := url.Values{"query": {query}}
	if vars != nil {
		b, err := json.Marshal(vars)
		if err != nil {
			t.Fatal(err)
		}
		q.Set("variables", string(b))
	}
	req, err := http.NewRequest(http.MethodGet, s.URL+"/graphql?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, req, token)
}

// do sends req (adding the bearer token if not "") and decodes a GraphQL
// response body; non-JSON bodies are left in Body only.
func (s *testServer) do(t testing.TB, req *http.Request, token string) gqlResponse {
	t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	out := gqlResponse{Status: res.StatusCode, Header: res.Header, Body: raw}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if json.Unmarshal(raw, &env) == nil {
		out.Data, out.Errors = env.Data, env.Errors
	}
	return out
}

// requireOK fails the test unless the response is 200 without errors.
func (r gqlResponse) requireOK(t testing.TB) {
	t.Helper()
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("want 200 without errors, got %d: %s", r.Status, r.Body)
	}
}

// requireError fails the test unless the response has an error with code
// (and, if status != 0, that HTTP status).
func (r gqlResponse) requireError(t testing.TB, status int, code string) {
	t.Helper()
	if status != 0 && r.Status != status {
		t.Fatalf("want HTTP %d, got %d: %s", status, r.Status, r.Body)
	}
	for _, e := range r.Errors {
		if e.Code() == code {
			return
		}
	}
	t.Fatalf("want an error with code %s, got HTTP %d: %s", code, r.Status, r.Body)
}

// decode unmarshals data into v.
func (r gqlResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// get fetches path (e.g. "/healthz") and returns status and body.
func (s *testServer) get(t testing.TB, path string) (int, string) {
	t.Helper()
	res, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// freshMongoDatabase returns a URI naming a new, empty database, so tests
// sharing one MongoDB (or FerretDB) do not see each other's data.
func freshMongoDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv("HALO_TEST_MONGODB_URI")
	if base == "" {
		base = ferrettest.Start(t)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("mongo test URI does not parse")
	}
	u.Path = "/halo_e2e_" + randomSecret(t)[:12]
	return u.String()
}

func randomSecret(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer safe for the server goroutine to write
// while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ---- tests ----

const viewerQuery = `{ viewer { workspace subject scopes } }`

type viewerData struct {
	Viewer struct {
		Workspace string
		Subject   *string
		Scopes    []string
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_DEV": "true"}}) // the playground exists only in dev
	if code, body := s.get(t, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, body := s.get(t, "/"); code != http.StatusOK || !strings.Contains(body, "graphiql") {
		t.Fatalf("playground: %d", code)
	}
	if code, _ := s.get(t, "/nope"); code != http.StatusNotFound {
		t.Fatalf("/nope: %d", code)
	}
}

func TestGraphQLRequiresValidToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})

	r := s.gql(t, "", viewerQuery, nil)
	r.requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	if r.Data != nil {
		t.Errorf("data on 401: %s", r.Data)
	}

	s.gql(t, "not-a-jwt", viewerQuery, nil).requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")

	other, err := auth.IssueHS256([]byte(randomSecret(t)), auth.Principal{Workspace: "acme"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = s.gql(t, other, viewerQuery, nil)
	r.requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	if strings.Contains(string(r.Body), "signature") {
		t.Errorf("library detail leaked: %s", r.Body)
	}

	s.gqlGet(t, "", viewerQuery, nil).requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
}

func TestViewer(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	r := s.gql(t, s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeEventsWrite), viewerQuery, nil)
	r.requireOK(t)
	var d viewerData
	r.decode(t, &d)
	if d.Viewer.Workspace != "acme" || d.Viewer.Subject == nil || *d.Viewer.Subject != "test" ||
		strings.Join(d.Viewer.Scopes, " ") != "profiles:read events:write" {
		t.Fatalf("viewer %s", r.Data)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
}

func TestGraphQLOverGET(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")

	r := s.gqlGet(t, tok, `query V { viewer { workspace } }`, map[string]any{})
	r.requireOK(t)
	var d viewerData
	r.decode(t, &d)
	if d.Viewer.Workspace != "acme" {
		t.Fatalf("viewer %s", r.Data)
	}

	// GraphQL over HTTP: mutations must not run on GET (no side effects
	// from links or prefetchers), and the refusal still carries a code.
	m := s.gqlGet(t, tok, `mutation { identify(input: {identifiers: [{type: "email", value: "a@example.com"}]}) { profile { id } } }`, nil)
	if m.Status < 400 || m.Status >= 500 {
		t.Fatalf("mutation over GET: HTTP %d %s", m.Status, m.Body)
	}
	m.requireError(t, 0, "BAD_USER_INPUT")

	s.do(t, mustRequest(t, http.MethodGet, s.URL+"/graphql?query=%7B&variables=%7Bnot-json", nil), tok).
		requireError(t, http.StatusBadRequest, "BAD_USER_INPUT")
}

func TestGraphQLResponseMediaType(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	for _, accept := range []string{"application/graphql-response+json", "application/graphql-response+json, application/json;q=0.9"} {
		req := mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ viewer { workspace } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		r := s.do(t, req, tok)
		r.requireOK(t)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/graphql-response+json") {
			t.Fatalf("Accept %q: content type %q", accept, ct)
		}
	}

	// With graphql-response+json, a document that does not parse is a 400.
	req := mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ viewer { "}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json")
	if r := s.do(t, req, tok); r.Status != http.StatusBadRequest || len(r.Errors) == 0 || r.Errors[0].Code() == "" {
		t.Fatalf("parse error: HTTP %d %s", r.Status, r.Body)
	}
}

func TestRequestBodyLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	big := `{"query":"{ viewer { workspace } }","variables":{"pad":"` + strings.Repeat("x", maxBodyBytes) + `"}}`

	// Declared length over the limit.
	req := mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	r := s.do(t, req, tok)
	r.requireError(t, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
	if !strings.Contains(r.Errors[0].Message, "too large") {
		t.Errorf("message %q", r.Errors[0].Message)
	}

	// Chunked, no Content-Length: caught while reading.
	req = mustRequest(t, http.MethodPost, s.URL+"/graphql", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	s.do(t, req, tok).requireError(t, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")

	// Just under the limit is fine.
	pad := maxBodyBytes - len(`{"query":"{ viewer { workspace } }","variables":{"pad":""}}`)
	ok := `{"query":"{ viewer { workspace } }","variables":{"pad":"` + strings.Repeat("x", pad) + `"}}`
	req = mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(ok))
	req.Header.Set("Content-Type", "application/json")
	s.do(t, req, tok).requireOK(t)

	// Wrong media type.
	req = mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ viewer { workspace } }"}`))
	req.Header.Set("Content-Type", "text/plain")
	s.do(t, req, tok).requireError(t, http.StatusUnsupportedMediaType, "BAD_USER_INPUT")

	// Undecodable JSON body.
	req = mustRequest(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":`))
	req.Header.Set("Content-Type", "application/json")
	s.do(t, req, tok).requireError(t, http.StatusBadRequest, "BAD_USER_INPUT")
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	if code, _ := s.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("run returned %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if _, err := http.Get(s.URL + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
	// The store was closed: the same data dir opens again.
	s2 := startServer(t, serverOptions{DataDir: s.DataDir})
	if code, _ := s2.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after restart: %d", code)
	}
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

func TestDevModeSecretAndPrintedToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{DataDir: dir, DevMode: true})

	fi, err := os.Stat(filepath.Join(dir, secretFile))
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", fi.Mode().Perm())
	}
	if len(s.Secret) < minSecretLen {
		t.Fatalf("secret too short: %d", len(s.Secret))
	}

	out := s.output()
	if !strings.Contains(out, s.URL+"/") {
		t.Errorf("banner lacks playground URL %s/:\n%s", s.URL, out)
	}
	if !strings.Contains(out, "curl ") {
		t.Errorf("banner lacks curl example:\n%s", out)
	}
	printed := jwtRE.FindString(out)
	if printed == "" {
		t.Fatalf("no token in banner:\n%s", out)
	}
	r := s.gql(t, printed, viewerQuery, nil)
	r.requireOK(t)
	var d viewerData
	r.decode(t, &d)
	if d.Viewer.Workspace != "demo" || strings.Join(d.Viewer.Scopes, " ") != strings.Join(auth.AllScopes, " ") {
		t.Fatalf("viewer %s", r.Data)
	}

	// Restart on the same dir: same secret, so the printed token still works.
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, serverOptions{DataDir: dir, DevMode: true})
	if !bytes.Equal(s2.Secret, s.Secret) {
		t.Fatal("dev secret changed across restarts")
	}
	s2.gql(t, printed, viewerQuery, nil).requireOK(t)
}

func TestConfiguredSecretPrintsNoToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	if jwtRE.MatchString(s.output()) {
		t.Fatalf("token printed although HALO_JWT_SECRET is set:\n%s", s.output())
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, secretFile)); err == nil {
		t.Error("secret file written although HALO_JWT_SECRET is set")
	}
}

// TestMongoEngine runs the basics on the MongoDB engine (FerretDB unless
// HALO_TEST_MONGODB_URI is set), so that wiring is exercised end to end.
func TestMongoEngine(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Mongo: true})
	if s.Config.Embedded() {
		t.Fatal("server runs on the embedded store")
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	r := s.gql(t, s.token(t, "acme"), viewerQuery, nil)
	r.requireOK(t)
	if _, err := os.Stat(filepath.Join(s.DataDir, sqlitestore.FileName)); err == nil {
		t.Error("SQLite database created although MONGODB_URI is set")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, serverOptions{Mongo: true, MongoURI: s.MongoURI, DataDir: s.DataDir})
	s2.gql(t, s2.token(t, "acme"), viewerQuery, nil).requireOK(t)
}

func TestDemoDataLoadedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the full demo data set")
	}
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{DataDir: dir, Env: map[string]string{"HALO_DEMO_DATA": "true"}})
	marker, err := os.ReadFile(filepath.Join(dir, demoMarker))
	if err != nil {
		t.Fatalf("demo marker: %v", err)
	}
	count := func(s *testServer) int {
		r := s.gql(t, s.token(t, devWorkspace), `{ profiles(first: 100) { edges { node { id } } } }`, nil)
		r.requireOK(t)
		var d struct{ Profiles struct{ Edges []any } }
		r.decode(t, &d)
		return len(d.Profiles.Edges)
	}
	if n := count(s); n == 0 {
		t.Fatalf("no demo profiles; marker %q", marker)
	}
	// Every screen has something: segments built with members, computed
	// traits, consent, accounts, deals, tickets and tasks.
	var segs struct {
		Segments struct {
			Nodes []struct {
				Name  string
				Size  int
				Build struct{ Status string }
			}
		}
	}
	for i := 0; ; i++ {
		r := s.gql(t, s.token(t, devWorkspace), `{ segments { nodes { name size build { status } } } }`, nil)
		r.requireOK(t)
		r.decode(t, &segs)
		ready := len(segs.Segments.Nodes) > 0
		for _, n := range segs.Segments.Nodes {
			ready = ready && n.Build.Status == "READY"
		}
		if ready || i == 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(segs.Segments.Nodes) != 6 {
		t.Fatalf("demo segments: %+v", segs)
	}
	for _, n := range segs.Segments.Nodes {
		if n.Build.Status != "READY" || n.Size == 0 {
			t.Errorf("demo segment %q: %s, %d members", n.Name, n.Build.Status, n.Size)
		}
	}
	r := s.gql(t, s.token(t, devWorkspace), `{ computedTraits { key } accounts { totalCount } deals { totalCount } tickets { totalCount } tasks { totalCount }
	  consentPurposes { key } }`, nil)
	r.requireOK(t)
	for _, empty := range []string{`"computedTraits":[]`, `"accounts":{"totalCount":0}`, `"deals":{"totalCount":0}`, `"tickets":{"totalCount":0}`, `"tasks":{"totalCount":0}`, `"consentPurposes":[]`} {
		if strings.Contains(string(r.Data), empty) {
			t.Errorf("demo data: %s (%s)", empty, r.Data)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, serverOptions{DataDir: dir, Env: map[string]string{"HALO_DEMO_DATA": "true"}})
	again, err := os.ReadFile(filepath.Join(dir, demoMarker))
	if err != nil || !bytes.Equal(again, marker) {
		t.Fatalf("demo data reloaded on restart: marker %q -> %q (%v)", marker, again, err)
	}
	if n := count(s2); n == 0 {
		t.Fatal("demo profiles gone after restart")
	}
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
