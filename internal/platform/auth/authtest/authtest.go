// Package authtest serves JSON Web Key Sets and signs tokens for tests of
// the verifier and of the server's token handling.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key ids of the keys NewKeySet publishes.
const (
	RSAKid = "rsa-1"
	ECKid  = "ec-1"
)

// KeySet is a JWKS endpoint (an httptest.Server) and the private keys
// behind it. Keys can be added while it runs (rotation).
type KeySet struct {
	RSA *rsa.PrivateKey   // published as RSAKid, alg RS256
	EC  *ecdsa.PrivateKey // published as ECKid, alg ES256

	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	fetches int
}

// NewKeySet generates an RSA and an EC P-256 key, publishes them and stops
// the server when the test ends.
func NewKeySet(t testing.TB) *KeySet {
	t.Helper()
	k := &KeySet{RSA: NewRSA(t, 2048), EC: NewEC(t)}
	k.Publish(t, &k.RSA.PublicKey, RSAKid, "RS256", "sig")
	k.Publish(t, &k.EC.PublicKey, ECKid, "ES256", "sig")
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.fetches++
		body, err := json.Marshal(jwkset.JWKSMarshal{Keys: append([]jwkset.JWKMarshal(nil), k.keys...)})
		k.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// URL is the JWKS URL (HALO_JWKS_URL).
func (k *KeySet) URL() string { return k.srv.URL }

// Fetches is how many times the set was fetched.
func (k *KeySet) Fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}

// Publish adds a public key to the set; alg and use may be "" (not
// published).
func (k *KeySet) Publish(t testing.TB, pub any, kid, alg, use string) {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: kid, ALG: jwkset.ALG(alg), USE: jwkset.USE(use),
	}})
	if err != nil {
		t.Fatalf("JWK %s: %v", kid, err)
	}
	k.mu.Lock()
	k.keys = append(k.keys, j.Marshal())
	k.mu.Unlock()
}

// NewRSA generates an RSA key of bits.
func NewRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// NewEC generates an EC P-256 key.
func NewEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// PublicPEM is the PEM encoding of a public key: what an attacker uses as
// the "secret" of an HS256 token in the HS/RS confusion attack.
func PublicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Claims are valid claims for workspace with scopes (space-separated),
// subject "test", issued now and expiring in an hour.
func Claims(workspace, scope string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"workspace": workspace,
		"scope":     scope,
		"sub":       "test",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
}

// Sign signs claims with method and key; kid is put in the header unless
// empty. alg "none" needs key jwt.UnsafeAllowNoneSignatureType.
func Sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// NewECP384 generates an EC P-384 key (ES384: not an algorithm Halo pins).
func NewECP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
