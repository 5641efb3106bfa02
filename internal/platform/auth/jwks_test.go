package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/platform/auth/authtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newVerifier(t *testing.T, o auth.Options) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o.Logger = quiet
	v, err := auth.NewVerifier(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mod(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims { f(c); return c }

func wantReason(t *testing.T, v *auth.Verifier, token, reason string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	if err == nil {
		t.Fatalf("accepted: %+v", p)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Reason != reason {
		t.Fatalf("error %v, want reason %q", err, reason)
	}
}

func TestVerifierJWKS(t *testing.T) {
	ks := authtest.NewKeySet(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	both := newVerifier(t, auth.Options{Secret: secret, JWKSURL: ks.URL()})
	jwksOnly := newVerifier(t, auth.Options{JWKSURL: ks.URL()})
	claims := func() jwt.MapClaims { return authtest.Claims("acme", "profiles:read") }

	t.Run("accepted", func(t *testing.T) {
		for name, tc := range map[string]struct {
			v   *auth.Verifier
			tok string
		}{
			"RS256 with kid":       {jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, claims())},
			"ES256 with kid":       {jwksOnly, authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.ECKid, claims())},
			"RS256 without kid":    {jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, "", claims())},
			"ES256 without kid":    {jwksOnly, authtest.Sign(t, jwt.SigningMethodES256, ks.EC, "", claims())},
			"HS256 next to JWKS":   {both, authtest.Sign(t, jwt.SigningMethodHS256, secret, "", claims())},
			"RS256 next to secret": {both, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, claims())},
		} {
			t.Run(name, func(t *testing.T) {
				p, err := tc.v.Verify(context.Background(), tc.tok)
				if err != nil {
					t.Fatal(err)
				}
				if p.Workspace != "acme" || p.Subject != "test" || !p.Has(auth.ScopeProfilesRead) {
					t.Fatalf("principal %+v", p)
				}
			})
		}
	})

	other := authtest.NewRSA(t, 2048)
	pemKey := authtest.PublicPEM(t, &ks.RSA.PublicKey)
	cases := []struct {
		name string
		v    *auth.Verifier
		tok  string
	}{
		{"RS256 by another key under a published kid", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, other, authtest.RSAKid, claims())},
		{"RS256 by another key, no kid", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, other, "", claims())},
		{"RS256 naming the EC key", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.ECKid, claims())},
		{"ES256 naming the RSA key", jwksOnly, authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.RSAKid, claims())},
		{"HS256 with the RSA public key as secret (JWKS only)", jwksOnly, authtest.Sign(t, jwt.SigningMethodHS256, pemKey, authtest.RSAKid, claims())},
		{"HS256 with the RSA public key as secret (both)", both, authtest.Sign(t, jwt.SigningMethodHS256, pemKey, authtest.RSAKid, claims())},
		{"HS256 with the RSA modulus as secret", both, authtest.Sign(t, jwt.SigningMethodHS256, ks.RSA.N.Bytes(), authtest.RSAKid, claims())},
		{"HS256 with the right secret on a JWKS-only verifier", jwksOnly, authtest.Sign(t, jwt.SigningMethodHS256, secret, "", claims())},
		{"alg none naming a published key", both, authtest.Sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, authtest.RSAKid, claims())},
		{"RS384 (not pinned)", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS384, ks.RSA, authtest.RSAKid, claims())},
		{"PS256 (not pinned)", jwksOnly, authtest.Sign(t, jwt.SigningMethodPS256, ks.RSA, authtest.RSAKid, claims())},
		{"ES384 (not pinned)", jwksOnly, authtest.Sign(t, jwt.SigningMethodES384, authtest.NewECP384(t), authtest.ECKid, claims())},
		{"unknown kid", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, "nobody", claims())},
		{"kid not a string", jwksOnly, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims())
			tok.Header["kid"] = 7
			s, err := tok.SignedString(ks.RSA)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()},
		{"not yet valid", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, mod(claims(), func(c jwt.MapClaims) {
			c["nbf"] = time.Now().Add(2 * auth.Leeway).Unix()
		}))},
		{"issued in the future", jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, mod(claims(), func(c jwt.MapClaims) {
			c["iat"] = time.Now().Add(2 * auth.Leeway).Unix()
		}))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantReason(t, tc.v, tc.tok, auth.ReasonInvalid) })
	}
	t.Run("expired RS256", func(t *testing.T) {
		wantReason(t, jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, mod(claims(), func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-2 * auth.Leeway).Unix()
		})), auth.ReasonExpired)
	})
	t.Run("RS256 without exp", func(t *testing.T) {
		wantReason(t, jwksOnly, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, mod(claims(), func(c jwt.MapClaims) {
			delete(c, "exp")
		})), auth.ReasonMissingExp)
	})
	t.Run("within leeway", func(t *testing.T) {
		c := mod(claims(), func(c jwt.MapClaims) {
			c["nbf"] = time.Now().Add(auth.Leeway / 2).Unix()
			c["iat"] = time.Now().Add(auth.Leeway / 2).Unix()
		})
		if _, err := jwksOnly.Verify(context.Background(), authtest.Sign(t, jwt.SigningMethodES256, ks.EC, authtest.ECKid, c)); err != nil {
			t.Fatalf("nbf/iat just ahead, within leeway: %v", err)
		}
	})
}

