package resolvers

import (
	"context"
	"strings"
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Page sizes: default and the most one request may ask for.
const (
	defaultFirst = 20
	maxFirst     = 100
)

func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultFirst, nil
	}
	if *first < 0 || *first > maxFirst {
		return 0, apperr.Invalid("first", "must be between 0 and %d", maxFirst)
	}
	return *first, nil
}

// Cursors handed to clients carry a prefix naming the list they belong to,
// so a cursor from one list (or order) is refused by another instead of
// silently positioning it.
func wrapCursor(list, key string) string { return list + "." + key }

// pageRequest checks a connection's arguments: the caller's workspace, the
// page size and the cursor of list.
func (r *Resolver) pageRequest(ctx context.Context, list string, first *int, after *string) (store.Tenant, int, string, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return tn, 0, "", err
	}
	n, err := pageSize(first)
	if err != nil {
		return tn, 0, "", err
	}
	key, err := unwrapCursor(list, after)
	return tn, n, key, err
}

func unwrapCursor(list string, after *string) (string, error) {
	if after == nil || *after == "" {
		return "", nil
	}
	key, ok := strings.CutPrefix(*after, list+".")
	if !ok || key == "" {
		return "", apperr.Invalid("after", "malformed cursor")
	}
	return key, nil
}

func toProfile(p *profile.Profile) *model.Profile {
	first, last := p.FirstSeenAt, p.LastSeenAt
	return &model.Profile{
		ID: p.ID, Traits: p.Traits, EventCount: int(p.EventCount),
		FirstSeenAt: &first, LastSeenAt: &last, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		MergedFrom: p.MergedFrom,
	}
}

func toIdentifiers(in []model.IdentifierInput) []identity.Identifier {
	out := make([]identity.Identifier, len(in))
	for i, id := range in {
		out[i] = identity.Identifier{Type: id.Type, Value: id.Value}
	}
	return out
}

func toTimelineItem(e *timeline.Event) *model.TimelineItem {
	item := &model.TimelineItem{
		ID: e.ID, Kind: model.TimelineKind(e.Kind), Name: e.Name, Properties: e.Properties,
		MessageID: e.MessageID, OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, ProfileID: e.ProfileID,
		Channel: optional(e.Channel), Subject: optional(e.Subject), Body: optional(e.Body), Actor: optional(e.Actor),
	}
	if e.InteractionKind != "" {
		k := model.InteractionKind(e.InteractionKind)
		item.InteractionKind = &k
	}
	if e.Direction != "" {
		d := model.Direction(e.Direction)
		item.Direction = &d
	}
	return item
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optionalTime is nil for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func pageInfo(cursors []string, hasNext, hasPrev bool) *model.PageInfo {
	pi := &model.PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrev}
	if len(cursors) > 0 {
		pi.StartCursor = &cursors[0]
		pi.EndCursor = &cursors[len(cursors)-1]
	}
	return pi
}

// timelineEndCursor is a timeline page's endCursor when the read's scan cap
// cut the page short: the position of the last item the read scanned,
// which may be a filtered-out item past the last edge, and the page may
// have no edges at all. This departs from the strict Relay reading that
// endCursor is the last edge's cursor, on purpose: cursors are opaque, and
// a page shorter than first (even empty) with hasNextPage true means "keep
// going from endCursor". Handing out the last edge's cursor instead would
// make the next page rescan the same filtered-out items and, after more
// than the cap of them, leave the client with no cursor at all. It is an
// ordinary timeline cursor: after accepts it and other lists refuse it.
func timelineEndCursor(key string) *string {
	c := wrapCursor("t", key)
	return &c
}

var profileOrders = map[model.ProfileOrder]profile.Order{
	model.ProfileOrderCreatedAtDesc:  profile.CreatedDesc,
	model.ProfileOrderCreatedAtAsc:   profile.CreatedAsc,
	model.ProfileOrderUpdatedAtDesc:  profile.UpdatedDesc,
	model.ProfileOrderLastSeenAtDesc: profile.LastSeenDesc,
}

// linkedProfile is the profile a CRM object links to (nil when it links
// none, or the profile is gone).
func (r *Resolver) linkedProfile(ctx context.Context, id string) (*model.Profile, error) {
	if id == "" {
		return nil, nil
	}
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	p, err := r.profileDoc(ctx, tn, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return toProfile(p), nil
}

// linkedAccount is the account a CRM object links to (nil when it links
// none, or the account is gone).
func (r *Resolver) linkedAccount(ctx context.Context, id string) (*model.Account, error) {
	if id == "" {
		return nil, nil
	}
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	a, err := r.accounts.Get(ctx, tn, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return toAccount(a), nil
}
