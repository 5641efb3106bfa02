// Package ruletest holds test helpers for the segment rule language that are
// written independently of package rule, so that tests can check the
// package against them: a reference evaluator of one trait or property
// condition (Match), and the seed scheme of the property tests (Seeds).
//
// It must not import package segment (segment's own tests import it) and
// must not share code with it: Match is written from the documented
// semantics of rule.TraitCond, not from match.go.
package ruletest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Match tells whether doc satisfies the condition {key, op, value,
// values} (a rule.TraitCond or PropertyCond, with op its Op as a
// string). The semantics, as documented on rule.TraitCond:
//
//   - key is a dot path through objects (map[string]any, bson.M, bson.D);
//     a key whose value is null is missing.
//   - Scalars: numbers of any Go type compare by exact numeric value
//     (int64 vs float64, large integers not rounded; NaN is not a number);
//     strings are equal only byte for byte and ordered byte-wise, except
//     that two strings that are both RFC 3339 timestamps order as
//     instants; a time value (time.Time, bson.DateTime) equals or orders
//     with another time value or an RFC 3339 string as instants; booleans
//     are equal or not, never ordered; values of different kinds are
//     never equal nor ordered; objects, arrays and null equal nothing.
//   - Array-valued traits ([]any, bson.A), one level deep: EQ, IN, GT,
//     GTE, LT, LTE, STARTS_WITH and CONTAINS hold when at least one element
//     satisfies them on its own; an empty array satisfies none of them.
//     CONTAINS on an array means "an element equals value" (no substring
//     search inside elements). An element that is itself an array or an
//     object matches nothing.
//   - NE is exactly "not EQ" and NOT_IN exactly "not IN": on an array,
//     NE holds when no element equals value, NOT_IN when no element is in
//     values; a missing trait satisfies both (and an empty array too).
//   - Every operator but NE, NOT_IN and EXISTS is false on a missing key.
//   - EXISTS holds when the key is present and not null; a bool value
//     false inverts it (an empty array exists).
//   - CONTAINS on a string: value is a string and a substring
//     (case-sensitive). STARTS_WITH: value is a string and a prefix of the
//     string (or of a string element), case-sensitive.
//   - An unknown operator matches nothing.
func Match(key, op string, value any, values []any, doc map[string]any) bool {
	v, found := lookup(doc, key)
	switch op {
	case "EXISTS":
		want := true
		if b, ok := value.(bool); ok {
			want = b
		}
		return found == want
	case "NE":
		return !Match(key, "EQ", value, values, doc)
	case "NOT_IN":
		return !Match(key, "IN", value, values, doc)
	}
	if !found {
		return false
	}
	elems := []any{v}
	if arr, ok := array(v); ok {
		elems = arr
	}
	some := func(pred func(e any) bool) bool {
		for _, e := range elems {
			if pred(e) {
				return true
			}
		}
		return false
	}
	switch op {
	case "EQ":
		return some(func(e any) bool { return same(e, value) })
	case "IN":
		return some(func(e any) bool {
			for _, x := range values {
				if same(e, x) {
					return true
				}
			}
			return false
		})
	case "GT", "GTE", "LT", "LTE":
		return some(func(e any) bool {
			r, ok := order(e, value)
			if !ok {
				return false
			}
			switch op {
			case "GT":
				return r == 1
			case "GTE":
				return r == 1 || r == 0
			case "LT":
				return r == -1
			}
			return r == -1 || r == 0
		})
	case "CONTAINS":
		if s, ok := v.(string); ok {
			sub, ok := value.(string)
			return ok && strings.Contains(s, sub)
		}
		if _, ok := array(v); ok {
			return some(func(e any) bool { return same(e, value) })
		}
		return false
	case "STARTS_WITH":
		p, ok := value.(string)
		if !ok {
			return false
		}
		return some(func(e any) bool {
			s, ok := e.(string)
			return ok && len(s) >= len(p) && s[:len(p)] == p
		})
	}
	return false
}

func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, name := range strings.Split(path, ".") {
		var next any
		found := false
		switch m := cur.(type) {
		case map[string]any:
			next, found = m[name]
		case bson.M:
			next, found = m[name]
		case bson.D:
			for i := range m {
				if m[i].Key == name {
					next, found = m[i].Value, true
					break
				}
			}
		}
		if !found {
			return nil, false
		}
		cur = next
	}
	return cur, cur != nil
}

