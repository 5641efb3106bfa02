package timeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/halo-cdp/halo/store"
)

// EraseEvents deletes every timeline item (events and interactions) of a
// profile (GDPR erasure) and returns how many it deleted. Idempotent.
func EraseEvents(ctx context.Context, tn store.Tenant, profileID string) (int, error) {
	c := tn.C(Events)
	n := 0
	for {
		// Deleted items leave the range: each pass reads from the start.
		docs, _, err := c.Scan(ctx, store.Query{Index: EventsByProfileTime, Eq: []any{profileID}, Limit: 1000})
		if err != nil {
			return n, fmt.Errorf("events of %s: %w", profileID, err)
		}
		if len(docs) == 0 {
			return n, nil
		}
		for _, raw := range docs {
			id, _ := raw.Lookup("_id").StringValueOK()
			if err := c.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, fmt.Errorf("erase event %s: %w", id, err)
			}
			n++
		}
	}
}
