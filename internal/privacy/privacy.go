// Package privacy answers data-subject requests: export everything stored
// about a person (GDPR Art. 15/20), erase a person (Art. 17) with
// suppression of their identifiers, and the PII settings that decide what
// is masked without scope pii:read.
package privacy

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/wscache"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/store"
)

// Service runs data-subject requests (New).
type Service struct {
	clock    func() time.Time
	identity *identity.Resolver
	// segments makes an erased person exit their segments.
	segments *segment.Engine
	// derived, when set, returns what is derived from the person's data
	// in readable form (computed trait values, scores): the profile
	// document keeps them in packed binary forms an export cannot show.
	derived func(ctx context.Context, tn store.Tenant, p *profile.Profile) (map[string]any, error)
	// events, when set, is the timeline step of an erasure (rollups too).
	events EventsEraser

	// pii holds each workspace's compiled PII settings for PIICacheTTL
	// (PIIMaskerFor); SetPIISettings invalidates it.
	pii wscache.Cache[*PIIMasker]
}
