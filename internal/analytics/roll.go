package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Rolling. Rollups are not written by the write path: a roller on each
// instance reads the items stored since the last fold, in id order, up
// to the ingest journal's horizon (journal.Horizon: no call under way
// anywhere can still store an item with an id below it), and folds them
// into the day documents. So ingest pays nothing for them, and a fold
// repeated after a crash adds nothing twice (day.Folded). A read adds
// the items stored after the last fold (the tail, volume.go), so figures
// are exact the moment a write is acknowledged.
//
// One instance at a time folds a workspace: the cursor document is a
// lease, taken and renewed by compare-and-swap.

const (
	// foldBatch is how many items one store read of a fold takes: a
	// batch writes each day it touches once, and a backlog's batches
	// touch every day of the workspace's history.
	foldBatch = 20_000
	// maxBatchesPerRoll bounds one Roll's work in a workspace, so that a
	// long catch-up (a dataset loaded before rollups existed) does not
	// starve the other workspaces; the next round goes on.
	maxBatchesPerRoll = 10
	// leaseFor is how long a fold's lease on a workspace lasts unrenewed:
	// an instance that dies holding it stops another for that long.
	leaseFor = 30 * time.Second
	// leaseMargin is how long before its lease ends a fold stops writing.
	leaseMargin = 5 * time.Second
)

// cursor is a workspace's fold position and lease (system workspace).
type cursor struct {
	ID          string `bson:"_id"` // the workspace
	WorkspaceID string `bson:"workspaceId"`
	Folded      string `bson:"folded"` // id of the last item folded
	// Active is the id of the last item folded into the activity days
	// (activity.go).
	Active     string    `bson:"active,omitempty"`
	Owner      string    `bson:"owner"` // the instance holding the lease
	LeaseUntil time.Time `bson:"leaseUntil"`
	// Erasing lists, per erasure under way (its mark), the days it has
	// recorded how far it subtracted on (erase.go).
	Erasing map[string][]string `bson:"erasing,omitempty"`
	// Days holds the version of every day rollup as of this write (each
	// writer of a day records it here after): a series reads the days of
	// this cursor, and an instance that has a day's version in memory
	// need not read it again (volume.go). Tracked says Days is complete;
	// a cursor written before it was kept is completed by the next fold.
	Days    map[string]int64 `bson:"days,omitempty"`
	Tracked bool             `bson:"tracked,omitempty"`
	// Epoch names this incarnation of the days: Refold starts them over
	// at version 1, so versions alone do not tell a kept day from a new
	// one (cache.go).
	Epoch string `bson:"epoch,omitempty"`
	// RevenueKey is the order settings the days' revenue is added up
	// under (revenue.go).
	RevenueKey string `bson:"revenueKey,omitempty"`
	// Numbered is the highest profile number given (numbers.go).
	Numbered int64 `bson:"numbered,omitempty"`
	Version  int64 `bson:"version"`
}

// record notes the versions of days just written.
func (c *cursor) record(written map[string]int64) {
	if c.Days == nil {
		c.Days = map[string]int64{}
	}
	maps.Copy(c.Days, written)
}

// Roll folds, in each workspace given and each one folded before, the
// items stored up to horizon (journal.Horizon). all says to look at
// every workspace ever folded, not only those given (the busy ones): the
// roller does so now and then, for workspaces whose last calls ran on an
// instance that has gone quiet.
func (s *Service) Roll(ctx context.Context, st *store.Store, horizon time.Time, workspaces []string, all bool) error {
	sys := st.Tenant(store.SystemWorkspace)
	todo := slices.Clone(workspaces)
	s.mu.Lock()
	for ws := range s.wanted {
		if !slices.Contains(todo, ws) {
			todo = append(todo, ws)
		}
	}
	clear(s.wanted)
	s.mu.Unlock()
	if all {
		docs, err := sys.C(Cursors).Find(ctx, store.Query{Index: store.ByID})
		if err != nil {
			return fmt.Errorf("read rollup cursors: %w", err)
		}
		for _, d := range docs {
			if id, ok := d.Raw.Lookup("_id").StringValueOK(); ok && !slices.Contains(todo, id) {
				todo = append(todo, id)
			}
		}
	}
	var errs []error
	for _, ws := range todo {
		if ws == store.SystemWorkspace {
			continue
		}
		folded, done, err := s.rollWorkspace(ctx, st.Tenant(ws), sys, horizon)
		if err != nil {
			errs = append(errs, fmt.Errorf("roll up workspace %s: %w", ws, err))
			continue
		}
		if folded == maxBatchesPerRoll*foldBatch {
			s.want(ws) // a backlog: go on next round, whoever names it
		}
		s.note(ctx, ws, folded, done)
	}
	return errors.Join(errs...)
}

