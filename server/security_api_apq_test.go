package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

// postRaw sends body (any JSON value) to /graphql.
func (s *testServer) postRaw(t *testing.T, tok string, body any) gqlResponse {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return s.do(t, req, tok)
}

func apqExt(hash string, version int) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": version, "sha256Hash": hash}}
}

func sha(q string) string {
	h := sha256.Sum256([]byte(q))
	return hex.EncodeToString(h[:])
}

// apqCases: automatic persisted queries work (hash-only after
// registration, by POST and GET), and what is not registered, does not
// match or asks for more than the token may is refused.
func (w *secWorld) apqCases(t *testing.T) {
	s := w.s
	tok := s.token(t, "acme")
	q := `query($p: ID) { profile(id: $p) { id traits } }`
	vars := map[string]any{"p": w.profile}

	t.Run("hash only before registration", func(t *testing.T) {
		r := w.hostileDo(t, "PERSISTED_QUERY_NOT_FOUND", func() gqlResponse {
			return s.postRaw(t, tok, map[string]any{"variables": vars, "extensions": apqExt(sha(q), 1)})
		})
		if r.Errors[0].Message != "PersistedQueryNotFound" {
			t.Errorf("message %q, want PersistedQueryNotFound (what Apollo clients look for)", r.Errors[0].Message)
		}
	})
	t.Run("register, then hash only", func(t *testing.T) {
		r := s.postRaw(t, tok, map[string]any{"query": q, "variables": vars, "extensions": apqExt(sha(q), 1)})
		r.requireOK(t)
		full := string(r.Data)
		r = s.postRaw(t, tok, map[string]any{"variables": vars, "extensions": apqExt(sha(q), 1)})
		r.requireOK(t)
		if string(r.Data) != full || !strings.Contains(full, w.profile) {
			t.Fatalf("hash-only answer %s, want %s", r.Data, full)
		}
		ext, _ := json.Marshal(apqExt(sha(q), 1))
		vb, _ := json.Marshal(vars)
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?"+url.Values{"extensions": {string(ext)}, "variables": {string(vb)}}.Encode(), nil)
		r = s.do(t, req, tok)
		r.requireOK(t)
		if string(r.Data) != full {
			t.Fatalf("hash-only GET answer %s, want %s", r.Data, full)
		}
	})
	t.Run("hash that does not match the query", func(t *testing.T) {
		w.hostileDo(t, "BAD_USER_INPUT", func() gqlResponse {
			return s.postRaw(t, tok, map[string]any{"query": `{ viewer { workspace } }`, "extensions": apqExt(sha(q), 1)})
		})
	})
	t.Run("unsupported APQ version", func(t *testing.T) {
		w.hostileDo(t, "BAD_USER_INPUT", func() gqlResponse {
			return s.postRaw(t, tok, map[string]any{"extensions": apqExt(sha(q), 2)})
		})
	})
	t.Run("a persisted mutation still needs its scope", func(t *testing.T) {
		m := `mutation { setPIISettings(traitKeys: ["plan"], identifierTypes: []) { traitKeys } }`
		w.hostileDo(t, "FORBIDDEN", func() gqlResponse {
			return s.postRaw(t, s.token(t, "acme", auth.ScopeProfilesRead), map[string]any{"query": m, "extensions": apqExt(sha(m), 1)})
		})
		w.hostileDo(t, "FORBIDDEN", func() gqlResponse {
			return s.postRaw(t, s.token(t, "acme", auth.ScopeProfilesRead), map[string]any{"extensions": apqExt(sha(m), 1)})
		})
	})
	t.Run("a persisted query still obeys the limits", func(t *testing.T) {
		big := `{ profiles(first: 100) { nodes { timeline(first: 100) { nodes { id } } } } }`
		w.hostileDo(t, "GRAPHQL_VALIDATION_FAILED", func() gqlResponse {
			return s.postRaw(t, tok, map[string]any{"query": big, "extensions": apqExt(sha(big), 1)})
		})
	})
}
