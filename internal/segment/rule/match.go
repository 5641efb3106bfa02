package rule

import (
	"cmp"
	"encoding/json"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Lookup follows a dot path through nested objects (maps and BSON
// documents); false when a name on the way is missing.
func Lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for {
		seg, rest, more := strings.Cut(path, ".")
		var (
			v  any
			ok bool
		)
		switch m := cur.(type) {
		case map[string]any:
			v, ok = m[seg]
		case bson.M:
			v, ok = m[seg]
		case bson.D:
			for _, e := range m {
				if e.Key == seg {
					v, ok = e.Value, true
					break
				}
			}
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
		if !more {
			return v, true
		}
		cur, path = v, rest
	}
}

// number is a numeric value: an integer when isInt, else f.
type number struct {
	i     int64
	f     float64
	isInt bool
}

func toNumber(v any) (number, bool) {
	switch x := v.(type) {
	case int:
		return number{i: int64(x), isInt: true}, true
	case int8:
		return number{i: int64(x), isInt: true}, true
	case int16:
		return number{i: int64(x), isInt: true}, true
	case int32:
		return number{i: int64(x), isInt: true}, true
	case int64:
		return number{i: x, isInt: true}, true
	case uint:
		return uintNumber(uint64(x)), true
	case uint8:
		return number{i: int64(x), isInt: true}, true
	case uint16:
		return number{i: int64(x), isInt: true}, true
	case uint32:
		return number{i: int64(x), isInt: true}, true
	case uint64:
		return uintNumber(x), true
	case float32:
		return number{f: float64(x)}, !math.IsNaN(float64(x))
	case float64:
		return number{f: x}, !math.IsNaN(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return number{i: i, isInt: true}, true
		}
		f, err := x.Float64()
		return number{f: f}, err == nil && !math.IsNaN(f)
	}
	return number{}, false
}

func uintNumber(u uint64) number {
	if u <= math.MaxInt64 {
		return number{i: int64(u), isInt: true}
	}
	return number{f: float64(u)}
}

func (n number) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

// cmpNumbers returns -1, 0 or 1. Two integers compare exactly; otherwise
// an integer is compared with a float exactly too (no rounding of large
// integers to float64).
func cmpNumbers(a, b number) int {
	switch {
	case a.isInt && b.isInt:
		return cmp.Compare(a.i, b.i)
	case !a.isInt && !b.isInt:
		return cmpFloat(a.f, b.f)
	case a.isInt:
		return -cmpFloatInt(b.f, a.i)
	default:
		return cmpFloatInt(a.f, b.i)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpFloatInt compares f with i exactly.
func cmpFloatInt(f float64, i int64) int {
	if f < -(1 << 63) {
		return -1
	}
	if f >= 1<<63 {
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(int64(t), i); c != 0 {
		return c
	}
	return cmpFloat(f, t) // same integer part: the fraction decides
}

// toInstant reads a time value: time.Time, bson.DateTime or an RFC 3339
// string.
func toInstant(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, !x.IsZero()
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return *x, !x.IsZero()
	case bson.DateTime:
		return x.Time(), true
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

func isTimeValue(v any) bool {
	switch v.(type) {
	case time.Time, *time.Time, bson.DateTime:
		return true
	}
	return false
}

// isScalar: string, number, bool or time.
func isScalar(v any) bool {
	if _, ok := toNumber(v); ok {
		return true
	}
	switch v.(type) {
	case string, bool:
		return true
	}
	return isTimeValue(v)
}

// equal compares two scalars: numbers numerically, strings exactly, bools,
// and a time value with a time value or an RFC 3339 string as instants.
func equal(a, b any) bool {
	if na, ok := toNumber(a); ok {
		nb, ok := toNumber(b)
		return ok && cmpNumbers(na, nb) == 0
	}
	if isTimeValue(a) || isTimeValue(b) {
		ta, ok1 := toInstant(a)
		tb, ok2 := toInstant(b)
		return ok1 && ok2 && ta.Equal(tb)
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// compare orders two scalars; ok is false when they are not comparable.
func compare(a, b any) (int, bool) {
	if na, ok := toNumber(a); ok {
		nb, ok := toNumber(b)
		if !ok {
			return 0, false
		}
		return cmpNumbers(na, nb), true
	}
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	if isTimeValue(a) || isTimeValue(b) || (aStr && bStr) {
		ta, ok1 := toInstant(a)
		tb, ok2 := toInstant(b)
		if ok1 && ok2 {
			return ta.Compare(tb), true
		}
	}
	if aStr && bStr {
		return strings.Compare(sa, sb), true
	}
	return 0, false
}

func asArray(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case bson.A:
		return x, true
	}
	return nil, false
}

// matchCond tells whether doc (traits or event properties) satisfies c.
// It never panics, whatever the types.
func matchCond(c *TraitCond, doc map[string]any) bool {
	v, found := Lookup(doc, c.Key)
	if found && v == nil {
		found = false
	}
	switch c.Op {
	case Exists:
		want := true
		if b, ok := c.Value.(bool); ok {
			want = b
		}
		return found == want
	case NE:
		return !found || !anyElem(v, func(e any) bool { return equal(e, c.Value) })
	case NotIn:
		return !found || !anyElem(v, func(e any) bool { return inList(e, c.Values) })
	}
	if !found {
		return false
	}
	switch c.Op {
	case EQ:
		return anyElem(v, func(e any) bool { return equal(e, c.Value) })
	case In:
		return anyElem(v, func(e any) bool { return inList(e, c.Values) })
	case GT, GTE, LT, LTE:
		return anyElem(v, func(e any) bool {
			r, ok := compare(e, c.Value)
			return ok && cmpHolds(c.Op, r)
		})
	case Contains:
		if s, ok := v.(string); ok {
			sub, ok := c.Value.(string)
			return ok && strings.Contains(s, sub)
		}
		if arr, ok := asArray(v); ok {
			for _, e := range arr {
				if equal(e, c.Value) {
					return true
				}
			}
		}
		return false
	case StartsWith:
		p, ok := c.Value.(string)
		return ok && anyElem(v, func(e any) bool {
			s, ok := e.(string)
			return ok && strings.HasPrefix(s, p)
		})
	}
	return false
}

// anyElem applies f to v, or to each element when v is an array.
func anyElem(v any, f func(any) bool) bool {
	if arr, ok := asArray(v); ok {
		for _, e := range arr {
			if f(e) {
				return true
			}
		}
		return false
	}
	return f(v)
}

func inList(v any, list []any) bool {
	for _, x := range list {
		if equal(v, x) {
			return true
		}
	}
	return false
}

// cmpHolds tells whether a comparison result r (-1, 0, 1) satisfies op.
func cmpHolds(op Op, r int) bool {
	switch op {
	case EQ:
		return r == 0
	case NE:
		return r != 0
	case GT:
		return r > 0
	case GTE:
		return r >= 0
	case LT:
		return r < 0
	case LTE:
		return r <= 0
	}
	return false
}

func countHolds(c CountCond, n int64) bool {
	return cmpHolds(c.Op, cmp.Compare(n, int64(c.Value)))
}
