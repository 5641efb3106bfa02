package ticket

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/store"
)

// Target is a priority's service-level targets: how long after a ticket
// is opened its first public answer, and its resolution, are due. Zero is
// no target.
type Target struct {
	Priority      string
	FirstResponse time.Duration
	Resolution    time.Duration
}

// DefaultTargets apply until a workspace sets its own (calendar time:
// there are no business hours).
var DefaultTargets = []Target{
	{Priority: Urgent, FirstResponse: time.Hour, Resolution: 4 * time.Hour},
	{Priority: High, FirstResponse: 4 * time.Hour, Resolution: 24 * time.Hour},
	{Priority: Normal, FirstResponse: 8 * time.Hour, Resolution: 72 * time.Hour},
	{Priority: Low, FirstResponse: 24 * time.Hour, Resolution: 7 * 24 * time.Hour},
}

// MaxTarget bounds a target.
const MaxTarget = 365 * 24 * time.Hour

const slaKey = "crm.ticketSla"

type slaDoc struct {
	ID      string      `bson:"_id"`
	Key     string      `bson:"key"`
	Targets []targetDoc `bson:"targets"`
	Version int64       `bson:"version"`
}

type targetDoc struct {
	Priority      string `bson:"priority"`
	FirstResponse int64  `bson:"firstResponseSeconds"`
	Resolution    int64  `bson:"resolutionSeconds"`
}

// Targets is the workspace's targets, one per priority, most urgent
// first (the defaults for those never set).
func (s *Service) Targets(ctx context.Context, tn store.Tenant) ([]Target, error) {
	var d slaDoc
	err := settings.Find(ctx, tn, slaKey, &d)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read ticket SLA targets: %w", err)
	}
	return withDefaults(d.Targets), nil
}

func withDefaults(stored []targetDoc) []Target {
	out := slices.Clone(DefaultTargets)
	for _, t := range stored {
		for i := range out {
			if out[i].Priority == t.Priority {
				out[i].FirstResponse = time.Duration(t.FirstResponse) * time.Second
				out[i].Resolution = time.Duration(t.Resolution) * time.Second
			}
		}
	}
	return out
}

func targetOf(targets []Target, priority string) Target {
	for _, t := range targets {
		if t.Priority == priority {
			return t
		}
	}
	return Target{Priority: priority}
}

// SetTargets sets the targets of the priorities given (the others keep
// theirs) and returns all of them. They apply to tickets opened, or
// given a new priority, afterwards.
func (s *Service) SetTargets(ctx context.Context, tn store.Tenant, in []Target) ([]Target, error) {
	seen := map[string]bool{}
	for i, t := range in {
		f := fmt.Sprintf("targets[%d]", i)
		if !slices.Contains(Priorities, t.Priority) {
			return nil, apperr.Invalid(f+".priority", "unknown priority %q", t.Priority)
		}
		if seen[t.Priority] {
			return nil, apperr.Invalid(f+".priority", "%s is given twice", t.Priority)
		}
		seen[t.Priority] = true
		for name, d := range map[string]time.Duration{"firstResponseMinutes": t.FirstResponse, "resolutionMinutes": t.Resolution} {
			if d < 0 || d > MaxTarget {
				return nil, apperr.Invalid(f+"."+name, "must be 0 (no target) to %d minutes", int(MaxTarget/time.Minute))
			}
		}
		if t.FirstResponse > 0 && t.Resolution > 0 && t.FirstResponse > t.Resolution {
			return nil, apperr.Invalid(f+".firstResponseMinutes", "is later than the resolution target")
		}
	}
	for range 5 {
		var cur slaDoc
		err := settings.Find(ctx, tn, slaKey, &cur)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("read ticket SLA targets: %w", err)
		}
		all := withDefaults(cur.Targets)
		for _, t := range in {
			for i := range all {
				if all[i].Priority == t.Priority {
					all[i] = t
				}
			}
		}
		docs := make([]targetDoc, len(all))
		for i, t := range all {
			docs[i] = targetDoc{Priority: t.Priority, FirstResponse: int64(t.FirstResponse / time.Second), Resolution: int64(t.Resolution / time.Second)}
		}
		if errors.Is(err, store.ErrNotFound) {
			err = settings.Insert(ctx, tn, slaDoc{ID: store.NewID(), Key: slaKey, Targets: docs, Version: 1})
			if errors.Is(err, store.ErrDuplicateKey) {
				continue
			}
		} else {
			prev := cur.Version
			cur.Targets, cur.Version = docs, prev+1
			err = settings.Replace(ctx, tn, cur, prev)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("store ticket SLA targets: %w", err)
		}
		return withDefaults(docs), nil
	}
	return nil, apperr.New(apperr.Conflict, "the SLA targets changed meanwhile: try again")
}

// due is when a target counted from opened falls (NoDue for none).
func due(opened time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return NoDue
	}
	return opened.Add(d)
}

// late tells whether a target due at due was missed: met at done, or
// still waited for at now.
func late(done, due, now time.Time) bool {
	if due.Equal(NoDue) {
		return false
	}
	end := now
	if !done.IsZero() {
		end = done
	}
	return end.After(due)
}

// settle brings the breach flags and the sweeper's next check up to now.
// A breach stays: it is a fact about the ticket's past, whatever the
// priority or status later.
func (t *Ticket) settle(now time.Time) {
	// A resolution ends the wait for a first answer, for good.
	answered := t.answeredAt()
	if !t.FirstResponseBreached && late(answered, t.FirstResponseDue, now) {
		t.FirstResponseBreached = true
	}
	if !t.ResolutionBreached && late(t.ResolvedAt, t.ResolutionDue, now) {
		t.ResolutionBreached = true
	}
	t.Breached = t.FirstResponseBreached || t.ResolutionBreached
	t.CheckAt = NoDue
	if answered.IsZero() && !t.FirstResponseBreached && t.FirstResponseDue.Before(t.CheckAt) {
		t.CheckAt = t.FirstResponseDue
	}
	if t.ResolvedAt.IsZero() && !t.ResolutionBreached && t.ResolutionDue.Before(t.CheckAt) {
		t.CheckAt = t.ResolutionDue
	}
}

// answeredAt is when the wait for a first answer ended (zero: not yet).
// A ticket stored before AnsweredAt existed ended it at its first answer
// or its resolution.
func (t *Ticket) answeredAt() time.Time {
	return cmp.Or(t.AnsweredAt, t.FirstResponseAt, t.ResolvedAt)
}

// FirstResponseTime is how long the first public answer took (zero, false
// before one).
func (t *Ticket) FirstResponseTime() (time.Duration, bool) {
	if t.FirstResponseAt.IsZero() {
		return 0, false
	}
	return t.FirstResponseAt.Sub(t.CreatedAt), true
}

// ResolutionTime is how long the resolution took (zero, false while
// unresolved).
func (t *Ticket) ResolutionTime() (time.Duration, bool) {
	if t.ResolvedAt.IsZero() {
		return 0, false
	}
	return t.ResolvedAt.Sub(t.CreatedAt), true
}
