package segment

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/topk"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// An ad-hoc list is the CRM list view: the profiles a rule of the segment
// language matches now, without saving a segment, sorted by a profile
// field, a trait or a score. Nothing is indexed for an arbitrary rule and
// order, so each page is one pass over the workspace's profiles (the
// preview's: profile.Scan, only what the rule and the order read
// decoded), keeping the best First+1 after the cursor per page: O(First)
// memory, and the count of every match comes with it.

// SortField is what a list is sorted by.
type SortField string

// Sort fields.
const (
	SortCreatedAt   SortField = "CREATED_AT"
	SortUpdatedAt   SortField = "UPDATED_AT"
	SortFirstSeenAt SortField = "FIRST_SEEN_AT"
	SortLastSeenAt  SortField = "LAST_SEEN_AT"
	SortEventCount  SortField = "EVENT_COUNT"
	SortTrait       SortField = "TRAIT"
	SortScore       SortField = "SCORE"
)

// Sort orders a list: by Field (Trait, a dot path, for SortTrait; Score,
// a score key, for SortScore), descending unless Asc, then by id.
//
// Values of different kinds sort numbers, then strings, then booleans
// (reversed when descending); a profile without a value (a missing
// trait, an array or object trait, an unknown score) comes last either
// way. Strings compare byte-wise, so RFC 3339 timestamps written alike
// sort in time order.
type Sort struct {
	Field SortField
	Trait string
	Score string
	Asc   bool
}

// ListQuery asks for a page of the profiles Rule matches (nil: every
// profile), in Sort order, after a cursor of the same list (ListName).
type ListQuery struct {
	Rule  *rule.Rule
	Sort  Sort
	First int
	After string
}

// ListPage is a page of a list, with how many profiles the whole list
// holds.
type ListPage struct {
	Profiles []*profile.Profile
	Cursors  []string
	HasNext  bool
	Total    int64
}

// ListName names the list a sort reads, so that a cursor of one order is
// refused by another. The rule is not part of it: a cursor is a position
// in the order, valid when the filter changes between pages.
func ListName(s Sort) string {
	dir := "-"
	if s.Asc {
		dir = "+"
	}
	return "a" + string(s.Field) + dir + s.Trait + s.Score
}

// ListProfilesFor is ListProfiles for a caller whose filter and sort g checks first
// (errors under "filter" and "sortBy"), at the engine's clock: the
// profiles query with filter or sortBy.
func (e *Engine) ListProfilesFor(ctx context.Context, tn store.Tenant, q ListQuery, g RuleGuard) (ListPage, error) {
	if err := guard(ctx, tn, g, q.Rule, "filter"); err != nil {
		return ListPage{}, err
	}
	if q.Sort.Field == SortTrait {
		// Sorting by a trait reveals its values' order: the same rule as
		// comparing it.
		if err := guard(ctx, tn, g, &rule.Rule{Trait: &rule.TraitCond{Key: q.Sort.Trait, Op: rule.Exists}}, "sortBy"); err != nil {
			return ListPage{}, err
		}
	}
	return e.list(ctx, tn, q, "filter", e.now())
}

// ListProfiles returns the page q asks for, evaluated at now (rule errors
// under "rule").
func (e *Engine) ListProfiles(ctx context.Context, tn store.Tenant, q ListQuery, now time.Time) (ListPage, error) {
	return e.list(ctx, tn, q, rule.RootPath, now)
}

