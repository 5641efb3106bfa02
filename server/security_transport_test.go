package main

// The HTTP edge against hostile or careless clients: CORS from unknown
// origins, security headers, the playground outside dev, rate limits
// (HTTP, SSE, websocket operations) and their recovery, the per-connection
// subscription cap, oversized and non-UTF-8 bodies. Every refusal asserts
// its exact code and that the store did not change.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

// options sends a CORS preflight for POST /graphql from origin.
func preflight(t *testing.T, s *testServer, origin string) (*http.Response, gqlResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, s.URL+"/graphql", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r gqlResponse
	r.Status, r.Header, r.Body = res.StatusCode, res.Header, raw
	_ = json.Unmarshal(raw, &struct {
		Errors *[]gqlError `json:"errors"`
	}{&r.Errors})
	return res, r
}

func TestSecurityCORS(t *testing.T) {
	t.Parallel()
	const crm = "https://crm.example.com"
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_CORS_ORIGINS": crm + ", http://localhost:3000"}})
	closed := startServer(t, serverOptions{}) // no origins configured
	st := secStore(t, s)
	tok := s.token(t, "acme")
	s.gql(t, tok, hostileIdentify, nil).requireOK(t)
	before := takeStoreDigest(t, st, "acme")

	t.Run("allowed preflight", func(t *testing.T) {
		res, _ := preflight(t, s, crm)
		h := res.Header
		if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != crm ||
			h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Max-Age") != "600" ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Fatalf("preflight %d %v", res.StatusCode, h)
		}
	})
	for name, tc := range map[string]struct {
		s      *testServer
		origin string
	}{
		"unknown origin":              {s, "https://evil.example.com"},
		"allowed host, other scheme":  {s, "http://crm.example.com"},
		"allowed host, other port":    {s, "https://crm.example.com:8443"},
		"suffix of an allowed origin": {s, "https://crm.example.com.evil.example"},
		"null origin":                 {s, "null"},
		"no origins configured":       {closed, crm},
	} {
		t.Run("refused preflight/"+name, func(t *testing.T) {
			_, r := preflight(t, tc.s, tc.origin)
			r.requireError(t, http.StatusForbidden, "FORBIDDEN")
			if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Fatalf("Access-Control-Allow-Origin %q", v)
			}
			requireStoreDigest(t, st, "acme", before)
		})
	}
	t.Run("actual request", func(t *testing.T) {
		for origin, want := range map[string]string{crm: crm, "https://evil.example.com": ""} {
			r := postGQL(t, s, tok, viewerQuery, map[string]string{"Origin": origin})
			r.requireOK(t)
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("origin %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
			}
		}
	})
	t.Run("websocket from an unknown origin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, res, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"Origin": {"https://evil.example.com"}},
		})
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from evil origin: %v %v", err, res)
		}
		body, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(body), `"code":"FORBIDDEN"`) {
			t.Fatalf("body %s", body)
		}
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("websocket from an allowed origin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"Origin": {crm}},
		})
		if err != nil {
			t.Fatalf("dial from %s: %v", crm, err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})
}

