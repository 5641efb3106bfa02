package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

// Verifier checks bearer tokens and turns them into Principals.
type Verifier struct {
	key    []byte
	parser *jwt.Parser
}

// NewHS256Verifier verifies HS256 tokens signed with secret. The algorithm
// is pinned: a token claiming any other alg (none, RS256 with the secret as
// a "public key", HS384…) is rejected before its signature is considered.
func NewHS256Verifier(secret []byte) *Verifier {
	return &Verifier{
		key: append([]byte(nil), secret...),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(Leeway),
		),
	}
}

// Verify checks token and returns the caller it names. Errors are *Error.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return Principal{}, &Error{Reason: ReasonInvalid, err: fmt.Errorf("token length %d", len(token))}
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already enforces this; checking the type too
		// means a future parser option change cannot silently widen it.
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return v.key, nil
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
	}, nil
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
