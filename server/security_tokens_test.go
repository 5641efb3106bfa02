package main

// Hostile tokens against the real server, over every way a token arrives:
// the Authorization header of POST /graphql, of a graphql-sse request, and
// the connection_init payload of a websocket. Each case asserts the exact
// refusal (401 UNAUTHENTICATED; websocket close 4403 with the reason) and
// that the store did not change. Helpers shared with the other
// security_*_test.go files of this part live here too.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/platform/auth/authtest"
	"github.com/halo-cdp/halo/store"
)

// hostileIdentify is the write every hostile request attempts.
const hostileIdentify = `mutation { identify(input: {identifiers: [{type: "email", value: "mallory@example.com"}], traits: {owned: true}}) { profile { id } } }`

// storeDigest is a fingerprint of every document of every collection of
// workspace ws and of the system workspace, as stored.
type storeDigest struct {
	docs int
	sum  string
}

// secStore opens the server's store beside it (as privacy_e2e_test does).
func secStore(t *testing.T, s *testServer) *store.Store {
	t.Helper()
	st, err := openStore(context.Background(), s.Config)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

func takeStoreDigest(t *testing.T, st *store.Store, ws string) storeDigest {
	t.Helper()
	ctx := context.Background()
	h := sha256.New()
	n := 0
	for _, w := range []string{ws, store.SystemWorkspace} {
		tn := st.Tenant(w)
		for _, spec := range app.Collections {
			if slices.Contains(analytics.Background, spec.Name) {
				// Folded in the background from the stored events, which
				// the digest holds: a fold may land between two digests.
				continue
			}
			c := tn.C(spec.Name)
			q := store.Query{Index: store.ByID, Limit: 1000}
			for {
				docs, last, err := c.Scan(ctx, q)
				if err != nil {
					t.Fatalf("scan %s: %v", spec.Name, err)
				}
				for _, raw := range docs {
					n++
					h.Write([]byte(w + "/" + spec.Name + "\x00"))
					h.Write(raw)
				}
				if len(docs) < q.Limit {
					break
				}
				q.After = last
			}
		}
	}
	return storeDigest{docs: n, sum: hex.EncodeToString(h.Sum(nil))}
}

// requireStoreDigest fails unless the store still matches before.
func requireStoreDigest(t *testing.T, st *store.Store, ws string, before storeDigest) {
	t.Helper()
	if after := takeStoreDigest(t, st, ws); after != before {
		t.Fatalf("store changed: %d docs %s → %d docs %s", before.docs, before.sum[:12], after.docs, after.sum[:12])
	}
}

// postGQL sends query as POST /graphql with token and extra headers.
func postGQL(t *testing.T, s *testServer, token, query string, headers map[string]string) gqlResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":`+jsonString(query)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.do(t, req, token)
}

func jsonString(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// wsRefused dials with payload as connection_init, tries a write anyway,
// and returns the close the server ended the connection with.
func wsRefused(t *testing.T, s *testServer, payload map[string]any) websocket.CloseError {
	t.Helper()
	c := dialWS(t, s, payload)
	// A client that does not wait for the ack: this must not run either.
	b := []byte(`{"query":` + jsonString(hostileIdentify) + `}`)
	_ = c.conn.Write(context.Background(), websocket.MessageText,
		[]byte(`{"id":"1","type":"subscribe","payload":`+string(b)+`}`))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if ok {
				if m.Type == "connection_ack" || m.Type == "next" {
					t.Fatalf("refused connection got %s %s", m.Type, m.Payload)
				}
				continue
			}
			var ce websocket.CloseError
			if err := <-c.closed; !errors.As(err, &ce) {
				t.Fatalf("connection ended by %v, not a close frame", err)
			}
			return ce
		case <-deadline:
			t.Fatal("connection not closed")
		}
	}
}

