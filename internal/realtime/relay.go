package realtime

import (
	"context"
	"sync/atomic"

	"github.com/halo-cdp/halo/store"
)

// Relay is the Publisher the services are built with. The hub they
// publish to is made later (app.Services.Start, once the store is
// recovered), so the services get the relay at construction and the relay
// is pointed at the hub: no service is changed after it is built. Until
// To is called, and after To(nil), Publish drops the changes (tools and
// the seed publish nothing).
type Relay struct {
	to atomic.Pointer[Publisher]
}

// NewRelay returns a relay that forwards nowhere yet.
func NewRelay() *Relay { return &Relay{} }

// To makes the relay forward to p from now on (nil: nowhere).
func (r *Relay) To(p Publisher) {
	if p == nil {
		r.to.Store(nil)
		return
	}
	r.to.Store(&p)
}

// Publish forwards cs to the current target, if any.
func (r *Relay) Publish(ctx context.Context, tn store.Tenant, cs ...Change) error {
	if p := r.to.Load(); p != nil {
		return (*p).Publish(ctx, tn, cs...)
	}
	return nil
}
