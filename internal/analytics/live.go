package analytics

import (
	"context"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"log/slog"
	"reflect"
	"time"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// LiveEvery is the least time between two figures of a live tile.
const LiveEvery = time.Second

// LiveVolume streams the bucket under way of an event-volume series (q's
// Since and Until are ignored): its figures at once, then again when they
// change, at most once per LiveEvery. It reads again after items were
// appended anywhere in the workspace (any instance: the hub follows the
// changes outbox) and when a new bucket begins; figures equal to the last
// ones sent are not sent again. The stream ends with ctx, or when the hub
// closes.
func (s *Service) LiveVolume(ctx context.Context, hub *realtime.Hub, tn store.Tenant, q VolumeQuery) (<-chan *Volume, error) {
	if q.GroupBy == ByProperty {
		// A walk of every event each second is no tile.
		return nil, apperr.Invalid("groupBy", "PROPERTY is not live: ask eventVolume for it")
	}
	current := func() (*Volume, error) {
		now := s.clock()
		q.Since, q.Until = now, now.Add(time.Nanosecond)
		return s.EventVolume(ctx, tn, q)
	}
	// Subscribed before the first read, so that no item appended between
	// them goes unnoticed; bad input ends it at once.
	changes, cancel := hub.Subscribe(tn.Workspace(), func(c realtime.Change) bool {
		return c.Kind == realtime.TimelineAppended
	}, "")
	// The hub drops a subscriber that falls its buffer behind (a
	// trackBatch over hundreds of profiles is that many changes): a
	// drain reads every change at once, from the start, and leaves one
	// pending signal. It ends when the subscription does.
	stale := make(chan struct{}, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for range changes {
			select {
			case stale <- struct{}{}:
			default:
			}
		}
	}()
	first, err := current()
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan *Volume)
	go func() {
		defer close(out)
		defer cancel()
		tick := time.NewTicker(LiveEvery)
		defer tick.Stop()
		var last *Volume
		next, dirty := first, false
		for {
			if next != nil && !reflect.DeepEqual(next, last) {
				select {
				case out <- next:
				case <-ctx.Done():
					return
				}
				last = next
			}
			next = nil
			select {
			case <-stale:
				dirty = true
				continue
			case <-ended:
				return // the hub closed
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			if !dirty && last != nil && s.clock().Before(last.Span.End()) {
				continue
			}
			v, err := current()
			if err != nil {
				if ctx.Err() == nil {
					slog.WarnContext(ctx, "eventVolumeLive: read", "workspace", tn.Workspace(), "err", err)
				}
				continue
			}
			next, dirty = v, false
		}
	}()
	return out, nil
}
