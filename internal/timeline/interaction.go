package timeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/halo-cdp/halo/internal/segment/rule"
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

// LogInteraction records an interaction on the profile's timeline. With a
// messageId it is idempotent: a repeat on the same profile (or one merged
// into it) returns the stored interaction; a messageId any other item
// holds is refused (CONFLICT, naming no profile; see replay.go).
func (s *Service) LogInteraction(ctx context.Context, tn store.Tenant, in InteractionInput) (*Event, error) {
	now := s.Now().UTC()
	const f = "input"
	if !slices.Contains(InteractionKinds, in.Kind) {
		return nil, apperr.Invalid(f+".kind", "unknown interaction kind %q", in.Kind)
	}
	if in.Direction != "" && in.Direction != "INBOUND" && in.Direction != "OUTBOUND" {
		return nil, apperr.Invalid(f+".direction", "must be INBOUND or OUTBOUND")
	}
	subject, err := optionalText(f+".subject", in.Subject, 500)
	if err != nil {
		return nil, err
	}
	body, err := optionalText(f+".body", in.Body, 64<<10)
	if err != nil {
		return nil, err
	}
	actor, err := optionalText(f+".actor", in.Actor, 200)
	if err != nil {
		return nil, err
	}
	msgID, err := optionalText(f+".messageId", in.MessageID, 256)
	if err != nil {
		return nil, err
	}
	props, err := userjson.Object(in.Properties, PropertyLimits)
	if err != nil {
		return nil, apperr.Invalid(f+".properties", "%s", err.Error())
	}
	at, err := occurredAt(f+".occurredAt", in.OccurredAt, now)
	if err != nil {
		return nil, err
	}
	if in.ProfileID == "" {
		return nil, apperr.Invalid(f+".profileId", "must not be blank")
	}
	p, err := profile.Resolve(ctx, tn, in.ProfileID, s.Identity.Redirect)
	if err != nil {
		return nil, err
	}
	if msgID != "" {
		dup, err := s.existing(ctx, tn, msgID)
		if err != nil {
			return nil, err
		}
		if dup != nil {
			return s.interactionReplay(ctx, tn, dup, p.ID, f+".messageId")
		}
	}
	ev := Event{
		ID: store.NewID(), ProfileID: p.ID, OriginProfileID: p.ID, Kind: KindInteraction, Name: lower(in.Kind),
		MessageID: msgID, Properties: userjson.WithoutNulls(props), OccurredAt: at,
		ReceivedAt: now.Truncate(time.Millisecond), InteractionKind: in.Kind, Subject: subject,
		Body: body, Direction: in.Direction, Actor: actor,
	}
	if ev.MessageID == "" {
		ev.MessageID = "interaction-" + ev.ID
	}
	if err := tn.C(store.Events).Insert(ctx, ev); err != nil {
		if errors.Is(err, store.ErrDuplicateKey) {
			// Raced in from a concurrent call: nothing of this one is stored.
			dup, err := s.existing(ctx, tn, ev.MessageID)
			if err != nil || dup == nil {
				return nil, fmt.Errorf("read duplicate interaction %s: %w", ev.MessageID, err)
			}
			return s.interactionReplay(ctx, tn, dup, p.ID, f+".messageId")
		}
		return nil, fmt.Errorf("store interaction on %s: %w", p.ID, err)
	}
	orig := ev.ProfileID
	// p was read before the event was stored: it seeds the counters'
	// compare-and-swap as resolution's read does for track.
	counted, computed, err := s.count(ctx, tn, []*Event{&ev}, map[string]*profile.Profile{p.ID: p})
	if err != nil {
		return nil, err
	}
	s.afterWrite(ctx, tn, "logInteraction", counted, []string{orig}, rule.Touched{All: true})
	s.notify(ctx, tn, []TrackResult{{Event: &ev}}, computed)
	return &ev, nil
}
