package segment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Memberships are decided on the profile document.
//
// A profile's memberships (Profile.Segments) are decided inside the
// compare-and-swap that writes the profile, from the document being
// written: ingest decides them in the same write that counts the events
// (Decider), every other write path in a write of its own (settle). Two
// writers of one profile are thereby ordered by the profile's version,
// and a membership is never decided from a stale read.
//
// What a decision changes is kept on the document as moves
// (Profile.Moves), each with the id of its history record, chosen in the
// write that decides it (time-ordered like every id, so history reads in
// decision order) and stored with it. The hand-off (HandOff) then brings
// the segment's collections in line: the history records (inserted under
// the move's id, so a repeat records nothing twice), their notifications,
// and the memberships collection (the index of members by segment), set
// from the document's Segments. It ends with a compare-and-swap that
// removes the moves handed off. If someone wrote the profile meanwhile,
// the memberships it set may have landed after that writer's own
// hand-off: it reads the newer document and sets them again from it, so
// the last hand-off to finish leaves the collection as the latest
// document says.
//
// While moves are on the document, NextEvalAt is held at most
// handOffGrace away: if a crash interrupts the hand-off, the sweeper
// visits the profile and finishes it (as would any later write).

// handOffGrace is how long a pending move waits before the sweeper takes
// it for interrupted.
const handOffGrace = time.Minute

// Decider decides the memberships of the profiles of one write call,
// inside their compare-and-swap: one load of the active segments and what
// they read for every profile of the call.
type Decider struct {
	e     *Engine
	a     *activeSet
	env   evalEnv
	now   time.Time
	cause string
}

// Decider prepares the decisions of one write call (cause names it).
func (e *Engine) Decider(ctx context.Context, tn store.Tenant, cause string) (*Decider, error) {
	a, err := e.active(ctx, tn)
	if err != nil {
		return nil, err
	}
	env, err := e.segmentsEnv(ctx, tn, a.segs)
	if err != nil {
		return nil, err
	}
	return &Decider{e: e, a: a, env: env, now: e.now(), cause: cause}, nil
}

// Decide updates p, about to be written, for what the write touched (t):
// its memberships among the segments t can affect (all of them when p is
// due, nextEvalAt <= now), the moves that makes, and its nextEvalAt. A
// profile being merged away leaves every segment. It returns whether p
// changed. Called again on a retried compare-and-swap, it decides again
// from the document read then.
func (d *Decider) Decide(ctx context.Context, tn store.Tenant, p *profile.Profile, t rule.Touched) (bool, error) {
	changed, err := d.load(ctx, tn, p)
	if err != nil {
		return false, err
	}
	// Tickets, deals and accounts have no version on the profile: a
	// decision on them always writes, so of two decisions on different
	// reads the later-written one retries, reading them again.
	if t.Tickets || t.Deals || t.Accounts {
		p.FactsSeen++
		changed = true
	}
	at := d.now.Truncate(time.Millisecond)
	if p.MergingInto != "" {
		for _, id := range slices.Clone(p.Segments) {
			if s, ok := d.a.byID[id]; ok && d.record(p, s.ID, false, at) {
				changed = true
			}
		}
		if changed {
			d.setNext(p, p.EvalAt())
		}
		return changed, nil
	}
	base := p.EvalAt()
	full := t.All || !p.NextEvalAt.After(d.now)
	todo := affected(d.a.segs, t, full)
	if len(d.a.building) > 0 || len(p.Built) > 0 {
		var pruned bool
		todo, pruned = d.skipUnbuilt(p, todo)
		changed = changed || pruned
	}
	next := base
	if len(todo) > 0 {
		member := make(map[string]bool, len(p.Segments))
		for _, id := range p.Segments {
			member[id] = true
		}
		f, err := factsOf(ctx, tn, d.a, todo, p)
		if err != nil {
			return false, err
		}
		match, n := evaluate(p, todo, d.a.byID, member, f, d.env, d.now)
		d.e.evaluations.Add(int64(len(todo)))
		for _, s := range todo {
			if match[s.ID] != member[s.ID] && d.record(p, s.ID, match[s.ID], at) {
				changed = true
			}
		}
		next = n
		if !full && base.Before(next) {
			next = base // an unaffected segment's edge (safe if early)
		}
	}
	return d.setNext(p, next) || changed, nil
}

