package analytics

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/store"
)

// SubtractErased is EraseEvents cut by a crash after its subtraction,
// before the items are deleted (the lease taken and left to lapse).
func (s *Service) SubtractErased(ctx context.Context, tn store.Tenant, erasureID, profileID string) error {
	sys, ws := tn.System(), tn.Workspace()
	token := "erasure:" + erasureID
	if err := s.waitLease(ctx, sys, ws, token); err != nil {
		return err
	}
	if err := s.subtractErasure(ctx, tn, sys, token, erasureID+"/"+profileID, profileID); err != nil {
		return err
	}
	// The crash: the lease lapses (a fold may run), the events stay.
	return s.updateHeld(ctx, sys, ws, token, func(c *cursor) { c.LeaseUntil = time.Time{} })
}

// TidyAfter sets how long settled marks of moves wait for the roller.
func (s *Service) TidyAfter(d time.Duration) { s.tidyAfter = d }

// Marks counts the marks of moves not tidied yet.
func Marks(ctx context.Context, tn store.Tenant) (int, error) {
	all, err := readMarks(ctx, tn)
	return len(all), err
}
