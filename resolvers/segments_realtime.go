package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/store"
)

// membershipChanges streams the membership changes of segmentID and/or
// profileID (at least one set), after the membership change `after` when
// set. The outbox carries only ids; each change is read from
// membership_changes (written before it was published).
func (r *Resolver) membershipChanges(ctx context.Context, segmentID, profileID, after string) (<-chan *model.MembershipChange, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if r.hub == nil {
		return nil, errors.New("real time is not enabled in this process")
	}
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
		if _, err := r.segments.Get(ctx, tn, segmentID); err != nil {
			return nil, err
		}
	}
	cur := ""
	if profileID != "" {
		p, err := profile.Resolve(ctx, tn, profileID, r.identity.Redirect)
		if err != nil {
			return nil, err
		}
		cur = p.ID
	}
	from := ""
	if after != "" {
		if from, err = membershipResumePoint(ctx, tn, after); err != nil {
			return nil, err
		}
	}
	onProfile := func(realtime.Change) bool { return true }
	if cur != "" {
		onProfile = follow(cur, realtime.MembershipChanged)
	}
	filter := func(c realtime.Change) bool {
		return onProfile(c) && c.Kind == realtime.MembershipChanged &&
			(segmentID == "" || c.SegmentID == segmentID) &&
			c.String(realtime.PayloadChangeID) != after
	}
	changes, cancel := r.hub.Subscribe(tn.Workspace(), filter, from)
	return pump(ctx, changes, cancel, nil, false, func(c realtime.Change) []*model.MembershipChange {
		m, err := membershipChangeOf(ctx, tn, c)
		if err != nil {
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "segmentMembershipChanged: read change", "change", c.ID, "err", err)
			}
			return nil
		}
		return []*model.MembershipChange{m}
	}), nil
}

// membershipChangeOf reads the membership change an outbox change carries
// (segment.ChangeCarried).
func membershipChangeOf(ctx context.Context, tn store.Tenant, c realtime.Change) (*model.MembershipChange, error) {
	mc, err := segment.ChangeCarried(ctx, tn, c)
	if err != nil {
		return nil, err
	}
	m := toChange(mc)
	return &m, nil
}

// membershipResumePoint finds the outbox change that carried membership
// change `after` and returns its id (replay resumes after it). A change
// older than the outbox retention resumes from the membership change's
// time; the change itself is filtered out, others recorded within the same
// millisecond before it may come again.
func membershipResumePoint(ctx context.Context, tn store.Tenant, after string) (string, error) {
	at, ok := realtime.IDTime(after)
	if !ok || len(after) > 64 {
		return "", apperr.Invalid("after", "must be the id of a membership change")
	}
	c, found, err := realtime.FindCarrier(ctx, tn, at, func(c realtime.Change) bool {
		return c.Kind == realtime.MembershipChanged && c.String(realtime.PayloadChangeID) == after
	})
	if err != nil || !found {
		return realtime.Floor(at.Add(-time.Millisecond)), err
	}
	return c.ID, nil
}