func TestSecurityHeadersAndPlayground(t *testing.T) {
	t.Parallel()
	prod := startServer(t, serverOptions{})
	dev := startServer(t, serverOptions{Env: map[string]string{"HALO_DEV": "true"}})

	r := prod.gql(t, prod.token(t, "acme"), viewerQuery, nil)
	r.requireOK(t)
	for k, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": apiCSP,
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		code, body := prod.get(t, path)
		if code != http.StatusOK || strings.TrimSpace(body) != want {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	for _, path := range []string{"/", "/playground", "/playground/assets/graphiql.min.js"} {
		if code, body := prod.get(t, path); code != http.StatusNotFound || strings.Contains(body, "graphiql") {
			t.Fatalf("playground outside dev: %s %d", path, code)
		}
	}

	// / leads to the playground.
	res, err := http.Get(dev.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/playground" || !strings.Contains(string(page), `id="graphiql"`) {
		t.Fatalf("dev playground: %d at %s", res.StatusCode, res.Request.URL)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("playground may be framed: %v", res.Header)
	}
	// Everything from this server: no inline script, no other host, and
	// every file the page names is served.
	if regexp.MustCompile(`<script>`).Match(page) || !strings.Contains(csp, "script-src 'self';") {
		t.Fatalf("inline script or CSP %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(page, -1)
	if len(refs) < 5 {
		t.Fatalf("the page names %d files", len(refs))
	}
	for _, m := range refs {
		ref := string(m[1])
		if !strings.HasPrefix(ref, "/playground/assets/") {
			t.Fatalf("the page references %s: not this server's file", ref)
		}
		code, body := dev.get(t, ref)
		if code != http.StatusOK || len(body) < 100 {
			t.Fatalf("%s: %d, %d bytes", ref, code, len(body))
		}
		if strings.HasSuffix(ref, "playground.js") || strings.HasSuffix(ref, "playground.css") {
			if other := regexp.MustCompile(`(?i)(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(body); other != "" {
				t.Fatalf("%s references another host: %s", ref, other)
			}
		}
	}
	host := strings.TrimPrefix(dev.URL, "http://")
	if strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "connect-src 'self' ws://"+host) {
		t.Fatalf("CSP %q", csp)
	}
	// This server has a configured secret: no token in the page.
	if !strings.Contains(string(page), `data-token=""`) {
		t.Fatal("a token in the page of a server not in dev mode")
	}
}

// TestPlaygroundDevToken: in dev mode the playground page gives a browser
// on this machine the dev token (which works), and a request through a
// proxy none.
func TestPlaygroundDevToken(t *testing.T) {
	s := startServer(t, serverOptions{DevMode: true})
	code, page := s.get(t, "/playground")
	m := regexp.MustCompile(`data-token="([^"]+)"`).FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("dev playground: %d, no token", code)
	}
	s.gql(t, m[1], `{ viewer { workspace } }`, nil).requireOK(t)
	req := mustRequest(t, http.MethodGet, s.URL+"/playground", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), `data-token=""`) {
		t.Fatal("the dev token went to a request through a proxy")
	}
}

// rateLimitedOK checks a 429 answer: Retry-After and extensions agree.
func requireRateLimited(t *testing.T, r gqlResponse) {
	t.Helper()
	r.requireError(t, http.StatusTooManyRequests, "RATE_LIMITED")
	ra := r.Header.Get("Retry-After")
	if ra != "1" || fmt.Sprint(r.Errors[0].Extensions["retryAfter"]) != ra || r.Data != nil {
		t.Fatalf("Retry-After %q, body %s", ra, r.Body)
	}
}

func TestSecurityRateLimit(t *testing.T) {
	t.Parallel()
	// 5 requests/s per subject: a burst of 10, then one every 200 ms.
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_RATE_LIMIT": "5", "HALO_WORKSPACE_RATE_LIMIT": "0"}})
	st := secStore(t, s)
	tok := s.token(t, "acme")
	before := takeStoreDigest(t, st, "acme")

	limited := 0
	for i := range 30 {
		r := s.gql(t, tok, viewerQuery, nil)
		if r.Status == http.StatusTooManyRequests {
			requireRateLimited(t, r)
			limited = i
			break
		}
		r.requireOK(t)
	}
	if limited < 10 {
		t.Fatalf("limited after %d requests, want the burst of 10 first", limited)
	}
	t.Run("write refused, nothing executed", func(t *testing.T) {
		requireRateLimited(t, s.gql(t, tok, hostileIdentify, nil))
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("SSE refused", func(t *testing.T) {
		requireRateLimited(t, postGQL(t, s, tok, hostileIdentify, map[string]string{"Accept": "text/event-stream"}))
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("GET refused", func(t *testing.T) {
		requireRateLimited(t, s.gqlGet(t, tok, viewerQuery, nil))
	})
	t.Run("other subject unaffected", func(t *testing.T) {
		other, err := auth.IssueHS256(s.Secret, auth.Principal{Workspace: "acme", Subject: "other", Scopes: auth.AllScopes}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s.gql(t, other, viewerQuery, nil).requireOK(t)
	})
	t.Run("recovery", func(t *testing.T) {
		deadline := time.Now().Add(3 * time.Second)
		for {
			r := s.gql(t, tok, viewerQuery, nil)
			if r.Status == http.StatusOK {
				return
			}
			requireRateLimited(t, r)
			if time.Now().After(deadline) {
				t.Fatal("still limited after 3 s")
			}
			time.Sleep(50 * time.Millisecond) // a token comes every 200 ms
		}
	})
	t.Run("websocket operations", func(t *testing.T) {
		other, _ := auth.IssueHS256(s.Secret, auth.Principal{Workspace: "acme", Subject: "ws", Scopes: auth.AllScopes}, time.Hour)
		c := connectWS(t, s, other)
		for i := range 30 {
			id := c.subscribe(t, hostileIdentify, nil)
			m := c.read(t, 5*time.Second)
			for m.ID != id || m.Type == "complete" {
				m = c.read(t, 5*time.Second)
			}
			if opFailed(m, "RATE_LIMITED") {
				// The connection_init took the burst's first token.
				if !strings.Contains(string(m.Payload), `"retryAfter":1`) || i < 9 {
					t.Fatalf("after %d operations: %s", i, m.Payload)
				}
				return
			}
			if m.Type != "next" || strings.Contains(string(m.Payload), `"errors"`) {
				t.Fatalf("operation %d: %s %s", i, m.Type, m.Payload)
			}
		}
		t.Fatal("websocket operations never limited")
	})
}

func TestSecurityWorkspaceRateLimit(t *testing.T) {
	t.Parallel()
	// 2 requests/s per workspace, burst 4, whoever sends them.
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_RATE_LIMIT": "0", "HALO_WORKSPACE_RATE_LIMIT": "2"}})
	st := secStore(t, s)
	before := takeStoreDigest(t, st, "acme")
	sent := 0
	for i := range 20 {
		tok, err := auth.IssueHS256(s.Secret, auth.Principal{Workspace: "acme", Subject: fmt.Sprint("client-", i), Scopes: auth.AllScopes}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r := s.gql(t, tok, hostileIdentify, nil)
		if r.Status == http.StatusTooManyRequests {
			requireRateLimited(t, r)
			break
		}
		r.requireOK(t)
		sent++
		before = takeStoreDigest(t, st, "acme")
	}
	if sent < 4 || sent > 5 {
		t.Fatalf("%d requests before the workspace limit, want the burst of 4", sent)
	}
	requireStoreDigest(t, st, "acme", before)
	// Another workspace has its own bucket.
	s.gql(t, s.token(t, "globex"), viewerQuery, nil).requireOK(t)
}

func TestSecuritySubscriptionCap(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_MAX_SUBSCRIPTIONS": "2", "HALO_RATE_LIMIT": "0"}})
	tok := s.token(t, "acme")
	const email = "cap@example.com"
	pid := profileOf(t, s, tok, email)
	// Subscribing after an existing item replays from there: no race with
	// the moment a subscription goes live.
	vars := map[string]any{"p": pid, "after": trackEvent(t, s, tok, email, "start")}
	c := connectWS(t, s, tok)

	// delivered waits until every operation of ids got the timeline item
	// evID; an error or complete on one of them fails the test.
	delivered := func(t *testing.T, c *wsClient, evID string, ids ...string) {
		t.Helper()
		pending := map[string]bool{}
		for _, id := range ids {
			pending[id] = true
		}
		for len(pending) > 0 {
			m := c.read(t, 5*time.Second)
			if !pending[m.ID] {
				continue
			}
			var p struct {
				Data struct{ TimelineAppended subItem }
			}
			if m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || strings.Contains(string(m.Payload), `"errors"`) {
				t.Fatalf("operation %s: %s %s", m.ID, m.Type, m.Payload)
			}
			if p.Data.TimelineAppended.ID == evID {
				delete(pending, m.ID)
			}
		}
	}

	a := c.subscribe(t, timelineSub, vars)
	b := c.subscribe(t, timelineSub, vars)
	// Subscribes on one connection start concurrently: the third is sent
	// once both are known to be running.
	delivered(t, c, trackEvent(t, s, tok, email, "within_cap"), a, b)
	over := c.subscribe(t, timelineSub, vars)
	for {
		m := c.read(t, 5*time.Second)
		if m.ID == a || m.ID == b {
			t.Fatalf("subscription within the cap got %s %s", m.Type, m.Payload)
		}
		if m.ID == over {
			if !opFailed(m, "RATE_LIMITED") || !strings.Contains(string(m.Payload), `"limit":2`) {
				t.Fatalf("over the cap: %s %s", m.Type, m.Payload)
			}
			break
		}
	}
	// The others keep working.
	delivered(t, c, trackEvent(t, s, tok, email, "after_cap"), a, b)

	// Another connection has its own count.
	c2 := connectWS(t, s, tok)
	x, y := c2.subscribe(t, timelineSub, vars), c2.subscribe(t, timelineSub, vars)
	delivered(t, c2, trackEvent(t, s, tok, email, "second_connection"), x, y)

	// Completing one frees its slot, as soon as the server has processed
	// the complete (retry briefly).
	c.send(t, wsMsg{ID: a, Type: "complete"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		id := c.subscribe(t, timelineSub, vars)
		m := c.read(t, 5*time.Second)
		for m.ID != id {
			m = c.read(t, 5*time.Second)
		}
		if !opFailed(m, "RATE_LIMITED") {
			// The replay from "after" delivers at once.
			if m.Type != "next" || strings.Contains(string(m.Payload), `"errors"`) {
				t.Fatalf("new subscription: %s %s", m.Type, m.Payload)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after complete")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingReader yields n bytes of JSON-ish filler and counts what was
// read.
type countingReader struct {
	n, read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(len(p), c.n-c.read)
	for i := range k {
		p[i] = ' '
	}
	c.read += k
	return k, nil
}

func TestSecurityBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_RATE_LIMIT": "0"}})
	st := secStore(t, s)
	tok := s.token(t, "acme")
	s.gql(t, tok, hostileIdentify, nil).requireOK(t)
	before := takeStoreDigest(t, st, "acme")
	const tenMiB = 10 << 20

	send := func(t *testing.T, body io.Reader, length int64) gqlResponse {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", body)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = length
		return s.do(t, req, tok)
	}
	t.Run("10 MiB declared", func(t *testing.T) {
		body := &countingReader{n: tenMiB}
		r := send(t, io.MultiReader(strings.NewReader(`{"query":`+jsonString(hostileIdentify)+`,"x":"`), body), tenMiB+100)
		r.requireError(t, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("10 MiB chunked", func(t *testing.T) {
		body := &countingReader{n: tenMiB}
		r := send(t, io.MultiReader(strings.NewReader(`{"query":`+jsonString(hostileIdentify)+`,"x":"`), body), -1)
		r.requireError(t, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("invalid UTF-8 in a body", func(t *testing.T) {
		// Latin-1 "café" inside the operation text: raw bytes, not an escape.
		body := `{"query":"mutation { identify(input: {identifiers: [{type: \"email\", value: \"mallory@example.com\"}], traits: {name: \"caf` + "\xe9" + `\"}}) { profile { id } } }"}`
		r := send(t, strings.NewReader(body), -1)
		r.requireError(t, http.StatusBadRequest, "BAD_USER_INPUT")
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("invalid UTF-8 in variables", func(t *testing.T) {
		q := `mutation($t: JSON) { identify(input: {identifiers: [{type: "email", value: "mallory@example.com"}], traits: $t}) { profile { id } } }`
		body := `{"query":` + jsonString(q) + `,"variables":{"t":{"name":"` + "\xff\xfe" + `"}}}`
		r := send(t, strings.NewReader(body), int64(len(body)))
		r.requireError(t, http.StatusBadRequest, "BAD_USER_INPUT")
		requireStoreDigest(t, st, "acme", before)
	})
	t.Run("invalid UTF-8 in a GET query string", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?query=%7B%20viewer%20%7B%20workspace%20%7D%20%7D%FF", nil)
		r := s.do(t, req, tok)
		r.requireError(t, http.StatusBadRequest, "BAD_USER_INPUT")
	})
}
