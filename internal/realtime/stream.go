package realtime

import "context"

// Follow accepts the changes of kind on profile profileID, and keeps
// following when that profile is merged away (profile.updated with
// PayloadMergedInto): a subscriber asked for a person, not for the id
// that person had when it subscribed. The filter keeps state, which is
// safe because the hub calls a subscription's filter from one goroutine
// at a time.
func Follow(profileID, kind string) func(Change) bool {
	cur := profileID
	return func(c Change) bool {
		if c.ProfileID != cur {
			return false
		}
		if c.Kind == ProfileUpdated {
			if to := c.String(PayloadMergedInto); to != "" {
				cur = to
			}
		}
		return c.Kind == kind
	}
}

// Pump delivers a subscription: each change — those of pending first,
// then those from changes — becomes the values convert returns, sent in
// order on the returned channel until ctx ends or changes closes. It
// calls cancel when it ends, so the hub subscription never outlives the
// reader. With coalesce, changes that queued up while values were being
// sent are skipped for the newest one: for streams of snapshots, where
// only the latest state matters and a slow reader must not fall behind.
func Pump[T any](ctx context.Context, changes <-chan Change, cancel func(), pending []Change, coalesce bool, convert func(Change) []T) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		defer cancel()
		for {
			var c Change
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
func newest(changes <-chan Change, c Change) Change {
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
