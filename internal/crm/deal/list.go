package deal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Filter picks deals; empty fields pick all. ClosingFrom/ClosingTo bound
// ExpectedCloseAt (from ≤ t < to).
type Filter struct {
	Pipeline, Stage, Status, Owner, Account string
	ClosingFrom, ClosingTo                  time.Time
}

// query is the index read that serves f best, and what of f it leaves to
// check on each deal.
func (f Filter) query() (store.Query, func(*Deal) bool) {
	q := store.Query{Index: store.ByID}
	switch {
	case f.Pipeline != "" && f.Stage != "":
		q = store.Query{Index: DealsByStage, Eq: []any{f.Pipeline, f.Stage}}
	case f.Account != "":
		q = store.Query{Index: DealsByAccount, Eq: []any{f.Account}}
	case f.Owner != "":
		q = store.Query{Index: DealsByOwner, Eq: []any{f.Owner}}
	case f.Status != "":
		q = store.Query{Index: DealsByStatus, Eq: []any{f.Status}}
		if !f.ClosingFrom.IsZero() || !f.ClosingTo.IsZero() {
			// Deals without a date (NoClose) close at no time at all.
			b := &store.Bound{Lt: store.DateTime(NoClose)}
			if !f.ClosingFrom.IsZero() {
				b.Gte = store.DateTime(f.ClosingFrom)
			}
			if !f.ClosingTo.IsZero() && f.ClosingTo.Before(NoClose) {
				b.Lt = store.DateTime(f.ClosingTo)
			}
			q.Range = b
		}
	case f.Pipeline != "":
		q = store.Query{Index: DealsByPipeline, Eq: []any{f.Pipeline}}
	}
	return q, f.matches
}

// exact tells whether the index read alone answers f (an index count).
func (f Filter) exact(q store.Query) bool {
	n := 0
	for _, v := range []string{f.Pipeline, f.Stage, f.Status, f.Owner, f.Account} {
		if v != "" {
			n++
		}
	}
	closing := !f.ClosingFrom.IsZero() || !f.ClosingTo.IsZero()
	switch q.Index {
	case store.ByID:
		return n == 0 && !closing
	case DealsByStage:
		return n == 2 && !closing
	case DealsByStatus:
		return n == 1
	}
	return n == 1 && !closing
}

func (f Filter) matches(d *Deal) bool {
	switch {
	case f.Pipeline != "" && d.Pipeline != f.Pipeline,
		f.Stage != "" && d.Stage != f.Stage,
		f.Status != "" && d.Status != f.Status,
		f.Owner != "" && d.OwnerID != f.Owner,
		f.Account != "" && d.AccountID != f.Account,
		!f.ClosingFrom.IsZero() && d.ExpectedCloseAt.Before(f.ClosingFrom),
		!f.ClosingTo.IsZero() && !d.ExpectedCloseAt.Before(f.ClosingTo),
		(!f.ClosingFrom.IsZero() || !f.ClosingTo.IsZero()) && d.ExpectedCloseAt.Equal(NoClose):
		return false
	}
	return true
}

// Page is a page of deals.
type Page struct {
	Deals   []*Deal
	Cursors []string
	HasNext bool
}

// ListName names the order a filter's pages are read in (the index that
// serves it), so that a cursor of one order is refused by another.
func (f Filter) ListName() string {
	q, _ := f.query()
	return "deals-" + q.Index
}

// Check refuses a filter no index serves well: a stage without its
// pipeline (stage keys are per pipeline).
func (f Filter) Check() error {
	if f.Stage != "" && f.Pipeline == "" {
		return apperr.Invalid("filter.pipeline", "is required with a stage (stage keys belong to a pipeline)")
	}
	return nil
}

// List pages through the deals f picks, in the order of the index that
// serves it (newest last), after a cursor of the same filter.
func (s *Service) List(ctx context.Context, tn store.Tenant, f Filter, first int, after string) (Page, error) {
	var out Page
	q, keep := f.query()
	q.After, q.Limit = after, 200
	for {
		docs, err := tn.C(Deals).Find(ctx, q)
		if errors.Is(err, store.ErrBadCursor) {
			return out, apperr.Invalid("after", "malformed cursor")
		}
		if err != nil {
			return out, fmt.Errorf("list deals: %w", err)
		}
		for _, doc := range docs {
			var d Deal
			if err := doc.Decode(&d); err != nil {
				return out, fmt.Errorf("decode deal: %w", err)
			}
			if !keep(&d) {
				continue
			}
			if len(out.Deals) == first {
				out.HasNext = true
				return out, nil
			}
			out.Deals = append(out.Deals, &d)
			out.Cursors = append(out.Cursors, doc.Key)
		}
		if len(docs) < q.Limit {
			return out, nil
		}
		q.After = docs[len(docs)-1].Key
	}
}

// Count is how many deals f picks: an index count when the index serving
// f answers it alone, else its deals read and checked.
func (s *Service) Count(ctx context.Context, tn store.Tenant, f Filter) (int64, error) {
	q, keep := f.query()
	if f.exact(q) {
		n, err := tn.C(Deals).Count(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("count deals: %w", err)
		}
		return n, nil
	}
	var n int64
	err := tn.C(Deals).Each(ctx, q, func(raw bson.Raw) error {
		var d Deal
		if err := bson.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode deal: %w", err)
		}
		if keep(&d) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count deals: %w", err)
	}
	return n, nil
}

// StageSummary is one stage's open deals (or, for a closing stage, its
// closed ones) by currency.
type StageSummary struct {
	Stage  Stage
	Count  int64
	Values []Value
}

// Value is a sum of amounts in one currency, and the same weighted by the
// stage's probability.
type Value struct {
	Currency string
	Amount   float64
	Weighted float64
}

// Summary is a pipeline's board in figures.
type Summary struct {
	Pipeline *Pipeline
	Stages   []StageSummary
	// WinRate is won / (won + lost) over the closed deals (nil: none).
	WinRate *float64
	// AverageCycle is the mean time from creation to a win (zero: none).
	AverageCycle time.Duration
	Won, Lost    int64
}

// Summarize gives pipeline key's figures from its tally: count, value
// and weighted forecast per stage and currency, win rate and average
// cycle.
func (s *Service) Summarize(ctx context.Context, tn store.Tenant, key string) (*Summary, error) {
	p, err := s.Get(ctx, tn, "pipeline", key)
	if err != nil {
		return nil, err
	}
	c, err := s.counted(ctx, tn, key)
	if err != nil {
		return nil, fmt.Errorf("summarize pipeline %s: %w", key, err)
	}
	out := &Summary{Pipeline: p, Won: c.Won, Lost: c.Lost}
	for _, st := range p.Stages {
		sum := StageSummary{Stage: st}
		cells := c.Stages[st.Key]
		for _, k := range slices.Sorted(maps.Keys(cells)) {
			code, d, _ := strings.Cut(k, "/")
			digits, _ := strconv.Atoi(d)
			amt := fromMinor(cells[k].Minor, digits)
			sum.Count += cells[k].N
			sum.Values = append(sum.Values, Value{Currency: code, Amount: amt, Weighted: amt * st.Probability})
		}
		out.Stages = append(out.Stages, sum)
	}
	if closed := out.Won + out.Lost; closed > 0 {
		r := float64(out.Won) / float64(closed)
		out.WinRate = &r
	}
	if out.Won > 0 {
		out.AverageCycle = time.Duration(float64(c.CycleMs) / float64(out.Won) * float64(time.Millisecond))
	}
	return out, nil
}
