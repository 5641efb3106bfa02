package deal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/rawbson"
	"github.com/halo-cdp/halo/store"
)

// A pipeline's summary figures are sums over its deals, so they are kept
// in one tally document per pipeline, changed by every deal write,
// instead of read from every deal at each call (seconds at 100,000
// deals).
//
// The store has no transactions: the deal and its tally are two writes.
// An intent, a small row written before the deal and deleted once the
// tally took the change, covers the gap between them. An intent older
// than intentGrace means a write stopped between the two (a crash, a
// failed tally write), so the tally may be off: the next summary recounts
// the pipeline from its deals. A recount is safe beside writes: while it
// reads, every change the tally takes is also kept in the recount's
// pending list, and its end applies those the read did not see. A
// change can also land after the recount ended though its deal was
// written before the read passed it: the recount finds those by their
// intents (which name the deal and version) and lists them, so the
// tally skips them when they land.

// intentGrace is how long a deal write may take between its intent and
// its tally: far longer than a write, short enough that a tally left off
// is set right within seconds.
const intentGrace = 10 * time.Second

// A recount that recounted for an intent marks it handled rather than
// deleting it: its writer may only be slow, and while the intent lasts,
// every recount lists its change as one to skip should the read have seen
// it. A handled intent goes after intentTTL (a writer stalled longer than
// that, whose change then lands, is counted twice until the next
// recount).
const intentTTL = time.Hour

// recountLease is how long a recount under way is let be: a summary then
// reads the tally (kept by the writes meanwhile) instead of starting
// another, which would take it over. A recount older than that is dead
// (its process stopped): the next write or summary drops it.
const recountLease = 2 * time.Minute

// share is one deal's part in its pipeline's figures.
type share struct {
	Stage   string `bson:"stage"`
	Status  string `bson:"status"`
	Cur     string `bson:"cur"` // currency/digits: amounts priced with other digits are other units
	Minor   int64  `bson:"minor"`
	CycleMs int64  `bson:"cycleMs"` // creation to close, for a won deal
}

func shareOf(d *Deal) *share {
	if d == nil {
		return nil
	}
	s := &share{Stage: d.Stage, Status: d.Status, Cur: fmt.Sprintf("%s/%d", d.Currency, d.Digits), Minor: d.Amount}
	if d.Status == Won {
		s.CycleMs = d.ClosedAt.Sub(d.CreatedAt).Milliseconds()
	}
	return s
}

// cell is a stage's deals in one currency.
type cell struct {
	N     int64 `bson:"n"`
	Minor int64 `bson:"minor"`
}

// counts are a pipeline's figures. Sums are exact integers (minor units,
// milliseconds), so adding and taking away a deal's share leaves no
// rounding behind.
type counts struct {
	Stages  map[string]map[string]cell `bson:"stages"` // stage key → currency/digits → cell
	Won     int64                      `bson:"won"`
	Lost    int64                      `bson:"lost"`
	CycleMs int64                      `bson:"cycleMs"` // summed over the won deals
}

func (c *counts) add(s *share, sign int64) {
	if s == nil {
		return
	}
	switch s.Status {
	case Won:
		c.Won += sign
		c.CycleMs += sign * s.CycleMs
	case Lost:
		c.Lost += sign
	}
	if c.Stages == nil {
		c.Stages = map[string]map[string]cell{}
	}
	st := c.Stages[s.Stage]
	if st == nil {
		st = map[string]cell{}
		c.Stages[s.Stage] = st
	}
	x := st[s.Cur]
	x.N += sign
	x.Minor += sign * s.Minor
	// A currency no deal is in any more is gone, as a recount has it.
	// Changes to one deal can land out of order (-B+C before -A+B), so a
	// cell can pass through zero deals with a sum still owed to it.
	if x.N == 0 && x.Minor == 0 {
		delete(st, s.Cur)
	} else {
		st[s.Cur] = x
	}
	if len(st) == 0 {
		delete(c.Stages, s.Stage)
	}
}

func (c *counts) clone() *counts {
	out := &counts{Stages: map[string]map[string]cell{}, Won: c.Won, Lost: c.Lost, CycleMs: c.CycleMs}
	for st, m := range c.Stages {
		out.Stages[st] = map[string]cell{}
		for k, v := range m {
			out.Stages[st][k] = v
		}
	}
	return out
}

