package analytics

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Moves. A merge or an unmerge moves events from one profile to another
// after they were folded under the first one's number. The merge
// coordinator marks the two profiles before it moves anything (Moving)
// and settles the mark when the events are where they go (Moved). While
// a profile is marked, reads leave its entries aside and take its
// activity from its stored events (active.go); the roller then rewrites
// the entries of every marked profile from its events and drops the
// settled marks (tidy). So figures equal the stored events' owners at
// every moment, and a merge on the ingest path costs two small writes.
//
// Every entry that is not its profile's events is on a marked profile:
// a move marks both of its ends first, an erasure takes its own entries
// out (erase.go), and the one other change of owner, a write call that
// finds its profile merged away meanwhile (timeline.Reassign), moves
// only what it stores itself, above the journal's horizon: not folded
// yet, and not tidied (tidy takes folded events only).

const (
	// tidyAfter is how long a settled mark waits for the roller to
	// rewrite its profiles' entries: reads meanwhile read the marked
	// profiles' events, so the roller gathers marks rather than rewrite
	// the days on every merge.
	tidyAfter = 5 * time.Second
	// tidyBacklog is how many settled marks make the roller tidy at
	// once.
	tidyBacklog = 500
	// unsettledFor is how long a mark can stay unsettled before the
	// roller treats it as settled: its move failed or its process died,
	// and the merge, resumed (identity.Recover), marks again.
	unsettledFor = time.Hour
)

// move is a mark on the profiles a move is taking events between.
type move struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Profiles    []string  `bson:"profiles"`
	Settled     bool      `bson:"settled"`
	At          time.Time `bson:"at"` // marked, or settled
	Version     int64     `bson:"version"`
}

// Moving marks profiles whose events are about to move between them; it
// returns the mark for Moved.
func (s *Service) Moving(ctx context.Context, tn store.Tenant, profileIDs ...string) (string, error) {
	m := move{ID: store.NewID(), Profiles: profileIDs, At: s.now()}
	if err := tn.C(Moves).Insert(ctx, &m); err != nil {
		return "", fmt.Errorf("mark a move of events: %w", err)
	}
	return m.ID, nil
}

// Moved settles the mark: the events are where they go.
func (s *Service) Moved(ctx context.Context, tn store.Tenant, mark string) error {
	var m move
	if err := tn.C(Moves).Get(ctx, mark, &m); err != nil {
		return fmt.Errorf("read the mark of a move: %w", err)
	}
	m.Settled, m.At = true, s.now()
	m.Version++
	if err := tn.C(Moves).Replace(ctx, &m, m.Version-1); err != nil {
		return fmt.Errorf("settle the mark of a move: %w", err)
	}
	return nil
}

// readMarks reads every mark of the workspace.
func readMarks(ctx context.Context, tn store.Tenant) ([]move, error) {
	var out []move
	err := tn.C(Moves).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var m move
		if err := bson.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("decode the mark of a move: %w", err)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the marks of moves: %w", err)
	}
	return out, nil
}

// tidy rewrites, from their stored events, the entries of the profiles
// of the marks that are settled, and drops those marks. It runs under
// the rollup lease, after a fold reached the horizon, when the oldest
// settled mark has waited tidyAfter or tidyBacklog of them wait. It
// returns whether it tidied.
func (s *Service) tidy(ctx context.Context, tn, sys store.Tenant, cur *cursor, deadline time.Time) (bool, error) {
	all, err := readMarks(ctx, tn)
	if err != nil || len(all) == 0 {
		return false, err
	}
	now := s.now()
	var ready []move
	due := false
	for _, m := range all {
		switch {
		case m.Settled:
			ready = append(ready, m)
			due = due || now.Sub(m.At) >= s.tidyAfter
		case now.Sub(m.At) >= unsettledFor:
			ready = append(ready, m)
			due = true
		}
	}
	if !due && len(ready) < tidyBacklog {
		return false, nil
	}
	var ids []string
	for _, m := range ready {
		for _, p := range m.Profiles {
			if !slices.Contains(ids, p) {
				ids = append(ids, p)
			}
		}
	}
	// Old entries first: a profile's entries may be on any day, wherever
	// its events were when they were folded.
	old, err := s.numbers(ctx, tn, ids)
	if err != nil {
		return false, err
	}
	// Their events now, then numbers for those that have some (a profile
	// that gained events before its first fold has none yet).
	times := map[string][]time.Time{}
	var active []string
	for _, id := range ids {
		err := timeline.StoredOf(ctx, tn, id, func(it timeline.Stored) error {
			// Folded events only: a later one may still change owner in
			// the write call storing it (timeline.Reassign); the fold
			// takes it under its owner then, and reads take it from the
			// tail.
			if it.Kind == timeline.KindEvent && it.ID <= cur.Active {
				times[id] = append(times[id], it.OccurredAt)
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		if len(times[id]) > 0 {
			active = append(active, id)
		}
	}
	nums, err := s.number(ctx, tn, sys, cur, active)
	if err != nil {
		return false, err
	}
	add := dayEntries{}
	for _, id := range active {
		for _, at := range times[id] {
			add.add(nums[id], at)
		}
	}
	var drop map[string]map[uint32]bool
	if len(old) > 0 {
		gone := map[uint32]bool{}
		for _, n := range old {
			gone[n] = true
		}
		if drop, err = everyDay(ctx, tn, gone); err != nil {
			return false, err
		}
	}
	if err := writeActive(ctx, tn, add, drop, deadline); err != nil {
		return false, err
	}
	for _, m := range ready {
		if err := tn.C(Moves).Delete(ctx, m.ID); err != nil {
			return false, fmt.Errorf("drop the mark of a move: %w", err)
		}
	}
	return true, nil
}