// want has the next Roll fold ws, which no write call named to it: a
// workspace whose events were all stored before it had rollups.
func (s *Service) want(ws string) {
	s.mu.Lock()
	s.wanted[ws] = true
	s.mu.Unlock()
}

// note logs, once per workspace and process, that its rollups reached
// the horizon, with what this instance folded to get there (after a
// start on a store whose events were never folded: the backlog).
func (s *Service) note(ctx context.Context, ws string, folded int, done bool) {
	s.mu.Lock()
	if s.current[ws] {
		s.mu.Unlock()
		return
	}
	s.backlog[ws] += folded
	total := s.backlog[ws]
	if done {
		s.current[ws] = true
		delete(s.backlog, ws)
	}
	s.mu.Unlock()
	if done {
		slog.InfoContext(ctx, "analytics: rollups current", "workspace", ws, "folded", total)
	}
}

// rollWorkspace folds tn's items up to horizon, if this instance holds
// (or takes) the workspace's lease. It returns how many items it read
// and whether it reached the horizon (false: more to fold, or the lease
// is held elsewhere).
func (s *Service) rollWorkspace(ctx context.Context, tn, sys store.Tenant, horizon time.Time) (int, bool, error) {
	// Most rounds find nothing new: a read, not a lease (two writes).
	var seen cursor
	err := sys.C(Cursors).Get(ctx, tn.Workspace(), &seen)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, false, fmt.Errorf("read rollup cursor: %w", err)
	}
	key, kerr := currentOrders(ctx, tn)
	if kerr != nil {
		return 0, false, kerr
	}
	if err == nil {
		if seen.held(s.now()) {
			return 0, false, nil
		}
		more, err := timeline.StoredAfter(ctx, tn, min(seen.Folded, seen.Active), horizon, 1, "")
		if err != nil {
			return 0, false, err
		}
		if len(more) == 0 && seen.Tracked && seen.RevenueKey == key {
			if marked, err := tn.C(Moves).Find(ctx, store.Query{Index: store.ByID, Limit: 1}); err != nil || len(marked) == 0 {
				return 0, err == nil, err
			}
		}
	}
	token := s.instance + ":" + store.NewID()
	cur, err := s.lease(ctx, sys, tn.Workspace(), token, leaseFor)
	if err != nil || cur == nil {
		return 0, false, err
	}
	// Free between rounds, so that an erasure (erase.go) on any instance
	// takes it at once.
	defer s.release(context.WithoutCancel(ctx), sys, tn.Workspace(), token)
	// A cursor written before the days were recorded on it: record them
	// now.
	if !cur.Tracked {
		if err := trackDays(ctx, tn, cur); err != nil {
			return 0, false, err
		}
		// Recorded at once, with the lease renewed: a long record must
		// not leave the first fold without time.
		cur.Tracked, cur.Epoch = true, store.NewID()
		cur.LeaseUntil = s.now().Add(leaseFor)
		cur.Version++
		if err := sys.C(Cursors).Replace(ctx, cur, cur.Version-1); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return 0, false, nil
			}
			return 0, false, fmt.Errorf("record the rollup days: %w", err)
		}
	}
	if cur.RevenueKey != key {
		if err := s.startOver(ctx, tn, sys, cur, key); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return 0, false, nil
			}
			return 0, false, err
		}
	}
	read, done := 0, false
	for range maxBatchesPerRoll {
		// Activity began after the rollups: on a store folded before it,
		// its position starts behind theirs and catches up.
		items, err := timeline.StoredAfter(ctx, tn, min(cur.Folded, cur.Active), horizon, foldBatch, ordersOf(key).event)
		if err != nil {
			return read, false, err
		}
		if len(items) == 0 {
			done = true
			break
		}
		// A batch that outlives its lease writes nothing more: another
		// holder (an erasure) may be counting on the days as they are.
		deadline := cur.LeaseUntil.Add(-leaseMargin)
		if rest := itemsAfter(items, cur.Folded); len(rest) > 0 {
			written, err := fold(ctx, tn, rest, key, deadline)
			if err != nil {
				return read, false, err
			}
			cur.record(written)
		}
		if rest := itemsAfter(items, cur.Active); len(rest) > 0 {
			if err := s.foldActive(ctx, tn, sys, cur, rest, deadline); err != nil {
				if errors.Is(err, errLeaseLost) {
					return read, false, nil // taken over: the other holder goes on
				}
				return read, false, err
			}
		}
		read += len(items)
		last := items[len(items)-1].ID
		cur.Folded, cur.Active = max(cur.Folded, last), max(cur.Active, last)
		cur.LeaseUntil = s.now().Add(leaseFor)
		cur.Version++
		if err := sys.C(Cursors).Replace(ctx, cur, cur.Version-1); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return read, false, nil // the lease was taken over: the other holder goes on
			}
			return read, false, fmt.Errorf("advance rollup cursor: %w", err)
		}
		if len(items) < foldBatch {
			done = true
			break
		}
	}
	if done {
		// Moves settled meanwhile: their profiles' entries, rewritten.
		if _, err := s.tidy(ctx, tn, sys, cur, cur.LeaseUntil.Add(-leaseMargin)); err != nil {
			if errors.Is(err, errLeaseLost) {
				return read, false, nil
			}
			return read, false, err
		}
	}
	return read, done, nil
}

