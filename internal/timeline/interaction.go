package timeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// InteractionInput is a CRM interaction (call, email, meeting, note,
// ticket, deal) logged on a profile.
type InteractionInput struct {
	ProfileID  string
	Kind       string // one of InteractionKinds
	Subject    string
	Body       string
	Direction  string // INBOUND, OUTBOUND or empty
	OccurredAt *time.Time
	Actor      string
	Properties any
	MessageID  string // optional idempotency key
}

// NewInteraction checks an interaction and reads the profile it goes on,
// writing nothing. With a messageId it is idempotent: a repeat on the
// same profile (or one merged into it) returns the stored interaction as
// replay; a messageId any other item holds is refused (CONFLICT, naming
// no profile; see replay.go). Otherwise it returns the item to store and
// the profile as read.
func (s *Service) NewInteraction(ctx context.Context, tn store.Tenant, in InteractionInput) (ev *Event, p *profile.Profile, replay *Event, err error) {
	now := s.clock().UTC()
	const f = "input"
	if !slices.Contains(InteractionKinds, in.Kind) {
		return nil, nil, nil, apperr.Invalid(f+".kind", "unknown interaction kind %q", in.Kind)
	}
	if in.Direction != "" && in.Direction != "INBOUND" && in.Direction != "OUTBOUND" {
		return nil, nil, nil, apperr.Invalid(f+".direction", "must be INBOUND or OUTBOUND")
	}
	subject, err := optionalText(f+".subject", in.Subject, 500)
	if err != nil {
		return nil, nil, nil, err
	}
	body, err := optionalText(f+".body", in.Body, 64<<10)
	if err != nil {
		return nil, nil, nil, err
	}
	actor, err := optionalText(f+".actor", in.Actor, 200)
	if err != nil {
		return nil, nil, nil, err
	}
	msgID, err := optionalText(f+".messageId", in.MessageID, 256)
	if err != nil {
		return nil, nil, nil, err
	}
	props, err := userjson.Object(in.Properties, PropertyLimits)
	if err != nil {
		return nil, nil, nil, apperr.Invalid(f+".properties", "%s", err.Error())
	}
	at, err := occurredAt(f+".occurredAt", in.OccurredAt, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if in.ProfileID == "" {
		return nil, nil, nil, apperr.Invalid(f+".profileId", "must not be blank")
	}
	p, err = profile.Resolve(ctx, tn, in.ProfileID, s.identity.Redirect)
	if err != nil {
		return nil, nil, nil, err
	}
	if msgID != "" {
		dup, err := s.existing(ctx, tn, msgID)
		if err != nil {
			return nil, nil, nil, err
		}
		if dup != nil {
			replay, err := s.interactionReplay(ctx, tn, dup, p.ID, f+".messageId")
			return nil, nil, replay, err
		}
	}
	ev = &Event{
		ID: store.NewID(), ProfileID: p.ID, OriginProfileID: p.ID, Kind: KindInteraction, Name: lower(in.Kind),
		MessageID: msgID, Properties: userjson.WithoutNulls(props), OccurredAt: at,
		ReceivedAt: now.Truncate(time.Millisecond), InteractionKind: in.Kind, Subject: subject,
		Body: body, Direction: in.Direction, Actor: actor,
	}
	if ev.MessageID == "" {
		ev.MessageID = "interaction-" + ev.ID
	}
	return ev, p, nil, nil
}

// InsertInteraction stores ev, made by NewInteraction for profileID. An
// item of the same messageId that a concurrent call stored first is
// answered by the replay rule: replay, or CONFLICT; nothing of this call
// is stored then.
func (s *Service) InsertInteraction(ctx context.Context, tn store.Tenant, ev *Event, profileID string) (replay *Event, err error) {
	if err := tn.C(Events).Insert(ctx, *ev); err != nil {
		if errors.Is(err, store.ErrDuplicateKey) {
			dup, err := s.existing(ctx, tn, ev.MessageID)
			if err != nil || dup == nil {
				return nil, fmt.Errorf("read duplicate interaction %s: %w", ev.MessageID, err)
			}
			return s.interactionReplay(ctx, tn, dup, profileID, "input.messageId")
		}
		return nil, fmt.Errorf("store interaction on %s: %w", profileID, err)
	}
	return nil, nil
}
