package traits

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/topk"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Scores change with time alone (churn risk rises every second), so a
// stored, indexed copy would be stale the moment it was written: ranking
// reads every profile's tally and scores it now instead. The scan is the
// preview's (profile.Scan: a reader ahead of GOMAXPROCS workers, only the
// tally decoded) and keeps the best first+1 per worker, so its cost is one
// pass over the workspace and O(first) memory.

// Range keeps the profiles whose score Key now is within [Min, Max] (nil:
// unbounded).
type Range struct {
	Key      string
	Min, Max *float64
}

// RankQuery asks for the first profiles by the score Key (highest first
// unless Asc), within every range, after a cursor from a previous page.
type RankQuery struct {
	Key    string
	Asc    bool
	Ranges []Range
	First  int
	After  string
}

type ranked struct {
	v   float64
	id  string
	raw bson.Raw
}

// before tells whether a ranks ahead of b (ties by id, ascending).
func (q *RankQuery) before(a, b *ranked) bool {
	if a.v != b.v {
		return (a.v > b.v) != q.Asc
	}
	return a.id < b.id
}

func rankCursor(r *ranked) string {
	return strconv.FormatUint(math.Float64bits(r.v), 16) + "|" + r.id
}

func parseRankCursor(s string) (*ranked, error) {
	bits, id, ok := strings.Cut(s, "|")
	u, err := strconv.ParseUint(bits, 16, 64)
	if !ok || err != nil || id == "" {
		return nil, apperr.Invalid("after", "is not a cursor of this list")
	}
	return &ranked{v: math.Float64frombits(u), id: id}, nil
}

// scoreNumber is a score's value as a number (unknown RFM scores are 0).
func scoreNumber(key string, in scores.Input) float64 {
	switch x := scores.Value(key, in).(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// Rank returns a page of profiles ordered by a score now.
func (e *Engine) Rank(ctx context.Context, tn store.Tenant, q RankQuery) (profile.Page, error) {
	var page profile.Page
	for i, k := range append([]string{q.Key}, rangeKeys(q.Ranges)...) {
		if !scores.IsKey(k) || !scores.Numeric(k) {
			field := "byScore"
			if i > 0 {
				field = fmt.Sprintf("scoreFilter[%d]", i-1)
			}
			return page, apperr.Invalid(field, "unknown score %q", k)
		}
	}
	for i, r := range q.Ranges {
		if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			return page, apperr.Invalid(fmt.Sprintf("scoreFilter[%d]", i), "min %g is above max %g", *r.Min, *r.Max)
		}
	}
	var after *ranked
	if q.After != "" {
		var err error
		if after, err = parseRankCursor(q.After); err != nil {
			return page, err
		}
	}
	w, err := e.Summary(ctx, tn)
	if err != nil {
		return page, err
	}
	now := e.now()
	keep := q.First + 1
	var (
		mu   sync.Mutex
		best []*ranked
	)
	err = scanScores(ctx, tn, now, w, func(page []scored) error {
		var mine []*ranked
		for _, x := range page {
			if !within(q.Ranges, x.in) {
				continue
			}
			r := &ranked{v: scoreNumber(q.Key, x.in), id: x.id}
			if after != nil && !q.before(after, r) {
				continue
			}
			// Only a profile that makes the list keeps its document
			// (a copy: it outlives the page).
			mine, _ = topk.Insert(mine, r, keep, q.before, func(r *ranked) *ranked { r.raw = slices.Clone(x.raw); return r })
		}
		mu.Lock()
		for _, r := range mine {
			best, _ = topk.Insert(best, r, keep, q.before, nil)
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return page, fmt.Errorf("rank profiles by %s: %w", q.Key, err)
	}
	if len(best) > q.First {
		best, page.HasNext = best[:q.First], true
	}
	for _, r := range best {
		p, err := profile.Decode(r.raw)
		if err != nil {
			return page, err
		}
		page.Profiles = append(page.Profiles, p)
		page.Cursors = append(page.Cursors, rankCursor(r))
	}
	return page, nil
}

// countRanked is how many profiles Rank pages through for q: those
// within every range, profiles being merged away left out.
func (e *Engine) countRanked(ctx context.Context, tn store.Tenant, q RankQuery) (int64, error) {
	w, err := e.Summary(ctx, tn)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	err = scanScores(ctx, tn, e.now(), w, func(page []scored) error {
		for _, x := range page {
			if within(q.Ranges, x.in) {
				n.Add(1)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count profiles ranked by %s: %w", q.Key, err)
	}
	return n.Load(), nil
}

func rangeKeys(rs []Range) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

func within(rs []Range, in scores.Input) bool {
	for _, r := range rs {
		v := scoreNumber(r.Key, in)
		if r.Min != nil && v < *r.Min || r.Max != nil && v > *r.Max {
			return false
		}
	}
	return true
}
