package segment

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// StreamChanges streams from hub the membership changes of segmentID
// and/or profileID (at least one set; the profile is followed through
// merges), after the membership change after when it is set. The outbox
// carries only ids: each change is read from membership_changes, written
// before it was published (ChangeCarried). Bad input is BAD_USER_INPUT on
// field "segmentId", "profileId" or "after", an unknown segment or profile
// NOT_FOUND; the stream ends with ctx.
func (e *Engine) StreamChanges(ctx context.Context, hub *realtime.Hub, tn store.Tenant, segmentID, profileID, after string) (<-chan Change, error) {
	if segmentID == "" && profileID == "" {
		return nil, apperr.Invalid("segmentId", "set segmentId, profileId or both")
	}
	if len(segmentID) > 128 {
		return nil, apperr.Invalid("segmentId", "must be a segment id")
	}
	if len(profileID) > 128 {
		return nil, apperr.Invalid("profileId", "must be a profile id")
	}
	if segmentID != "" {
		if _, err := e.Get(ctx, tn, segmentID); err != nil {
			return nil, err
		}
	}
	cur := ""
	if profileID != "" {
		p, err := profile.Resolve(ctx, tn, profileID, e.redirect)
		if err != nil {
			return nil, fmt.Errorf("profile to stream: %w", err)
		}
		cur = p.ID
	}
	from := ""
	if after != "" {
		var err error
		if from, err = changeResumePoint(ctx, hub, tn, after); err != nil {
			return nil, err
		}
	}
	onProfile := func(realtime.Change) bool { return true }
	if cur != "" {
		onProfile = realtime.Follow(cur, realtime.MembershipChanged)
	}
	// The change `after` itself is filtered out: when its carrier is gone,
	// the replay starts just before it (changeResumePoint).
	filter := func(c realtime.Change) bool {
		return onProfile(c) && c.Kind == realtime.MembershipChanged &&
			(segmentID == "" || c.SegmentID == segmentID) &&
			c.String(realtime.PayloadChangeID) != after
	}
	changes, cancel := hub.Subscribe(tn.Workspace(), filter, from)
	return realtime.Pump(ctx, changes, cancel, nil, false, func(c realtime.Change) []Change {
		mc, err := ChangeCarried(ctx, tn, c)
		if err != nil {
			// One unreadable change costs the reader that change, not
			// the stream.
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "segmentMembershipChanged: read change", "change", c.ID, "err", err)
			}
			return nil
		}
		return []Change{mc}
	}), nil
}

// StreamBuild streams the current build of dynamic segment segmentID
// from hub: its state at once, then after each step of it or of a newer
// rule's build, the latest only when the reader falls behind. A static
// list, or a segment with no recorded build, is BAD_USER_INPUT on field
// "segmentId", an unknown segment NOT_FOUND; the stream ends with ctx.
func (e *Engine) StreamBuild(ctx context.Context, hub *realtime.Hub, tn store.Tenant, segmentID string) (<-chan *Build, error) {
	if len(segmentID) > 128 {
		return nil, apperr.Invalid("segmentId", "must be a segment id")
	}
	s, err := e.Get(ctx, tn, segmentID)
	if err != nil {
		return nil, err
	}
	if s.Kind != Dynamic || s.BuildID == "" {
		return nil, apperr.Invalid("segmentId", "segment %s has no build: only a dynamic segment's rule is built", segmentID)
	}
	// Subscribed before the first read, so no step falls between them.
	changes, cancel := hub.Subscribe(tn.Workspace(), func(c realtime.Change) bool {
		return c.Kind == realtime.SegmentBuildProgressed && c.SegmentID == segmentID
	}, "")
	now := []realtime.Change{{Kind: realtime.SegmentBuildProgressed, SegmentID: segmentID}}
	return realtime.Pump(ctx, changes, cancel, now, true, func(realtime.Change) []*Build {
		s, err := e.Get(ctx, tn, segmentID)
		var b *Build
		if err == nil {
			b, err = loadBuild(ctx, tn, s)
		}
		if err != nil || b == nil {
			if err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "segmentBuildProgress: read build", "segment", segmentID, "err", err)
			}
			return nil
		}
		return []*Build{b}
	}), nil
}

// changeResumePoint finds the outbox change that carried membership
// change after and returns its id (the replay resumes after it). A change
// older than the outbox retention is refused (Hub.CheckResume); one whose
// carrier is gone nonetheless resumes from the membership change's time;
// the change itself is filtered out, others recorded within the same
// millisecond before it may come again.
func changeResumePoint(ctx context.Context, hub *realtime.Hub, tn store.Tenant, after string) (string, error) {
	at, ok := realtime.IDTime(after)
	if !ok || len(after) > 64 {
		return "", apperr.Invalid("after", "must be the id of a membership change")
	}
	if err := hub.CheckResume("after", at, "Segment.history"); err != nil {
		return "", err
	}
	c, found, err := realtime.FindCarrier(ctx, tn, at, func(c realtime.Change) bool {
		return c.Kind == realtime.MembershipChanged && c.String(realtime.PayloadChangeID) == after
	})
	if err != nil || !found {
		return realtime.Floor(at.Add(-time.Millisecond)), err
	}
	return c.ID, nil
}
