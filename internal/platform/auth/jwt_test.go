package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// sign makes a token with arbitrary claims and method, for the cases
// IssueHS256 deliberately cannot produce.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"workspace": "acme",
		"scope":     "profiles:read events:write",
		"sub":       "u1",
		"exp":       time.Now().Add(time.Hour).Unix(),
	}
}

func TestVerifyValid(t *testing.T) {
	v := NewHS256Verifier(testSecret)
	tok, err := IssueHS256(testSecret, Principal{Workspace: "demo", Subject: "dev", Scopes: AllScopes}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.Workspace != "demo" || p.Subject != "dev" || !slices.Equal(p.Scopes, AllScopes) {
		t.Fatalf("got %+v", p)
	}

	p, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, testSecret, validClaims()))
	if err != nil {
		t.Fatalf("Verify map claims: %v", err)
	}
	if !p.Has(ScopeProfilesRead) || !p.Has(ScopeEventsWrite) || p.Has(ScopePIIRead) {
		t.Fatalf("scopes %v", p.Scopes)
	}
}

func TestVerifyRejects(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims()
		mod(c)
		return c
	}
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())

	cases := []struct {
		name, token, reason string
	}{
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), ReasonExpired},
		{"missing exp", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			delete(c, "exp")
		})), ReasonMissingExp},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["nbf"] = time.Now().Add(time.Hour).Unix()
		})), ReasonInvalid},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another secret, another secret!!"), validClaims()), ReasonInvalid},
		{"alg none", noneTok, ReasonInvalid},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, validClaims()), ReasonInvalid},
		{"HS384 same secret", sign(t, jwt.SigningMethodHS384, testSecret, validClaims()), ReasonInvalid},
		{"missing workspace", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			delete(c, "workspace")
		})), ReasonInvalidWorkspace},
		{"empty workspace", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["workspace"] = ""
		})), ReasonInvalidWorkspace},
		{"workspace bad charset", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["workspace"] = "acme/../other"
		})), ReasonInvalidWorkspace},
		{"workspace too long", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["workspace"] = strings.Repeat("a", 65)
		})), ReasonInvalidWorkspace},
		{"system workspace", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["workspace"] = "_system"
		})), ReasonInvalidWorkspace},
		{"workspace not a string", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) {
			c["workspace"] = 42
		})), ReasonInvalid},
		{"garbage", "not.a.jwt", ReasonInvalid},
		{"empty", "", ReasonInvalid},
		{"huge", strings.Repeat("a", maxTokenLen+1), ReasonInvalid},
	}
	v := NewHS256Verifier(testSecret)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %T %v is not *auth.Error", err, err)
			}
			if ae.Reason != tc.reason {
				t.Fatalf("reason %q, want %q (err: %v)", ae.Reason, tc.reason, err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	v := NewHS256Verifier(testSecret)
	c := validClaims()
	c["exp"] = time.Now().Add(-Leeway / 2).Unix()
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, testSecret, c)); err != nil {
		t.Fatalf("token just past exp within leeway rejected: %v", err)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	if _, err := IssueHS256(testSecret, Principal{Workspace: ""}, time.Hour); err == nil {
		t.Fatal("empty workspace issued")
	}
	if _, err := IssueHS256(testSecret, Principal{Workspace: "demo"}, 0); err == nil {
		t.Fatal("zero ttl issued")
	}
}

func TestMiddleware(t *testing.T) {
	good, err := IssueHS256(testSecret, Principal{Workspace: "acme", Subject: "s", Scopes: []string{ScopeProfilesRead}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired := sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"workspace": "acme", "exp": time.Now().Add(-time.Hour).Unix()})

	var seen Principal
	h := Middleware(NewHS256Verifier(testSecret))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		seen = p
		w.WriteHeader(http.StatusNoContent)
	}))

	cases := []struct {
		name    string
		headers []string
		status  int
		message string
	}{
		{"valid", []string{"Bearer " + good}, http.StatusNoContent, ""},
		{"lower-case scheme", []string{"bearer " + good}, http.StatusNoContent, ""},
		{"missing", nil, http.StatusUnauthorized, ReasonMissing},
		{"empty", []string{""}, http.StatusUnauthorized, ReasonMissing},
		{"basic scheme", []string{"Basic dXNlcjpwYXNz"}, http.StatusUnauthorized, ReasonMalformedHeader},
		{"bearer without token", []string{"Bearer"}, http.StatusUnauthorized, ReasonMalformedHeader},
		{"bearer blank token", []string{"Bearer   "}, http.StatusUnauthorized, ReasonMalformedHeader},
		{"token with spaces", []string{"Bearer a b"}, http.StatusUnauthorized, ReasonMalformedHeader},
		{"two headers", []string{"Bearer " + good, "Bearer " + good}, http.StatusUnauthorized, ReasonMalformedHeader},
		{"bad token", []string{"Bearer abc.def.ghi"}, http.StatusUnauthorized, ReasonInvalid},
		{"expired", []string{"Bearer " + expired}, http.StatusUnauthorized, ReasonExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen = Principal{}
			req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			for _, v := range tc.headers {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != http.StatusUnauthorized {
				if seen.Workspace != "acme" || seen.Subject != "s" {
					t.Fatalf("principal %+v", seen)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if wa := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
				t.Errorf("WWW-Authenticate %q", wa)
			}
			var body struct {
				Errors []struct {
					Message    string
					Extensions map[string]any
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != "UNAUTHENTICATED" || body.Errors[0].Message != tc.message {
				t.Fatalf("body %s", rec.Body)
			}
		})
	}
}