func array(v any) ([]any, bool) {
	switch a := v.(type) {
	case []any:
		return a, true
	case bson.A:
		return []any(a), true
	}
	return nil, false
}

// numeric reads a number exactly as a big.Float.
func numeric(v any) (*big.Float, bool) {
	f := new(big.Float)
	switch x := v.(type) {
	case int:
		return f.SetInt64(int64(x)), true
	case int8:
		return f.SetInt64(int64(x)), true
	case int16:
		return f.SetInt64(int64(x)), true
	case int32:
		return f.SetInt64(int64(x)), true
	case int64:
		return f.SetInt64(x), true
	case uint:
		return f.SetUint64(uint64(x)), true
	case uint8:
		return f.SetUint64(uint64(x)), true
	case uint16:
		return f.SetUint64(uint64(x)), true
	case uint32:
		return f.SetUint64(uint64(x)), true
	case uint64:
		return f.SetUint64(x), true
	case float32:
		if math.IsNaN(float64(x)) {
			return nil, false
		}
		return f.SetFloat64(float64(x)), true
	case float64:
		if math.IsNaN(x) {
			return nil, false
		}
		return f.SetFloat64(x), true
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return f.SetInt64(i), true
		}
		g, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsNaN(g) {
			return nil, false
		}
		return f.SetFloat64(g), true
	}
	return nil, false
}

// timeValue reads a time.Time (not zero) or bson.DateTime.
func timeValue(v any) (t time.Time, isTime, ok bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true, !x.IsZero()
	case *time.Time:
		if x == nil {
			return time.Time{}, true, false
		}
		return *x, true, !x.IsZero()
	case bson.DateTime:
		return time.UnixMilli(int64(x)), true, true
	}
	return time.Time{}, false, false
}

// instant reads a time value or an RFC 3339 string.
func instant(v any) (time.Time, bool) {
	if t, isTime, ok := timeValue(v); isTime {
		return t, ok
	}
	if s, ok := v.(string); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	return time.Time{}, false
}

func same(a, b any) bool {
	if x, ok := numeric(a); ok {
		y, ok := numeric(b)
		return ok && x.Cmp(y) == 0
	}
	_, aTime, _ := timeValue(a)
	_, bTime, _ := timeValue(b)
	if aTime || bTime {
		ta, ok1 := instant(a)
		tb, ok2 := instant(b)
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

// order returns -1, 0 or 1, and false when a and b are not ordered.
func order(a, b any) (int, bool) {
	if x, ok := numeric(a); ok {
		y, ok := numeric(b)
		if !ok {
			return 0, false
		}
		return x.Cmp(y), true
	}
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	_, aTime, _ := timeValue(a)
	_, bTime, _ := timeValue(b)
	if aTime || bTime || aStr && bStr {
		ta, ok1 := instant(a)
		tb, ok2 := instant(b)
		if ok1 && ok2 {
			switch {
			case ta.Before(tb):
				return -1, true
			case ta.After(tb):
				return 1, true
			}
			return 0, true
		}
	}
	if aStr && bStr {
		switch {
		case sa < sb:
			return -1, true
		case sa > sb:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// FixedSeeds are the seeds every property test runs on every run, so that
// a run is reproducible and a failure on them shows on every machine.
var FixedSeeds = []uint64{1, 0x5eed, 20250601}

// Seeds returns the seeds a property test runs: FixedSeeds and one random
// seed (a new one each run), or only the seed in the environment variable
// env when it is set (to replay a failure). It logs every seed.
func Seeds(t testing.TB, env string) []uint64 {
	t.Helper()
	if s := os.Getenv(env); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, s, err)
		}
		t.Logf("seed %d (from %s)", seed, env)
		return []uint64{seed}
	}
	seeds := append(append([]uint64(nil), FixedSeeds...), rand.Uint64())
	t.Logf("seeds %v (fixed %v, random %d); replay one with %s=<seed>", seeds, FixedSeeds, seeds[len(seeds)-1], env)
	return seeds
}

// Replay is the hint a failing property test prints.
func Replay(env string, seed uint64) string {
	return fmt.Sprintf("replay with %s=%d", env, seed)
}