// skipUnbuilt drops from todo the segments whose build has not visited p
// yet (build.go), and drops from p the marks of builds no longer under
// way. It returns todo and whether p changed.
func (d *Decider) skipUnbuilt(p *profile.Profile, todo []*Segment) ([]*Segment, bool) {
	current := map[string]bool{}
	for id := range d.a.building {
		current[d.a.byID[id].BuildID] = true
	}
	n := len(p.Built)
	p.Built = slices.DeleteFunc(p.Built, func(b string) bool { return !current[b] })
	if len(p.Built) == 0 {
		p.Built = nil
	}
	out := todo[:0:0]
	for _, s := range todo {
		born, building := d.a.building[s.ID]
		if !building || p.CreatedAt.After(born) || slices.Contains(p.Built, s.BuildID) {
			out = append(out, s)
		}
	}
	return out, len(p.Built) != n
}

// load fills in the memberships of a document written before they were
// kept on it, from the collection. It returns whether it did.
func (d *Decider) load(ctx context.Context, tn store.Tenant, p *profile.Profile) (bool, error) {
	if p.Segments != nil {
		return false, nil
	}
	// Every segment's, uncached: a membership missed here would never be
	// exited.
	ms, err := allMemberships(ctx, tn, p.ID)
	if err != nil {
		return false, fmt.Errorf("memberships of %s: %w", p.ID, err)
	}
	p.Segments = make([]string, 0, len(ms))
	for _, m := range ms {
		p.Segments = append(p.Segments, m.SegmentID)
	}
	slices.Sort(p.Segments)
	return true, nil
}

// record moves p into (enter) or out of segment id: Segments and a move.
// It returns false when p already was where the move leads.
func (d *Decider) record(p *profile.Profile, id string, enter bool, at time.Time) bool {
	i, in := slices.BinarySearch(p.Segments, id)
	switch {
	case enter && !in:
		p.Segments = slices.Insert(p.Segments, i, id)
	case !enter && in:
		p.Segments = slices.Delete(p.Segments, i, i+1)
	default:
		return false
	}
	p.Moves = append(p.Moves, profile.SegmentMove{ID: store.NewID(), SegmentID: id, Enter: enter, At: at, Cause: d.cause})
	return true
}

// move is record for a write that is not an evaluation (a static list's
// add or remove), in the write about to be made of p.
func (d *Decider) move(p *profile.Profile, id string, enter bool) bool {
	return d.record(p, id, enter, d.now.Truncate(time.Millisecond))
}

// setNext sets p's nextEvalAt to next, held early while moves are
// pending. It returns whether it changed anything.
func (d *Decider) setNext(p *profile.Profile, next time.Time) bool {
	before, beforeMoves := p.NextEvalAt, p.MovesNext
	if len(p.Moves) == 0 {
		p.NextEvalAt, p.MovesNext = next, time.Time{}
	} else {
		p.MovesNext = next
		p.NextEvalAt = next
		if due := d.now.Add(handOffGrace).Truncate(time.Millisecond); due.Before(next) {
			p.NextEvalAt = due
		}
	}
	return !p.NextEvalAt.Equal(before) || !p.MovesNext.Equal(beforeMoves)
}

