// Package consent records and answers consent per purpose and channel:
// purposes (built-in and per workspace), the append-only consent log, the
// current state kept on the profile document, and the contact decision
// that segment rules and exports enforce.
package consent

import (
	"time"

	"github.com/halo-cdp/halo/identity"
	"github.com/halo-cdp/halo/membership"
	"github.com/halo-cdp/halo/realtime"
)

// Service records consent and answers questions about it.
type Service struct {
	Now      func() time.Time
	Identity *identity.Resolver
	// Segments re-evaluates memberships after a consent change.
	Segments *membership.Engine
	// Changes, when set, is told of every consent change (consent.changed).
	Changes realtime.Publisher
}
