// Package auth verifies bearer tokens and carries the caller (workspace,
// subject, scopes) through the request context.
package auth

import (
	"context"
	"slices"
	"time"
)

// Scopes Halo knows. Per-field enforcement comes with the schema directive.
const (
	ScopeProfilesRead  = "profiles:read"
	ScopePIIRead       = "pii:read"
	ScopeProfilesWrite = "profiles:write"
	ScopeEventsWrite   = "events:write"
	ScopeSegmentsRead  = "segments:read"
	ScopeSegmentsWrite = "segments:write"
	ScopeConsentWrite  = "consent:write"
	ScopePrivacyAdmin  = "privacy:admin"
	ScopeAnalyticsRead = "analytics:read"
	ScopeCRMRead       = "crm:read"
	ScopeCRMWrite      = "crm:write"
)

// AllScopes is every scope, in a stable order (the dev token gets them all).
var AllScopes = []string{
	ScopeProfilesRead, ScopePIIRead, ScopeProfilesWrite, ScopeEventsWrite,
	ScopeSegmentsRead, ScopeSegmentsWrite, ScopeConsentWrite, ScopePrivacyAdmin,
	ScopeAnalyticsRead, ScopeCRMRead, ScopeCRMWrite,
}

// Principal is the verified caller.
type Principal struct {
	Workspace string
	Subject   string
	Scopes    []string
	// ExpiresAt is the token's exp (zero: never, for principals made in
	// code). A single request is checked once with the verifier's leeway;
	// a long-lived connection or stream ends here.
	ExpiresAt time.Time
}

// Has reports whether the principal holds scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of the request, if authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok && p.Workspace != ""
}
