package timeline

import (
	"context"
	"fmt"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// A messageId is unique per workspace: it is the idempotency key of one
// timeline item (Segment's semantics). A call that brings a messageId
// already stored is a duplicate only when it replays that same item for
// the same person:
//
//   - track / trackBatch: the stored item is a tracked event and at least
//     one of the call's identifiers is held now by the profile that holds
//     it (merges followed both ways);
//   - logInteraction: the stored item is an interaction on the given
//     profile, or on a profile since merged into it.
//
// Anything else is refused with CONFLICT (messageIDTaken), naming no
// profile and returning nothing of the stored item, before anything of
// the call is written. Answering it as a duplicate would hand a caller
// who merely knows (or guesses) a messageId another person's profile and
// item, and would silently drop what the caller meant to record.

// messageIDTaken refuses a messageId that another item holds.
func messageIDTaken(field, messageID string) error {
	return &apperr.Error{Code: apperr.Conflict, Field: field,
		Message: fmt.Sprintf("messageId %q is already used by another item in this workspace", messageID)}
}

// replayChecks remembers, within one track call, which (identifier set,
// holding profile) pairs were found to be the same person, so a retried
// batch of one visitor's events looks its identifiers up once.
type replayChecks map[string]bool

// trackReplay returns nil when req replays the stored event dup (same
// person), else the CONFLICT for req's messageId. Only reads.
func (s *Service) trackReplay(ctx context.Context, tn store.Tenant, req *Request, dup *Event, seen replayChecks) error {
	if dup.Kind != KindEvent {
		return messageIDTaken(req.Field+".messageId", dup.MessageID)
	}
	k := req.Key + "\x02" + dup.ProfileID
	same, ok := seen[k]
	if !ok {
		var err error
		if same, err = s.identity.HoldsAny(ctx, tn, dup.ProfileID, req.IDs); err != nil {
			return err
		}
		seen[k] = same
	}
	if !same {
		return messageIDTaken(req.Field+".messageId", dup.MessageID)
	}
	return nil
}

// interactionReplay returns the stored item dup when it is an interaction
// on profileID (live; dup may still name a profile being merged into it),
// else the CONFLICT for its messageId. Only reads.
func (s *Service) interactionReplay(ctx context.Context, tn store.Tenant, dup *Event, profileID, field string) (*Event, error) {
	if dup.Kind == KindInteraction {
		holder := dup.ProfileID
		if holder != profileID {
			var err error
			if holder, err = s.identity.LiveID(ctx, tn, holder); err != nil {
				return nil, err
			}
		}
		if holder == profileID {
			dup.ProfileID = profileID
			return dup, nil
		}
	}
	return nil, messageIDTaken(field, dup.MessageID)
}