// startOver has the rollups folded again from the first stored item
// under the order settings key (revenue.go): a workspace whose settings
// changed, or whose rollups were made before they held revenue. The
// cursor goes first, with no days and a new epoch, so that reads count
// every stored event until the fold has made the days again; then the
// old days go (a day a crash leaves behind is made anew by the fold, and
// no read takes a day its cursor does not list).
func (s *Service) startOver(ctx context.Context, tn, sys store.Tenant, cur *cursor, key string) error {
	slog.InfoContext(ctx, "analytics: rollups folded again under new order settings", "workspace", tn.Workspace())
	cur.Folded, cur.Days, cur.Epoch, cur.RevenueKey = "", map[string]int64{}, store.NewID(), key
	cur.LeaseUntil = s.now().Add(leaseFor)
	cur.Version++
	if err := sys.C(Cursors).Replace(ctx, cur, cur.Version-1); err != nil {
		return fmt.Errorf("start the rollups over: %w", err)
	}
	if _, err := tn.C(Rollups).DeleteMany(ctx, store.Query{Index: RollupsByDay}); err != nil {
		return fmt.Errorf("drop the rollups of other order settings: %w", err)
	}
	return nil
}

// itemsAfter is the items, in id order, after the one with id after.
func itemsAfter(items []timeline.Stored, after string) []timeline.Stored {
	i, _ := slices.BinarySearchFunc(items, after, func(it timeline.Stored, id string) int { return strings.Compare(it.ID, id) })
	for i < len(items) && items[i].ID <= after {
		i++
	}
	return items[i:]
}

// trackDays fills cur.Days from the day rollups as stored: a cursor
// written before the days were recorded on it.
func trackDays(ctx context.Context, tn store.Tenant, cur *cursor) error {
	cur.Days = map[string]int64{}
	return tn.C(Rollups).Each(ctx, store.Query{Index: RollupsByDay}, func(raw bson.Raw) error {
		id, _ := raw.Lookup("_id").StringValueOK()
		v, ok := raw.Lookup("version").AsInt64OK()
		if id == "" || !ok {
			return fmt.Errorf("rollup %q has no version", id)
		}
		cur.Days[id] = v
		return nil
	})
}

// key is a series of a day: an event name and channel.
type key struct{ name, channel string }

// tally is a day's counts of a batch, by series and quarter hour.
type tally map[key]*[quarters]int64

// count adds the event it.
func (t tally) count(it timeline.Stored) {
	k := key{it.Name, it.Channel}
	c, ok := t[k]
	if !ok {
		c = new([quarters]int64)
		t[k] = c
	}
	c[quarterOf(it.OccurredAt)]++
}

