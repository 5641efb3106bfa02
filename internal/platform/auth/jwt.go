package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Leeway absorbs clock skew between the token issuer and this server.
const Leeway = 30 * time.Second

// maxTokenLen bounds the work done on a hostile header before any crypto;
// Halo's tokens are a few hundred bytes.
const maxTokenLen = 4096

// workspaceRE is the shape of a workspace id. It ends up in storage keys and
// logs, so anything outside a conservative charset is refused at the edge.
var workspaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Error is a token verification failure. Reason is short and safe to show
// to the client; the wrapped error (the jwt library's detail) is for logs.
type Error struct {
	Reason string
	err    error
}

func (e *Error) Error() string {
	if e.err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.err.Error()
}

func (e *Error) Unwrap() error { return e.err }

// Reason is the client-safe reason of a verification failure err: its
// *Error's Reason, else ReasonInvalid.
func Reason(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ReasonInvalid
}

// Reasons clients see. Deliberately coarse: telling an attacker which check
// failed (signature vs. algorithm vs. claim) helps nobody else.
const (
	ReasonExpired          = "token expired"
	ReasonInvalid          = "invalid token"
	ReasonMissingExp       = "token has no expiry"
	ReasonInvalidWorkspace = "token has no valid workspace"
)

// claims is the JWT payload Halo reads and writes.
type claims struct {
	Workspace string `json:"workspace"`
	// Scope is space-separated, as in OAuth 2.0 (RFC 8693 "scope" claim).
	Scope string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks bearer tokens and turns them into Principals. It accepts
// HS256 tokens signed with a shared secret (dev, simple deployments) and/or
// RS256 and ES256 tokens signed with a key published at a JWKS URL
// (production). Each algorithm is tied to its kind of key: HS256 is only
// ever checked against the secret, RS256/ES256 only against a published key
// of the matching type, so neither alg "none" nor the HS/RS confusion
// (an HS256 token "signed" with the RSA public key) can get through.
type Verifier struct {
	secret []byte          // nil: HS256 refused
	jwks   keyfunc.Keyfunc // nil: RS256/ES256 refused
	parser *jwt.Parser
}

// Options configures NewVerifier. At least one of Secret and JWKSURL is
// required.
type Options struct {
	// Secret turns on HS256 tokens signed with it.
	Secret []byte
	// JWKSURL turns on RS256 and ES256 tokens signed with a key published
	// there. The set is fetched at start, cached, re-fetched every
	// JWKSRefresh (default 1 h) and, when a token names a kid the cache
	// lacks (key rotation), at once — at most once per JWKSUnknownKID
	// (default 30 s), so tokens with made-up kids cannot make Halo hammer
	// the identity provider.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSUnknownKID time.Duration
	// HTTPClient fetches the key set (default: http.DefaultClient with a
	// 10 s timeout per fetch).
	HTTPClient *http.Client
	// Issuer and Audience, when set, must match the token's iss and (one
	// of) its aud.
	Issuer   string
	Audience string
	// Leeway absorbs clock skew on exp, nbf and iat (default Leeway).
	Leeway time.Duration
	// Logger gets key-set fetch failures (default slog.Default()).
	Logger *slog.Logger
}

// jwksFetchTimeout bounds one fetch of the key set, including the first one
// at start and the ones a request waits for on an unknown kid.
const jwksFetchTimeout = 10 * time.Second

// minRSABits refuses published RSA keys too short to be safe (RFC 7518
// §3.3 asks for 2048 bits).
const minRSABits = 2048

// NewVerifier builds a verifier from o. With a JWKS URL it fetches the key
// set before returning; a failed first fetch is logged, not returned, so
// an identity provider that is briefly down does not keep Halo from
// starting (tokens are refused until a fetch succeeds). The background
// refresh stops when ctx is done: cancel it at shutdown.
func NewVerifier(ctx context.Context, o Options) (*Verifier, error) {
	if len(o.Secret) == 0 && o.JWKSURL == "" {
		return nil, errors.New("verifier: neither an HS256 secret nor a JWKS URL given")
	}
	if o.Leeway == 0 {
		o.Leeway = Leeway
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	v := &Verifier{}
	var methods []string
	if len(o.Secret) > 0 {
		v.secret = append([]byte(nil), o.Secret...)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if o.JWKSURL != "" {
		refresh := o.JWKSRefresh
		if refresh <= 0 {
			refresh = time.Hour
		}
		unknownKID := o.JWKSUnknownKID
		if unknownKID <= 0 {
			unknownKID = 30 * time.Second
		}
		logger := o.Logger
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
			Client:      o.HTTPClient,
			HTTPTimeout: jwksFetchTimeout,
			// Burst 1: the first unknown kid refreshes at once.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKID), 1),
			// Never queue a request behind the limiter: a kid still
			// unknown after the last allowed refresh is refused at once
			// (the limiter answers without sleeping when the next token
			// is further away than this). Not tighter: the limiter measures
			// the deadline after the context is made, and a busy machine
			// can spend a millisecond in between, refusing a token that is
			// there.
			RateLimitWaitMax: 200 * time.Millisecond,
			RefreshInterval:  refresh,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					// The URL is configuration, not a secret; the error
					// says whether it was DNS, TLS, status or JSON.
					logger.ErrorContext(ctx, "fetch JWKS", "url", u, "err", err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("verifier: JWKS %s: %w", o.JWKSURL, err)
		}
		v.jwks = kf
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// NewHS256Verifier verifies HS256 tokens signed with secret, no iss or aud
// checks. The algorithm is pinned: a token claiming any other alg (none,
// RS256 with the secret as a "public key", HS384…) is rejected before its
// signature is considered.
func NewHS256Verifier(secret []byte) *Verifier {
	v, err := NewVerifier(context.Background(), Options{Secret: secret})
	if err != nil {
		panic(err) // only an empty secret gets here: a programming error
	}
	return v
}

// Verify checks token and returns the caller it names. Errors are *Error.
// ctx bounds a key-set fetch an unknown kid may trigger.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return Principal{}, &Error{Reason: ReasonInvalid, err: fmt.Errorf("token length %d", len(token))}
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, &Error{Reason: ReasonExpired, err: err}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt == nil:
		return Principal{}, &Error{Reason: ReasonMissingExp, err: err}
	default:
		return Principal{}, &Error{Reason: ReasonInvalid, err: err}
	}
	if !workspaceRE.MatchString(c.Workspace) {
		return Principal{}, &Error{Reason: ReasonInvalidWorkspace, err: fmt.Errorf("workspace claim %q", truncate(c.Workspace, 80))}
	}
	return Principal{
		Workspace: c.Workspace,
		Subject:   c.Subject,
		Scopes:    parseScopes(c.Scope),
		ExpiresAt: c.ExpiresAt.Time, // WithExpirationRequired: never nil here
	}, nil
}

// key picks the verification key for t. WithValidMethods has already
// refused algorithms not enabled; the checks on the method's Go type repeat
// it so a future parser option change cannot silently widen it.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.secret == nil || alg != jwt.SigningMethodHS256.Alg() {
			return nil, fmt.Errorf("unexpected signing method %q", alg)
		}
		// Never a published key, whatever kid says: those are public.
		return v.secret, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodECDSA:
		if v.jwks == nil {
			return nil, fmt.Errorf("unexpected signing method %q", alg)
		}
	default:
		return nil, fmt.Errorf("unexpected signing method %q", alg)
	}
	store := v.jwks.Storage()
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok || kid == "" {
			return nil, errors.New("kid is not a non-empty string")
		}
		jwk, err := store.KeyRead(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", truncate(kid, 80), err)
		}
		return publishedKey(jwk, alg)
	}
	// No kid: any published key of the right kind may have signed it.
	all, err := store.KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("read key set: %w", err)
	}
	var set jwt.VerificationKeySet
	for _, jwk := range all {
		if k, err := publishedKey(jwk, alg); err == nil {
			set.Keys = append(set.Keys, k)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no published key fits %s", alg)
	}
	return set, nil
}

