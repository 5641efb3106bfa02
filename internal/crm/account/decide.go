package account

import (
	"context"
	"log/slog"
	"slices"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Segments is what accounts need of the segment engine: account rule
// nodes read an account's traits and counted roll-ups, so a change to
// either re-decides all its contacts.
type Segments interface {
	// Reading tells whether any active segment reads what t touched.
	Reading(ctx context.Context, tn store.Tenant, t rule.Touched) (bool, error)
	Redecide(ctx context.Context, tn store.Tenant, ids []string, cause string, t rule.Touched)
}

// MaxRedecided bounds the contacts of one account a change re-decides
// at once (the oldest links first).
const MaxRedecided = 5000

// RedecideContacts is Redecide with the service's segment engine (a
// merge of accounts, once its moves are done).
func (s *Service) RedecideContacts(ctx context.Context, tn store.Tenant, cause string, accountIDs ...string) {
	Redecide(ctx, tn, s.segments, cause, nil, accountIDs...)
}

// Redecide re-decides the segments that read accounts for the contacts of
// accountIDs ("" ones are skipped) and for the people in also (one just
// unlinked), when any active segment reads accounts at all: a change to
// an account's traits, links, deals or tickets. A failure is logged.
func Redecide(ctx context.Context, tn store.Tenant, segs Segments, cause string, also []string, accountIDs ...string) {
	if segs == nil {
		return
	}
	t := rule.Touched{Accounts: true}
	ctx = context.WithoutCancel(ctx)
	if ok, err := segs.Reading(ctx, tn, t); err != nil || !ok {
		if err != nil {
			slog.ErrorContext(ctx, "accounts: read the segments", "cause", cause, "err", err)
		}
		return
	}
	people := slices.Clone(also)
	for _, id := range accountIDs {
		if id == "" {
			continue
		}
		ids, err := contactIDs(ctx, tn, id, MaxRedecided)
		if err != nil {
			slog.ErrorContext(ctx, "accounts: read the contacts to decide their segments", "account", id, "cause", cause, "err", err)
			continue
		}
		people = append(people, ids...)
	}
	slices.Sort(people)
	if people = slices.Compact(people); len(people) > 0 {
		segs.Redecide(ctx, tn, people, cause, t)
	}
}
