// Package privacy answers data-subject requests: export everything stored
// about a person (GDPR Art. 15/20), erase a person (Art. 17) with
// suppression of their identifiers, and the PII settings that decide what
// is masked without scope pii:read.
package privacy

import (
	"time"

	"github.com/halo-cdp/halo/identity"
	"github.com/halo-cdp/halo/membership"
	"github.com/halo-cdp/halo/realtime"
)

// Service runs data-subject requests.
type Service struct {
	Now      func() time.Time
	Identity *identity.Resolver
	// Segments makes an erased person exit their segments.
	Segments *membership.Engine
	// Changes, when set, is told of the changes an erasure makes.
	Changes realtime.Publisher
}