func TestSecurityTokens(t *testing.T) {
	t.Parallel()
	ks := authtest.NewKeySet(t)
	const iss, aud = "https://idp.example.com/", "halo"
	s := startServer(t, serverOptions{Env: map[string]string{
		"HALO_JWKS_URL":     ks.URL(),
		"HALO_JWT_ISSUER":   iss,
		"HALO_JWT_AUDIENCE": aud,
		"HALO_RATE_LIMIT":   "0",
	}})
	st := secStore(t, s)
	claims := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := authtest.Claims("acme", strings.Join(auth.AllScopes, " "))
		c["iss"], c["aud"] = iss, aud
		if f != nil {
			f(c)
		}
		return c
	}
	rs := func(f func(jwt.MapClaims)) string {
		return authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, claims(f))
	}

	// Controls: RS256, ES256 and HS256 tokens with the right claims work,
	// and a write shows in the digest.
	before := takeStoreDigest(t, st, "acme")
	for name, tok := range map[string]string{
		"RS256": rs(nil),
		"ES256": authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.ECKid, claims(nil)),
		"HS256": authtest.Sign(t, jwt.SigningMethodHS256, s.Secret, "", claims(nil)),
	} {
		r := s.gql(t, tok, hostileIdentify, nil)
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("control %s: %d %s", name, r.Status, r.Body)
		}
	}
	if takeStoreDigest(t, st, "acme") == before {
		t.Fatal("the digest does not see a write")
	}
	connectWS(t, s, rs(nil))

	other := authtest.NewRSA(t, 2048)
	hostile := []struct {
		name, token, reason string
	}{
		{"missing", "", auth.ReasonMissing},
		{"expired", rs(func(c jwt.MapClaims) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}), auth.ReasonExpired},
		{"no exp", rs(func(c jwt.MapClaims) { delete(c, "exp") }), auth.ReasonMissingExp},
		{"not yet valid", rs(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), auth.ReasonInvalid},
		{"issued in the future", rs(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }), auth.ReasonInvalid},
		{"wrong signature", authtest.Sign(t, jwt.SigningMethodRS256, other, authtest.RSAKid, claims(nil)), auth.ReasonInvalid},
		{"alg none", authtest.Sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, authtest.RSAKid, claims(nil)), auth.ReasonInvalid},
		{"HS256 with the RSA public key", authtest.Sign(t, jwt.SigningMethodHS256, authtest.PublicPEM(t, &ks.RSA.PublicKey), authtest.RSAKid, claims(nil)), auth.ReasonInvalid},
		{"ES256 naming the RSA key", authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.RSAKid, claims(nil)), auth.ReasonInvalid},
		{"wrong aud", rs(func(c jwt.MapClaims) { c["aud"] = "billing" }), auth.ReasonInvalid},
		{"wrong iss", rs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" }), auth.ReasonInvalid},
		{"HS256 without iss and aud", s.token(t, "acme"), auth.ReasonInvalid},
	}
	before = takeStoreDigest(t, st, "acme")
	for _, h := range hostile {
		t.Run("http/"+h.name, func(t *testing.T) {
			r := postGQL(t, s, h.token, hostileIdentify, nil)
			r.requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
			if len(r.Errors) != 1 || r.Errors[0].Message != h.reason || r.Data != nil {
				t.Fatalf("body %s, want only %q", r.Body, h.reason)
			}
			requireStoreDigest(t, st, "acme", before)
		})
		t.Run("sse/"+h.name, func(t *testing.T) {
			r := postGQL(t, s, h.token, hostileIdentify, map[string]string{"Accept": "text/event-stream"})
			r.requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q: the refusal must not be a stream", ct)
			}
			requireStoreDigest(t, st, "acme", before)
		})
		t.Run("websocket/"+h.name, func(t *testing.T) {
			payload := map[string]any{}
			if h.token != "" {
				payload["Authorization"] = "Bearer " + h.token
			}
			ce := wsRefused(t, s, payload)
			if ce.Code != closeForbidden || ce.Reason != "Forbidden: "+h.reason {
				t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Reason, closeForbidden, "Forbidden: "+h.reason)
			}
			requireStoreDigest(t, st, "acme", before)
		})
	}
}

// With only a JWKS URL there is no shared secret: HS256 is refused
// outright, whichever key signed it.
func TestSecurityTokensJWKSOnly(t *testing.T) {
	t.Parallel()
	ks := authtest.NewKeySet(t)
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_JWKS_URL": ks.URL(), "HALO_JWT_SECRET": ""}})
	if len(s.Config.JWTSecret) != 0 || s.Config.Dev {
		t.Fatalf("config: secret %d bytes, dev %v", len(s.Config.JWTSecret), s.Config.Dev)
	}
	st := secStore(t, s)
	good := authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.ECKid, authtest.Claims("acme", auth.ScopeProfilesRead))
	s.gql(t, good, viewerQuery, nil).requireOK(t)
	before := takeStoreDigest(t, st, "acme")
	for name, tok := range map[string]string{
		"HS256 with the RSA public key": authtest.Sign(t, jwt.SigningMethodHS256, authtest.PublicPEM(t, &ks.RSA.PublicKey), authtest.RSAKid, authtest.Claims("acme", auth.ScopeProfilesWrite)),
		"HS256 with a guessed secret":   authtest.Sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", authtest.Claims("acme", auth.ScopeProfilesWrite)),
	} {
		t.Run(name, func(t *testing.T) {
			r := postGQL(t, s, tok, hostileIdentify, nil)
			r.requireError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
			ce := wsRefused(t, s, map[string]any{"token": tok})
			if ce.Code != closeForbidden {
				t.Fatalf("websocket closed with %d", ce.Code)
			}
			requireStoreDigest(t, st, "acme", before)
		})
	}
	if strings.Contains(s.output(), "Dev token") {
		t.Fatal("a JWKS-only server printed a dev token")
	}
}