// HandOff records the moves pending on profiles (as just written) in the
// segment collections (see the top of this file). Profiles without
// pending moves cost nothing. also are the caller's own changes: they go
// to the outbox in the write of the membership changes, after them (one
// outbox write for the call instead of two), and are published whatever
// becomes of the hand-off.
func (e *Engine) HandOff(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, also ...realtime.Change) error {
	// Once started it runs to the end: a hand-off stopped half way may
	// leave a members entry that only its own last step corrects.
	ctx = context.WithoutCancel(ctx)
	var pending []*profile.Profile
	for _, p := range profiles {
		if p != nil && len(p.Moves) > 0 {
			pending = append(pending, p)
		}
	}
	if len(pending) == 0 {
		realtime.Notify(ctx, e.publisher, tn, also...)
		return nil
	}
	// No writer of this process interleaves: a conflict below comes from
	// another process (or from a write made before the turns were taken).
	ids := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = p.ID
	}
	defer profile.Turns(ids)()
	for round := 0; len(pending) > 0; round++ {
		if round == 10 {
			return fmt.Errorf("hand off memberships of %d profiles: too much contention: %w", len(pending), store.ErrConflict)
		}
		notes, err := e.recordMoves(ctx, tn, pending)
		if round == 0 {
			notes = append(notes, also...)
		}
		if err != nil {
			realtime.Notify(ctx, e.publisher, tn, notes...)
			return err
		}
		// The notifications and the clears together, in one commit of
		// the store where it can: a clear that lands first leaves nothing
		// to hand off again, as after a notification lost to a crash
		// between its record and its outbox write.
		again := make([]*profile.Profile, len(pending))
		errs := make([]error, len(pending))
		together(ctx, len(pending)+1, func(ctx context.Context, i int) {
			if i == len(pending) {
				realtime.Notify(ctx, e.publisher, tn, notes...)
				return
			}
			again[i], errs[i] = e.clearMoves(ctx, tn, pending[i])
		})
		pending = pending[:0]
		var failed error
		for i, q := range again {
			failed = cmp.Or(failed, errs[i])
			if q != nil {
				pending = append(pending, q)
			}
		}
		if failed != nil {
			return failed
		}
	}
	return nil
}

// clearMoves ends the hand-off of p's moves: it removes them from the
// stored document in one compare-and-swap. If p was written meanwhile, it
// returns the newer document to hand off, carrying p's moves too so that
// their segments are set again from it (their records exist: they are
// not written again).
func (e *Engine) clearMoves(ctx context.Context, tn store.Tenant, p *profile.Profile) (*profile.Profile, error) {
	q := *p
	q.Moves, q.NextEvalAt, q.MovesNext = nil, p.EvalAt(), time.Time{}
	err := profile.Swap(ctx, tn, &q, e.now())
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil // gone (merged away, erased): that write recorded its exits
	case !errors.Is(err, store.ErrConflict):
		return nil, err
	}
	fresh, err := profile.Get(ctx, tn, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(fresh.Moves) == 0 {
		fresh.MovesNext = fresh.NextEvalAt // restored as it is by the clear
	}
	for _, m := range p.Moves {
		if !slices.ContainsFunc(fresh.Moves, func(x profile.SegmentMove) bool { return x.ID == m.ID }) {
			fresh.Moves = append(fresh.Moves, m)
		}
	}
	return fresh, nil
}