// Keys whose published metadata or type rule them out for the token's alg.
func TestVerifierPublishedKeyMetadata(t *testing.T) {
	ks := authtest.NewKeySet(t)
	wrongAlg, encKey, weak := authtest.NewRSA(t, 2048), authtest.NewRSA(t, 2048), authtest.NewRSA(t, 1024)
	ks.Publish(t, &wrongAlg.PublicKey, "rs384-only", "RS384", "sig")
	ks.Publish(t, &encKey.PublicKey, "enc", "RS256", "enc")
	ks.Publish(t, &weak.PublicKey, "weak", "", "")
	v := newVerifier(t, auth.Options{JWKSURL: ks.URL()})
	c := authtest.Claims("acme", "")
	for kid, key := range map[string]any{"rs384-only": wrongAlg, "enc": encKey, "weak": weak} {
		t.Run(kid, func(t *testing.T) {
			wantReason(t, v, authtest.Sign(t, jwt.SigningMethodRS256, key, kid, c), auth.ReasonInvalid)
		})
	}
	t.Run("no kid, only unfit keys", func(t *testing.T) {
		wantReason(t, v, authtest.Sign(t, jwt.SigningMethodRS256, weak, "", c), auth.ReasonInvalid)
	})
}

func TestVerifierIssuerAudience(t *testing.T) {
	ks := authtest.NewKeySet(t)
	v := newVerifier(t, auth.Options{JWKSURL: ks.URL(), Issuer: "https://idp.example.com/", Audience: "halo"})
	sign := func(f func(jwt.MapClaims)) string {
		c := authtest.Claims("acme", "")
		c["iss"], c["aud"] = "https://idp.example.com/", "halo"
		f(c)
		return authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, c)
	}
	for name, tok := range map[string]string{
		"aud string": sign(func(jwt.MapClaims) {}),
		"aud list":   sign(func(c jwt.MapClaims) { c["aud"] = []string{"crm", "halo"} }),
	} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, f := range map[string]func(jwt.MapClaims){
		"wrong iss":             func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" },
		"missing iss":           func(c jwt.MapClaims) { delete(c, "iss") },
		"wrong aud":             func(c jwt.MapClaims) { c["aud"] = "crm" },
		"aud list without halo": func(c jwt.MapClaims) { c["aud"] = []string{"crm", "billing"} },
		"missing aud":           func(c jwt.MapClaims) { delete(c, "aud") },
	} {
		t.Run(name, func(t *testing.T) { wantReason(t, v, sign(f), auth.ReasonInvalid) })
	}
}

// A key published after start (rotation) is picked up by the refresh a
// token with its unknown kid triggers; made-up kids right after do not
// make the verifier fetch again, nor wait for the limiter.
func TestVerifierKeyRotation(t *testing.T) {
	ks := authtest.NewKeySet(t)
	v := newVerifier(t, auth.Options{JWKSURL: ks.URL(), JWKSUnknownKID: time.Hour})
	if n := ks.Fetches(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	next := authtest.NewRSA(t, 2048)
	ks.Publish(t, &next.PublicKey, "rsa-2", "RS256", "sig")
	if _, err := v.Verify(context.Background(), authtest.Sign(t, jwt.SigningMethodRS256, next, "rsa-2", authtest.Claims("acme", ""))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := ks.Fetches(); n != 2 {
		t.Fatalf("%d fetches after rotation, want 2", n)
	}
	start := time.Now()
	for i := range 5 {
		wantReason(t, v, authtest.Sign(t, jwt.SigningMethodRS256, next, "made-up-"+string(rune('a'+i)), authtest.Claims("acme", "")), auth.ReasonInvalid)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("unknown kids waited %s", d)
	}
	if n := ks.Fetches(); n != 2 {
		t.Fatalf("%d fetches after made-up kids, want still 2", n)
	}
}

// Cancelling the verifier's context stops the background refresh.
func TestVerifierRefreshStops(t *testing.T) {
	ks := authtest.NewKeySet(t)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := auth.NewVerifier(ctx, auth.Options{JWKSURL: ks.URL(), JWKSRefresh: 5 * time.Millisecond, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ks.Fetches() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic refresh: %d fetches", ks.Fetches())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	time.Sleep(10 * time.Millisecond) // a fetch already under way may finish
	n := ks.Fetches()
	time.Sleep(50 * time.Millisecond) // ten refresh periods
	if m := ks.Fetches(); m != n {
		t.Fatalf("refresh goes on after cancel: %d → %d fetches", n, m)
	}
}

// An unreachable JWKS does not keep the server from starting; its tokens
// are refused until the set can be fetched.
func TestVerifierJWKSDown(t *testing.T) {
	down := httptest.NewServer(nil)
	url := down.URL
	down.Close()
	v := newVerifier(t, auth.Options{JWKSURL: url})
	ks := authtest.NewKeySet(t)
	wantReason(t, v, authtest.Sign(t, jwt.SigningMethodRS256, ks.RSA, authtest.RSAKid, authtest.Claims("acme", "")), auth.ReasonInvalid)
}

func TestNewVerifierNeedsAKey(t *testing.T) {
	if _, err := auth.NewVerifier(context.Background(), auth.Options{}); err == nil {
		t.Fatal("verifier without secret or JWKS")
	}
}
