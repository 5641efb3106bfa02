package privacy

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/store"
)

// Deps are what the service needs from outside the package.
type Deps struct {
	Now      func() time.Time
	Identity *identity.Resolver
	// Segments makes an erased person exit their segments.
	Segments *segment.Engine
	// Derived returns what is derived from the person's data in readable
	// form (computed trait values, scores) for exports.
	Derived func(ctx context.Context, tn store.Tenant, p *profile.Profile) (map[string]any, error)
	// Events deletes a person's timeline items as a step of an erasure
	// (its id), subtracting them from what is counted of them elsewhere
	// (analytics.Service.EraseEvents); nil: timeline.EraseEvents alone.
	Events EventsEraser
}

// EventsEraser is the timeline step of an erasure.
type EventsEraser interface {
	EraseEvents(ctx context.Context, tn store.Tenant, erasureID, profileID string) (int, error)
}

// New builds the privacy service.
func New(d Deps) *Service {
	return &Service{clock: d.Now, identity: d.Identity, segments: d.Segments, derived: d.Derived, events: d.Events}
}
