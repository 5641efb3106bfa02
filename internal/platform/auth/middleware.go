package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// Middleware admits only requests carrying a valid "Authorization: Bearer
// <JWT>" and puts the verified Principal in their context. Everything else
// gets 401 with a GraphQL-shaped body, so GraphQL clients surface the
// failure like any other error (extensions.code UNAUTHENTICATED).
func Middleware(v *Verifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, reason := bearerToken(r.Header.Values("Authorization"))
			if reason != "" {
				Unauthorized(w, reason, false)
				return
			}
			p, err := v.Verify(r.Context(), token)
			if err != nil {
				safe := Reason(err)
				// The library's detail helps an operator debug a client; it
				// stays in the log at debug level, never in the response.
				slog.DebugContext(r.Context(), "token rejected", "reason", safe, "err", err)
				Unauthorized(w, safe, true)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// Reasons for a missing or unusable header.
const (
	ReasonMissing         = "missing bearer token"
	ReasonMalformedHeader = "malformed Authorization header, want: Bearer <token>"
)

// bearerToken extracts the token, or returns a client-safe reason why not.
func bearerToken(values []string) (token, reason string) {
	switch len(values) {
	case 0:
		return "", ReasonMissing
	case 1:
	default:
		return "", ReasonMalformedHeader
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		if values[0] == "" {
			return "", ReasonMissing
		}
		return "", ReasonMalformedHeader
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", ReasonMalformedHeader
	}
	return tok, ""
}

// Unauthorized writes Halo's 401: a GraphQL error response with code
// UNAUTHENTICATED and the RFC 6750 challenge (error="invalid_token" when a
// token was presented but refused).
func Unauthorized(w http.ResponseWriter, reason string, tokenPresented bool) {
	challenge := `Bearer realm="halo"`
	if tokenPresented {
		challenge += `, error="invalid_token"`
	}
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{
			"message":    reason,
			"extensions": map[string]any{"code": "UNAUTHENTICATED"},
		}},
	})
}
