package resolvers

import (
	"context"
	"errors"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// WithHub turns on real time: the services publish their changes to hub,
// and subscriptions read from it. Without it, subscriptions fail.
func WithHub(h *realtime.Hub) Option {
	return func(o *options) { o.hub = h }
}

// subscribeStart resolves the caller's workspace, and fails when this
// process has no hub to subscribe to.
func (r *Resolver) subscribeStart(ctx context.Context) (store.Tenant, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return store.Tenant{}, err
	}
	if r.hub == nil {
		return store.Tenant{}, errors.New("real time is not enabled in this process")
	}
	return tn, nil
}

// subscribed maps a domain stream to its GraphQL one, or passes err on.
// The domain stream ends with ctx as well, so leaving early here never
// leaves its goroutine behind.
func subscribed[D, G any](ctx context.Context, in <-chan D, err error, to func(D) G) (<-chan G, error) {
	if err != nil {
		return nil, err
	}
	out := make(chan G)
	go func() {
		defer close(out)
		for v := range in {
			select {
			case out <- to(v):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// snapshots is subscribed for a stream of snapshots (profileUpdated),
// where only the latest state matters: while the client is not reading,
// a newer value replaces the one waiting, so this stage never delivers a
// snapshot the domain stream has already superseded.
func snapshots[D, G any](ctx context.Context, in <-chan D, err error, to func(D) G) (<-chan G, error) {
	if err != nil {
		return nil, err
	}
	out := make(chan G)
	go func() {
		defer close(out)
		for {
			var waiting D
			select {
			case v, ok := <-in:
				if !ok {
					return
				}
				waiting = v
			case <-ctx.Done():
				return
			}
		send:
			for {
				select {
				case out <- to(waiting):
					break send
				case newer, ok := <-in:
					if !ok {
						return
					}
					waiting = newer
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