// fold adds the events among items (interactions are not events) to
// their days' rollups, skipping those a day has folded already. items
// are in id order.
func fold(ctx context.Context, tn store.Tenant, items []timeline.Stored, key string, deadline time.Time) (map[string]int64, error) {
	o := ordersOf(key)
	byDay := map[string]tally{}
	revs := map[string]*[quarters]int64{}
	first, last := map[string]string{}, map[string]string{} // day → the batch's first and last item on it
	var days []string
	for i := range items {
		it := &items[i]
		if it.Kind != timeline.KindEvent {
			continue
		}
		id := dayID(it.OccurredAt)
		m, ok := byDay[id]
		if !ok {
			m = tally{}
			byDay[id] = m
			revs[id] = new([quarters]int64)
			days = append(days, id)
			first[id] = it.ID
		}
		m.count(*it)
		if v, ok := o.value(it); ok {
			revs[id][quarterOf(it.OccurredAt)] += v
		}
		last[id] = it.ID
	}
	// The days are independent: their writes go to the store together
	// (one commit on the embedded engine), a few dozen at a time.
	errs := make([]error, len(days))
	versions := make([]int64, len(days))
	fns := make([]func(context.Context), len(days))
	for i, id := range days {
		fns[i] = func(ctx context.Context) {
			versions[i], errs[i] = foldDay(ctx, tn, id, items, byDay[id], revs[id], first[id], last[id], key, deadline)
		}
	}
	for chunk := range slices.Chunk(fns, 64) {
		store.Together(ctx, chunk...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(days))
	for i, id := range days {
		if versions[i] > 0 {
			out[id] = versions[i]
		}
	}
	return out, nil
}

// foldDay adds to day id's rollup the batch's events of that day (add),
// those after what it holds already; first and last are the batch's
// first and last item on the day. Past deadline (the fold's lease nearly
// out) it writes nothing.
func foldDay(ctx context.Context, tn store.Tenant, id string, items []timeline.Stored, add tally, rev *[quarters]int64, first, last, key string, deadline time.Time) (int64, error) {
	var d day
	err := tn.C(Rollups).Get(ctx, id, &d)
	isNew := errors.Is(err, store.ErrNotFound)
	if err != nil && !isNew {
		return 0, fmt.Errorf("read rollup of %s: %w", id, err)
	}
	if !isNew && d.RevenueKey != key {
		// Left by a start over that a crash cut (startOver): made anew.
		d = day{ID: d.ID, Day: d.Day, RevenueKey: key, Version: d.Version}
	}
	if !isNew && d.Folded >= last {
		return d.Version, nil // folded before a crash cut the cursor's advance
	}
	// Only items after d.Folded count: a batch that straddles it (a
	// repeated fold that reads further than the one a crash cut) is
	// recounted item by item.
	if !isNew && d.Folded >= first {
		add, rev = tally{}, new([quarters]int64)
		o := ordersOf(key)
		for i := range items {
			it := &items[i]
			if it.Kind == timeline.KindEvent && it.ID > d.Folded && dayID(it.OccurredAt) == id {
				add.count(*it)
				if v, ok := o.value(it); ok {
					rev[quarterOf(it.OccurredAt)] += v
				}
			}
		}
	}
	if isNew {
		at, err := time.Parse(time.DateOnly, id)
		if err != nil {
			return 0, err
		}
		d = day{ID: id, Day: at, RevenueKey: key}
	}
	for k, c := range add {
		if err := d.merge(k.name, k.channel, c); err != nil {
			return 0, err
		}
	}
	if err := d.addRevenue(rev, 1); err != nil {
		return 0, err
	}
	d.Folded = last
	d.Version++
	if time.Now().After(deadline) {
		return 0, errLeaseLost
	}
	if isNew {
		err = tn.C(Rollups).Insert(ctx, &d)
	} else {
		err = tn.C(Rollups).Replace(ctx, &d, d.Version-1)
	}
	if err != nil {
		// Another fold wrote the day (a lease that expired under a slow
		// fold): the next round starts again from the cursor.
		return 0, fmt.Errorf("write rollup of %s: %w", id, err)
	}
	return d.Version, nil
}

// merge adds c to the day's counts of name and channel.
func (d *day) merge(name, channel string, c *[quarters]int64) error {
	for i := range d.Series {
		s := &d.Series[i]
		if s.Name != name || s.Channel != channel {
			continue
		}
		have, err := s.counts()
		if err != nil {
			return err
		}
		for q := range have {
			have[q] += c[q]
		}
		s.set(have)
		return nil
	}
	s := series{Name: name, Channel: channel}
	s.set(*c)
	d.Series = append(d.Series, s)
	return nil
}

// Refold removes a workspace's rollups, activity and fold position, so
// that the roller folds every stored event again (an operator's repair, and
// the harness's backlog). Run it with no server on the store: a fold or
// an erasure under way would write on.
func Refold(ctx context.Context, st *store.Store, ws string) error {
	tn := st.Tenant(ws)
	if _, err := tn.C(Rollups).DeleteMany(ctx, store.Query{Index: RollupsByDay}); err != nil {
		return fmt.Errorf("drop the rollups of %s: %w", ws, err)
	}
	// The activity too, folded again under the events' owners now: the
	// marks of moves have nothing left to tidy. Numbers stay.
	if _, err := tn.C(Activity).DeleteMany(ctx, store.Query{Index: ActivityByDay}); err != nil {
		return fmt.Errorf("drop the activity of %s: %w", ws, err)
	}
	if _, err := tn.C(Moves).DeleteMany(ctx, store.Query{Index: store.ByID}); err != nil {
		return fmt.Errorf("drop the marks of moves of %s: %w", ws, err)
	}
	err := st.Tenant(store.SystemWorkspace).C(Cursors).Delete(ctx, ws)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("drop the rollup cursor of %s: %w", ws, err)
	}
	return nil
}