// change is a deal's share before and after one write.
type change struct {
	DealID  string `bson:"dealId"`
	Version int64  `bson:"version"`
	From    *share `bson:"from"`
	To      *share `bson:"to"`
}

type recount struct {
	ID        string    `bson:"id"`
	StartedAt time.Time `bson:"startedAt"`
	Pending   []change  `bson:"pending"`
}

// late is a change the last recount counted from its deal before the
// change itself landed.
type late struct {
	DealID  string `bson:"dealId"`
	Version int64  `bson:"version"`
}

type tally struct {
	ID          string `bson:"_id"` // the pipeline's key
	WorkspaceID string `bson:"workspaceId"`
	Counts      counts `bson:"counts"`
	// Skip lists the changes to leave out when they land (a change
	// that never lands stays until the next recount replaces the list).
	Skip []late `bson:"skip"`
	// Counted: Counts are whole (false until the first recount ends).
	Counted   bool      `bson:"counted"`
	Recount   *recount  `bson:"recount,omitempty"`
	CountedAt time.Time `bson:"countedAt"`
	Version   int64     `bson:"version"`
}

// tallyVersion is a tally's compare-and-swap version (store.Rewrite).
func tallyVersion(t *tally) *int64 { return &t.Version }

type intent struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Pipeline    string    `bson:"pipeline"`
	DealID      string    `bson:"dealId"`
	DealVersion int64     `bson:"dealVersion"` // the version the write stores
	At          time.Time `bson:"at"`
	// Handled: a recount counted the deals after this intent aged.
	Handled bool  `bson:"handled,omitempty"`
	Version int64 `bson:"version"`
}

// tallied runs write, which stores after (over before; nil for a new
// deal), inside an intent, then adds the change to after's pipeline
// tally. Only write's error is returned: once the deal is stored, a tally
// left behind is the intent's to repair.
func (s *Service) tallied(ctx context.Context, tn store.Tenant, before, after *Deal, write func() error) error {
	from, to := shareOf(before), shareOf(after)
	if from != nil && *from == *to {
		return write()
	}
	in := intent{ID: store.NewID(), Pipeline: after.Pipeline, DealID: after.ID, DealVersion: after.Version, At: s.clock(), Version: 1}
	if err := tn.C(TallyIntents).Insert(ctx, in); err != nil {
		return fmt.Errorf("store the tally intent of deal %s: %w", after.ID, err)
	}
	// The deal may be stored: a client leaving now must not leave the
	// tally to a recount.
	later := context.WithoutCancel(ctx)
	if err := write(); err != nil {
		// Only a write refused for sure stored nothing: after another
		// error (a timeout, a cancel) the deal may be stored, and the
		// intent stays for a recount.
		if apperr.CodeOf(err) == apperr.Conflict || errors.Is(err, store.ErrDuplicateKey) {
			s.dropIntent(later, tn, in.ID)
		}
		return err
	}
	if err := addChange(later, tn, after.Pipeline, s.clock(), change{DealID: after.ID, Version: after.Version, From: from, To: to}); err != nil {
		slog.WarnContext(ctx, "deal tally not updated: the next summary recounts the pipeline",
			"workspace", tn.Workspace(), "pipeline", after.Pipeline, "deal", after.ID, "err", err)
		return nil
	}
	s.dropIntent(later, tn, in.ID)
	return nil
}

func (s *Service) dropIntent(ctx context.Context, tn store.Tenant, id string) {
	if err := tn.C(TallyIntents).Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		slog.WarnContext(ctx, "deal tally intent left: the next summary recounts the pipeline", "workspace", tn.Workspace(), "intent", id, "err", err)
	}
}

// addChange adds ch to pipeline key's tally. A pipeline with no tally
// yet gets one from its first summary's count.
func addChange(ctx context.Context, tn store.Tenant, key string, now time.Time, ch change) error {
	return store.Rewrite(ctx, tn.C(Tallies), key, nil, tallyVersion, func(t *tally) bool {
		if t.Recount != nil && now.Sub(t.Recount.StartedAt) > recountLease {
			t.Recount = nil // dead: its pending list would only grow
		}
		if i := slices.Index(t.Skip, late{ch.DealID, ch.Version}); i >= 0 {
			t.Skip = slices.Delete(t.Skip, i, i+1)
		} else {
			t.Counts.add(ch.From, -1)
			t.Counts.add(ch.To, 1)
		}
		if t.Recount != nil {
			t.Recount.Pending = append(t.Recount.Pending, ch)
		}
		return true
	})
}

