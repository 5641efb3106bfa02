package realtime

import (
	"context"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// resumeScan bounds the search for the change that carried an item: it is
// published right after the item is stored, so within seconds of its id.
const (
	resumeWindow   = 10 * time.Second
	resumeMaxPages = 20
)

// FindCarrier scans the outbox from at (an id's time) for resumeWindow and
// returns the first change carries accepts: the one that published the id
// a subscriber resumes after.
func FindCarrier(ctx context.Context, tn store.Tenant, at time.Time, carries func(Change) bool) (Change, bool, error) {
	until := Floor(at.Add(resumeWindow))
	cursor := ""
	for range resumeMaxPages {
		docs, err := tn.C(Changes).Find(ctx, store.Query{
			Index: ChangesBySeq, Range: &store.Bound{Gte: Floor(at), Lt: until}, After: cursor, Limit: 500,
		})
		if err != nil {
			return Change{}, false, fmt.Errorf("find resume point: %w", err)
		}
		for _, d := range docs {
			b, err := decodeBatch(d.Raw)
			if err != nil {
				return Change{}, false, err
			}
			for _, c := range b.Changes {
				if carries(c) {
					return c, true, nil
				}
			}
		}
		if len(docs) < 500 {
			break
		}
		cursor = docs[len(docs)-1].Key
	}
	return Change{}, false, nil
}

// CheckResume refuses (BAD_USER_INPUT on field) a resume point minted at
// at that is older than the outbox retention: the changes after it may be
// pruned already, and a replay that silently skipped them would look
// complete. What, the thing to read instead, goes in the message.
func (h *Hub) CheckResume(field string, at time.Time, what string) error {
	if at.Before(time.Now().Add(-h.opt.Retention)) {
		return apperr.Invalid(field, "older than the outbox retention (%s): read %s for what came since, then subscribe without %s", h.opt.Retention, what, field)
	}
	return nil
}