// list is ListProfiles with the rule's errors under root.
func (e *Engine) list(ctx context.Context, tn store.Tenant, q ListQuery, root string, now time.Time) (ListPage, error) {
	var out ListPage
	var extra profile.Fields
	switch q.Sort.Field {
	case SortCreatedAt, SortUpdatedAt, SortFirstSeenAt, SortLastSeenAt, SortEventCount:
	case SortTrait:
		if err := rule.ValidatePath(q.Sort.Trait, "sortBy.trait"); err != nil {
			return out, err
		}
		extra.Traits = []string{q.Sort.Trait}
	case SortScore:
		if !scores.IsKey(q.Sort.Score) || !scores.Numeric(q.Sort.Score) {
			return out, apperr.Invalid("sortBy.score", "unknown score %q", q.Sort.Score)
		}
		extra.Tally = true
	default:
		return out, apperr.Invalid("sortBy.by", "unknown sort field %q", q.Sort.Field)
	}
	if q.Sort.Field != SortTrait && q.Sort.Trait != "" {
		return out, apperr.Invalid("sortBy.trait", "is for by: TRAIT only")
	}
	if q.Sort.Field != SortScore && q.Sort.Score != "" {
		return out, apperr.Invalid("sortBy.score", "is for by: SCORE only")
	}
	var after *listed
	if q.After != "" {
		var err error
		if after, err = parseListCursor(q.After); err != nil {
			return out, err
		}
	}
	m, err := e.matcherFor(ctx, tn, q.Rule, root, now, extra, q.Sort.Field == SortScore)
	if err != nil {
		return out, err
	}
	keep := q.First + 1
	var (
		mu   sync.Mutex
		best []*listed
	)
	err = m.scan(ctx, tn, func(page []match) error {
		var mine []*listed
		for _, x := range page {
			l := &listed{key: sortKeyOf(q.Sort, x, now), id: x.p.ID}
			if after != nil && !q.Sort.before(after, l) {
				continue
			}
			// Only a profile that makes the list keeps its document
			// (a copy: it outlives the page).
			mine, _ = topk.Insert(mine, l, keep, q.Sort.before, func(l *listed) *listed { l.raw = slices.Clone(x.raw); return l })
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range mine {
			best, _ = topk.Insert(best, l, keep, q.Sort.before, nil)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("list profiles: %w", err)
	}
	out.Total = m.matched.Load()
	if len(best) > q.First {
		best, out.HasNext = best[:q.First], true
	}
	for _, l := range best {
		p, err := profile.Decode(l.raw)
		if err != nil {
			return out, err
		}
		out.Profiles = append(out.Profiles, p)
		out.Cursors = append(out.Cursors, l.cursor())
	}
	return out, nil
}

// sortKey is a profile's value in a list's order. A number is num, or,
// when it is an integer (int traits, counts, times), whole: float64 would
// make integers past 2^53 equal.
type sortKey struct {
	kind    keyKind
	num     float64
	whole   int64
	isWhole bool
	str     string
}

type keyKind uint8

// Kinds in ascending order; missing sorts last in both directions.
const (
	keyNumber keyKind = iota
	keyString
	keyBool
	keyMissing
)

type listed struct {
	key sortKey
	id  string
	raw bson.Raw
}

func sortKeyOf(s Sort, x match, now time.Time) sortKey {
	p := x.p
	switch s.Field {
	case SortCreatedAt:
		return wholeKey(p.CreatedAt.UnixMilli())
	case SortUpdatedAt:
		return wholeKey(p.UpdatedAt.UnixMilli())
	case SortFirstSeenAt:
		return wholeKey(p.FirstSeenAt.UnixMilli())
	case SortLastSeenAt:
		return wholeKey(p.LastSeenAt.UnixMilli())
	case SortEventCount:
		return wholeKey(p.EventCount)
	case SortScore:
		if x.in.Score == nil {
			return sortKey{kind: keyMissing}
		}
		v, _ := x.in.Score(s.Score, now, nil)
		return valueKey(v)
	}
	v, ok := rule.Lookup(p.Traits, s.Trait)
	if !ok {
		return sortKey{kind: keyMissing}
	}
	return valueKey(v)
}

func numberKey(f float64) sortKey { return sortKey{kind: keyNumber, num: f} }

func wholeKey(i int64) sortKey { return sortKey{kind: keyNumber, whole: i, isWhole: true} }

// valueKey is the key of a trait or score value (see Sort).
func valueKey(v any) sortKey {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			return sortKey{kind: keyMissing}
		}
		return numberKey(x)
	case float32:
		return numberKey(float64(x))
	case int:
		return wholeKey(int64(x))
	case int32:
		return wholeKey(int64(x))
	case int64:
		return wholeKey(x)
	case string:
		return sortKey{kind: keyString, str: x}
	case bool:
		if x {
			return sortKey{kind: keyBool, num: 1}
		}
		return sortKey{kind: keyBool}
	}
	// Objects and arrays (stored dates are strings by now: userjson).
	return sortKey{kind: keyMissing}
}

// cmpKeys compares two present keys in ascending order.
func cmpKeys(a, b sortKey) int {
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	switch {
	case a.kind == keyString:
		return strings.Compare(a.str, b.str)
	case a.isWhole && b.isWhole:
		return cmp.Compare(a.whole, b.whole)
	case a.isWhole:
		return cmpWholeFloat(a.whole, b.num)
	case b.isWhole:
		return -cmpWholeFloat(b.whole, a.num)
	}
	return cmp.Compare(a.num, b.num)
}

// cmpWholeFloat compares an integer with a float exactly.
func cmpWholeFloat(i int64, f float64) int {
	switch {
	case f >= 9.3e18: // beyond every int64
		return -1
	case f <= -9.3e18:
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	return cmp.Compare(0, f-t) // i == trunc(f): the fraction decides
}

// before tells whether a comes ahead of b in s.
func (s Sort) before(a, b *listed) bool {
	am, bm := a.key.kind == keyMissing, b.key.kind == keyMissing
	switch {
	case am && !bm:
		return false
	case bm && !am:
		return true
	case !am:
		c := cmpKeys(a.key, b.key)
		if !s.Asc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return a.id < b.id
}

// A cursor is the id, then the key: kind letter and value (an integer in
// decimal after wholeLetter, another number's bits in hex, a string in
// URL-safe base64), so that cursors stay URL-safe whatever the trait
// holds.

const wholeLetter = 'w'

func (l *listed) cursor() string {
	letter := rune('a' + l.key.kind)
	var v string
	switch {
	case l.key.isWhole:
		letter, v = wholeLetter, strconv.FormatInt(l.key.whole, 10)
	case l.key.kind == keyNumber || l.key.kind == keyBool:
		v = strconv.FormatUint(math.Float64bits(l.key.num), 16)
	case l.key.kind == keyString:
		v = base64.RawURLEncoding.EncodeToString([]byte(l.key.str))
	}
	return l.id + "~" + string(letter) + v
}

func parseListCursor(s string) (*listed, error) {
	bad := apperr.Invalid("after", "is not a cursor of this list")
	id, rest, ok := strings.Cut(s, "~")
	if !ok || id == "" || rest == "" {
		return nil, bad
	}
	v := rest[1:]
	if rest[0] == wholeLetter {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, bad
		}
		return &listed{id: id, key: wholeKey(i)}, nil
	}
	l := &listed{id: id, key: sortKey{kind: keyKind(rest[0] - 'a')}}
	switch l.key.kind {
	case keyNumber, keyBool:
		u, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return nil, bad
		}
		l.key.num = math.Float64frombits(u)
	case keyString:
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return nil, bad
		}
		l.key.str = string(b)
	case keyMissing:
		if v != "" {
			return nil, bad
		}
	default:
		return nil, bad
	}
	return l, nil
}