// recordMoves writes the history records of the profiles' moves (each
// once: a repeat finds its id taken) and sets the memberships of the
// segments moved to what each document says. The writes are independent
// (a hand-off interrupted between them is done again from the document),
// so they go together, in one commit of the store where it can. It
// returns the notifications of the records written now, also when another
// write failed.
func (e *Engine) recordMoves(ctx context.Context, tn store.Tenant, profiles []*profile.Profile) ([]realtime.Change, error) {
	var (
		records []any
		moves   []profile.SegmentMove
		owners  []string
	)
	for _, p := range profiles {
		for _, m := range p.Moves {
			kind := Exited
			if m.Enter {
				kind = Entered
			}
			records = append(records, Change{ID: m.ID, SegmentID: m.SegmentID, ProfileID: p.ID, Kind: kind, At: m.At, Cause: m.Cause})
			moves = append(moves, m)
			owners = append(owners, p.ID)
		}
	}
	// Memberships as the documents say, for each segment moved.
	var (
		enters []any
		exits  []string
	)
	for _, p := range profiles {
		seen := map[string]bool{}
		for i := len(p.Moves) - 1; i >= 0; i-- {
			m := p.Moves[i]
			if seen[m.SegmentID] {
				continue
			}
			seen[m.SegmentID] = true
			if _, in := slices.BinarySearch(p.Segments, m.SegmentID); in {
				at := m.At
				if !m.Enter {
					at = e.now().Truncate(time.Millisecond) // a member again through a later move
				}
				enters = append(enters, Member{ID: memberID(m.SegmentID, p.ID), SegmentID: m.SegmentID, ProfileID: p.ID, EnteredAt: at})
			} else {
				exits = append(exits, memberID(m.SegmentID, p.ID))
			}
		}
	}

	// One write per fn of the gathering, so that each is held for the
	// common commit: the records, the entries, the exits (one delete per
	// store.MaxIn of them).
	var gone [][]any
	for in := range store.InLists(exits) {
		gone = append(gone, in)
	}
	var notes []realtime.Change
	errs := make([]error, 2+len(gone))
	together(ctx, len(errs), func(ctx context.Context, i int) {
		switch i {
		case 0:
			notes, errs[0] = recordHistory(ctx, tn, records, moves, owners)
		case 1:
			errs[1] = enterMembers(ctx, tn, enters)
		default:
			if _, err := tn.C(Memberships).DeleteMany(ctx, store.Query{Index: store.ByID, In: gone[i-2]}); err != nil {
				errs[i] = fmt.Errorf("exit segments: %w", err)
			}
		}
	})
	// The records written are notified even if another write failed: a
	// hand-off done again finds them written and notifies nothing.
	return notes, errors.Join(errs...)
}

// recordHistory inserts the history records of moves (owners[i] made
// moves[i], recorded as records[i]) and returns the notifications of
// those not recorded before.
func recordHistory(ctx context.Context, tn store.Tenant, records []any, moves []profile.SegmentMove, owners []string) ([]realtime.Change, error) {
	errs, err := tn.C(MembershipChanges).InsertMany(ctx, records)
	if err != nil {
		return nil, fmt.Errorf("record membership changes: %w", err)
	}
	var notes []realtime.Change
	for j, m := range moves {
		switch err := errAt(errs, j); {
		case err == nil:
			c := records[j].(Change)
			notes = append(notes, realtime.Change{
				Kind: realtime.MembershipChanged, ProfileID: owners[j], SegmentID: m.SegmentID,
				Payload: map[string]any{realtime.PayloadKind: c.Kind, realtime.PayloadCause: c.Cause, realtime.PayloadChangeID: c.ID},
			})
		case !errors.Is(err, store.ErrDuplicateKey):
			return nil, fmt.Errorf("record membership change: %w", err)
		}
	}
	return notes, nil
}

// enterMembers inserts the memberships entries (an entry already there
// stays).
func enterMembers(ctx context.Context, tn store.Tenant, enters []any) error {
	if len(enters) == 0 {
		return nil
	}
	errs, err := tn.C(Memberships).InsertMany(ctx, enters)
	if err != nil {
		return fmt.Errorf("enter segments: %w", err)
	}
	for j := range enters {
		if err := errAt(errs, j); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
			return fmt.Errorf("enter segment: %w", err)
		}
	}
	return nil
}

// together runs fn(ctx, 0..n-1) through store.Together: their first
// writes share one commit where the store can.
func together(ctx context.Context, n int, fn func(ctx context.Context, i int)) {
	fns := make([]func(context.Context), n)
	for i := range fns {
		fns[i] = func(ctx context.Context) { fn(ctx, i) }
	}
	store.Together(ctx, fns...)
}