// publishedKey returns jwk's public key if it may verify an alg token: the
// key's own "use" and "alg" (when published) must allow it, and its type
// must be the one alg is pinned to — RSA (2048 bits or more) for RS256,
// EC P-256 for ES256.
func publishedKey(jwk jwkset.JWK, alg string) (any, error) {
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("key %q is for %q, not signatures", m.KID, m.USE)
	}
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, fmt.Errorf("key %q is for %s, token says %s", m.KID, m.ALG, alg)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public() // a set that (wrongly) publishes private keys
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg == jwt.SigningMethodRS256.Alg() && k.N.BitLen() >= minRSABits {
			return k, nil
		}
	case *ecdsa.PublicKey:
		if alg == jwt.SigningMethodES256.Alg() && k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key %q (%T) does not fit %s", m.KID, key, alg)
}

// IssueHS256 signs a token for p valid for ttl. Halo does not issue tokens
// in production; this is for the dev token and tests.
func IssueHS256(secret []byte, p Principal, ttl time.Duration) (string, error) {
	if !workspaceRE.MatchString(p.Workspace) {
		return "", fmt.Errorf("issue token: invalid workspace %q", p.Workspace)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("issue token: ttl must be positive, got %s", ttl)
	}
	now := time.Now()
	c := claims{
		Workspace: p.Workspace,
		Scope:     strings.Join(p.Scopes, " "),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}

// parseScopes splits the scope claim, dropping duplicates but keeping order.
func parseScopes(s string) []string {
	fields := strings.Fields(s)
	out := make([]string, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