// counted returns pipeline key's figures: its tally, or a recount when
// there is none yet or an intent was left behind.
func (s *Service) counted(ctx context.Context, tn store.Tenant, key string) (*counts, error) {
	now := s.clock()
	var t tally
	err := tn.C(Tallies).Get(ctx, key, &t)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.recount(ctx, tn, key)
	case err != nil:
		return nil, fmt.Errorf("read the tally of pipeline %s: %w", key, err)
	}
	if t.Recount != nil && now.Sub(t.Recount.StartedAt) <= recountLease {
		// A recount is under way: the writes keep the tally meanwhile.
		// Before the first one ends there is none: count alone.
		if t.Counted {
			return &t.Counts, nil
		}
		fresh, _, err := countDeals(ctx, tn, key)
		return fresh, err
	}
	left, err := strandedIntent(ctx, tn, key, now)
	switch {
	case err != nil:
		return nil, err
	case left != nil:
		slog.InfoContext(ctx, "deal tally recounted: a write stopped between its deal and its tally",
			"workspace", tn.Workspace(), "pipeline", key, "intent", left.ID, "intentAt", left.At)
		return s.recount(ctx, tn, key)
	case !t.Counted:
		return s.recount(ctx, tn, key)
	}
	return &t.Counts, nil
}

// strandedIntent is an intent of pipeline key older than intentGrace that
// no recount handled yet (nil: none).
func strandedIntent(ctx context.Context, tn store.Tenant, key string, now time.Time) (*intent, error) {
	var left *intent
	err := tn.C(TallyIntents).Each(ctx, store.Query{Index: TallyIntentsByPipeline, Eq: []any{key},
		Range: &store.Bound{Lt: store.DateTime(now.Add(-intentGrace))}, Limit: 100}, func(raw bson.Raw) error {
		var in intent
		if err := bson.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("decode tally intent: %w", err)
		}
		if !in.Handled {
			left = &in
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("read the tally intents of pipeline %s: %w", key, err)
	}
	return left, nil
}

var errStop = errors.New("stop")

// recount counts pipeline key's deals into its tally. It returns the
// figures as counted even when a later recount took over.
func (s *Service) recount(ctx context.Context, tn store.Tenant, key string) (*counts, error) {
	mine := &recount{ID: store.NewID(), StartedAt: s.clock(), Pending: []change{}}
	c := tn.C(Tallies)
	err := c.Insert(ctx, tally{ID: key, Counts: counts{Stages: map[string]map[string]cell{}}, Recount: mine, Version: 1})
	if errors.Is(err, store.ErrDuplicateKey) {
		err = store.Rewrite(ctx, c, key, nil, tallyVersion, func(t *tally) bool {
			t.Recount = mine
			return true
		})
	}
	if err != nil {
		return nil, fmt.Errorf("start recounting pipeline %s: %w", key, err)
	}
	out, err := s.countInto(ctx, tn, key, mine)
	if err != nil {
		// Let the next summary start again at once.
		_ = store.Rewrite(context.WithoutCancel(ctx), c, key, nil, tallyVersion, func(t *tally) bool {
			if t.Recount == nil || t.Recount.ID != mine.ID {
				return false
			}
			t.Recount = nil
			return true
		})
		return nil, err
	}
	return out, nil
}

// countInto is recount's count and end.
func (s *Service) countInto(ctx context.Context, tn store.Tenant, key string, mine *recount) (*counts, error) {
	fresh, seen, err := countDeals(ctx, tn, key)
	if err != nil {
		return nil, err
	}
	// The writes under way now (and those stalled or stopped, handled by
	// an earlier recount): their changes may land after the end.
	var flying []intent
	if err := tn.C(TallyIntents).Each(ctx, store.Query{Index: TallyIntentsByPipeline, Eq: []any{key}, Limit: 1000}, func(raw bson.Raw) error {
		var in intent
		if err := bson.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("decode tally intent: %w", err)
		}
		flying = append(flying, in)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the tally intents of pipeline %s: %w", key, err)
	}
	out, ended := fresh, false
	err = store.Rewrite(ctx, tn.C(Tallies), key, nil, tallyVersion, func(t *tally) bool {
		out, ended = fresh, false
		if t.Recount == nil || t.Recount.ID != mine.ID {
			return false // a later recount took over
		}
		out = fresh.clone()
		// Changes whose deal the read saw at their version or later are
		// in the count already.
		landed := map[late]bool{}
		for _, ch := range t.Recount.Pending {
			landed[late{ch.DealID, ch.Version}] = true
			if ch.Version > seen[ch.DealID] {
				out.add(ch.From, -1)
				out.add(ch.To, 1)
			}
		}
		t.Skip = []late{}
		for _, in := range flying {
			l := late{in.DealID, in.DealVersion}
			if !landed[l] && seen[in.DealID] >= in.DealVersion && !slices.Contains(t.Skip, l) {
				t.Skip = append(t.Skip, l)
			}
		}
		t.Counts, t.Counted, t.Recount, t.CountedAt = *out, true, nil, mine.StartedAt
		ended = true
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("end recounting pipeline %s: %w", key, err)
	}
	if ended {
		s.handle(ctx, tn, flying, mine.StartedAt)
	}
	return out, nil
}

// handle marks the intents that made a recount handled (their deals are
// counted), and deletes handled ones past intentTTL. A failure is
// logged: at worst the next summary recounts again.
func (s *Service) handle(ctx context.Context, tn store.Tenant, flying []intent, startedAt time.Time) {
	c := tn.C(TallyIntents)
	for _, in := range flying {
		var err error
		switch {
		case in.Handled && startedAt.Sub(in.At) > intentTTL:
			if err = c.Delete(ctx, in.ID); errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		case !in.Handled && startedAt.Sub(in.At) > intentGrace:
			next := in
			next.Handled, next.Version = true, in.Version+1
			if err = c.Replace(ctx, next, in.Version); errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				err = nil // its writer ended meanwhile
			}
		}
		if err != nil {
			slog.WarnContext(ctx, "deal tally: an intent not marked handled", "workspace", tn.Workspace(), "intent", in.ID, "err", err)
		}
	}
}

// countDeals reads pipeline key's deals once: their figures, and the
// version each was read at.
func countDeals(ctx context.Context, tn store.Tenant, key string) (*counts, map[string]int64, error) {
	out, seen := &counts{Stages: map[string]map[string]cell{}}, map[string]int64{}
	err := tn.C(Deals).Each(ctx, store.Query{Index: DealsByPipeline, Eq: []any{key}, Limit: 1000}, func(raw bson.Raw) error {
		d, err := summaryFields(raw)
		if err != nil {
			return err
		}
		out.add(shareOf(&d), 1)
		seen[d.ID] = d.Version
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("count the deals of pipeline %s: %w", key, err)
	}
	return out, seen, nil
}

// summaryFields decodes what a count reads of a stored deal: its id,
// version, account, stage, status, amount and times, not its history or
// contacts
// (a whole decode was four fifths of a count's time).
func summaryFields(raw bson.Raw) (Deal, error) {
	var d Deal
	err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
		switch string(key) {
		case "_id":
			d.ID, _ = v.StringValueOK()
		case "version":
			d.Version, _ = v.AsInt64OK()
		case "accountId":
			d.AccountID, _ = v.StringValueOK()
		case "stage":
			d.Stage, _ = v.StringValueOK()
		case "status":
			d.Status, _ = v.StringValueOK()
		case "currency":
			d.Currency, _ = v.StringValueOK()
		case "digits":
			if n, ok := v.AsInt64OK(); ok {
				d.Digits = int(n)
			}
		case "amount":
			d.Amount, _ = v.AsInt64OK()
		case "createdAt":
			if t, ok := v.TimeOK(); ok {
				d.CreatedAt = t
			}
		case "closedAt":
			if t, ok := v.TimeOK(); ok {
				d.ClosedAt = t
			}
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("decode deal: %w", err)
	}
	return d, nil
}
