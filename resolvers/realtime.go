package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// WithHub turns on real time: the services publish their changes to hub,
// and subscriptions read from it. Without it, subscriptions fail.
func WithHub(h *realtime.Hub) Option {
	return func(o *options) { o.hub = h }
}

// subscribeStart resolves the caller's workspace, the hub and the profile
// (through merges) a subscription follows.
func (r *Resolver) subscribeStart(ctx context.Context, id, field string) (store.Tenant, *profile.Profile, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return store.Tenant{}, nil, err
	}
	if r.hub == nil {
		return store.Tenant{}, nil, errors.New("real time is not enabled in this process")
	}
	if id == "" || len(id) > 128 {
		return store.Tenant{}, nil, apperr.Invalid(field, "must be a profile id")
	}
	p, err := profile.Resolve(ctx, tn, id, r.identity.Redirect)
	if err != nil {
		return store.Tenant{}, nil, err
	}
	return tn, p, nil
}

// follow accepts the changes of kind on profile id, and keeps following
// when the profile is merged away (profile.updated with mergedInto). The
// hub calls it from one goroutine at a time.
func follow(id, kind string) func(realtime.Change) bool {
	cur := id
	return func(c realtime.Change) bool {
		if c.ProfileID != cur {
			return false
		}
		if c.Kind == realtime.ProfileUpdated {
			if to := c.String(realtime.PayloadMergedInto); to != "" {
				cur = to
			}
		}
		return c.Kind == kind
	}
}

// pump delivers a subscription: each change — those of pending first,
// then those from changes — becomes the values convert returns, sent in
// order on the returned channel until ctx ends or changes closes (cancel
// then ends the hub subscription). With coalesce, changes that queued up
// while values were being sent are skipped for the newest one: for
// streams of snapshots, where only the latest state matters.
func pump[T any](ctx context.Context, changes <-chan realtime.Change, cancel func(), pending []realtime.Change, coalesce bool, convert func(realtime.Change) []T) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		defer cancel()
		for {
			var c realtime.Change
			if len(pending) > 0 {
				c, pending = pending[0], pending[1:]
			} else {
				var ok bool
				select {
				case c, ok = <-changes:
				case <-ctx.Done():
					return
				}
				if !ok {
					return
				}
				if coalesce {
					c = newest(changes, c)
				}
			}
			for _, v := range convert(c) {
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// newest returns the last change already queued on changes, or c.
func newest(changes <-chan realtime.Change, c realtime.Change) realtime.Change {
	for {
		select {
		case next, ok := <-changes:
			if !ok {
				return c
			}
			c = next
		default:
			return c
		}
	}
}

// profileUpdates streams the profile after each of its changes, as it is
// when sent (coalesced).
func (r *Resolver) profileUpdates(ctx context.Context, tn store.Tenant, p *profile.Profile) <-chan *model.Profile {
	changes, cancel := r.hub.Subscribe(tn.Workspace(), follow(p.ID, realtime.ProfileUpdated), "")
	return pump(ctx, changes, cancel, nil, true, func(c realtime.Change) []*model.Profile {
		id := c.ProfileID
		if to := c.String(realtime.PayloadMergedInto); to != "" {
			id = to
		}
		p, err := profile.Resolve(ctx, tn, id, r.identity.Redirect)
		if err != nil {
			if ctx.Err() == nil && apperr.CodeOf(err) != apperr.NotFound {
				slog.WarnContext(ctx, "profileUpdated: read profile", "profile", id, "err", err)
			}
			return nil
		}
		return []*model.Profile{toProfile(p)}
	})
}

// timelineItems streams the items of the profile's timeline.appended
// changes, after the item `after` when set.
func (r *Resolver) timelineItems(ctx context.Context, tn store.Tenant, p *profile.Profile, after string) (<-chan *model.TimelineItem, error) {
	var (
		from    string
		pending []realtime.Change
	)
	if after != "" {
		var (
			rest []string
			err  error
		)
		if from, rest, err = r.resumePoint(ctx, tn, after); err != nil {
			return nil, err
		}
		// The rest of the change that carried `after` comes first.
		pending = []realtime.Change{{Kind: realtime.TimelineAppended, Payload: map[string]any{realtime.PayloadItemIDs: rest}}}
	}
	changes, cancel := r.hub.Subscribe(tn.Workspace(), follow(p.ID, realtime.TimelineAppended), from)
	return pump(ctx, changes, cancel, pending, false, func(c realtime.Change) []*model.TimelineItem {
		var items []*model.TimelineItem
		for _, id := range c.Strings(realtime.PayloadItemIDs) {
			ev, err := timeline.Get(ctx, tn, id)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
					slog.WarnContext(ctx, "timelineAppended: read item", "item", id, "err", err)
				}
				continue
			}
			items = append(items, toTimelineItem(ev))
		}
		return items
	}), nil
}

// resumePoint finds the outbox change that carried timeline item `after`:
// resume after that change, first sending the items it carried after
// `after` (a trackBatch change carries several). An item whose change is
// gone (older than the retention) resumes from the item's time: items
// stored within a few milliseconds before it may come again.
func (r *Resolver) resumePoint(ctx context.Context, tn store.Tenant, after string) (from string, rest []string, err error) {
	at, ok := realtime.IDTime(after)
	if !ok {
		return "", nil, apperr.Invalid("after", "must be the id of a timeline item")
	}
	var i int
	c, found, err := realtime.FindCarrier(ctx, tn, at, func(c realtime.Change) bool {
		i = slices.Index(c.Strings(realtime.PayloadItemIDs), after)
		return c.Kind == realtime.TimelineAppended && i >= 0
	})
	if err != nil || !found {
		return realtime.Floor(at), nil, err
	}
	return c.ID, c.Strings(realtime.PayloadItemIDs)[i+1:], nil
}
