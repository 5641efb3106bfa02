// Package aggtest is a from-scratch computation of computed trait values
// over raw events, written plainly and independently of package agg's
// incremental state, for tests to check the engine against. Event filters
// (Def.Where) are decided by ruletest.Match, an operator evaluator written
// independently of package segment's matching (Feature.Matches), so that a
// wrong operator there fails the comparison.
package aggtest

import (
	"fmt"
	"sort"
	"time"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/segment/rule/ruletest"
	"github.com/halo-cdp/halo/internal/traits/agg"
)

// Event is one raw event.
type Event struct {
	ID    string
	Name  string
	Props map[string]any
	At    time.Time
}

// Reference computes d's value at now over evs (in any order).
func Reference(d agg.Def, evs []Event, now time.Time) any {
	var in []Event
	for _, e := range evs {
		if e.Name != d.Event || !matches(d.Where, e.Props) {
			continue
		}
		if !inWindow(d.Window, e.At, now) {
			continue
		}
		in = append(in, e)
	}
	sort.Slice(in, func(i, j int) bool {
		if !in[i].At.Equal(in[j].At) {
			return in[i].At.Before(in[j].At)
		}
		return in[i].ID < in[j].ID
	})
	var (
		nums []float64
		vals []any
		ats  []time.Time
	)
	for _, e := range in {
		v := get(e.Props, d.Property)
		if f, ok := num(v); ok {
			nums = append(nums, f)
		}
		if v != nil {
			vals = append(vals, v)
			ats = append(ats, e.At)
		}
	}
	switch d.Kind {
	case agg.Count:
		return int64(len(in))
	case agg.Sum:
		s := 0.0
		for _, f := range nums {
			s += f
		}
		return s
	case agg.Avg:
		if len(nums) == 0 {
			return nil
		}
		s := 0.0
		for _, f := range nums {
			s += f
		}
		return s / float64(len(nums))
	case agg.Min, agg.Max:
		if len(nums) == 0 {
			return nil
		}
		best := nums[0]
		for _, f := range nums {
			if d.Kind == agg.Min && f < best || d.Kind == agg.Max && f > best {
				best = f
			}
		}
		return best
	case agg.First:
		if len(vals) == 0 {
			return nil
		}
		return vals[0]
	case agg.Last:
		if len(vals) == 0 {
			return nil
		}
		return vals[len(vals)-1]
	case agg.MostFrequent, agg.UniqueList:
		type stat struct {
			v    any
			n    int
			last time.Time
		}
		by := map[string]*stat{}
		for i, v := range vals {
			k, ok := key(v)
			if !ok {
				continue
			}
			if f, ok := num(v); ok {
				v = f
			}
			s := by[k]
			if s == nil {
				s = &stat{v: v}
				by[k] = s
			}
			s.n++
			if ats[i].After(s.last) {
				s.last = ats[i]
			}
		}
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		// most recent first, then smaller key
		sort.Slice(keys, func(i, j int) bool {
			a, b := by[keys[i]], by[keys[j]]
			if !a.last.Equal(b.last) {
				return a.last.After(b.last)
			}
			return keys[i] < keys[j]
		})
		if d.Kind == agg.UniqueList {
			out := []any{}
			for _, k := range keys {
				if len(out) == agg.MaxUnique {
					break
				}
				out = append(out, by[k].v)
			}
			return out
		}
		if len(keys) == 0 {
			return nil
		}
		best := keys[0]
		for _, k := range keys {
			if by[k].n > by[best].n {
				best = k
			}
		}
		return by[best].v
	}
	return nil
}

// matches tells whether props pass every filter.
func matches(where []rule.PropertyCond, props map[string]any) bool {
	for _, c := range where {
		if !ruletest.Match(c.Key, string(c.Op), c.Value, c.Values, props) {
			return false
		}
	}
	return true
}

func inWindow(w *rule.Window, at, now time.Time) bool {
	switch {
	case w == nil:
		return true
	case w.Between != nil:
		return !at.Before(w.Between.From) && at.Before(w.Between.To)
	}
	var start time.Time
	switch w.Last.Unit {
	case rule.Days:
		start = now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(w.Last.Amount - 1))
	case rule.Hours:
		start = now.UTC().Truncate(time.Minute).Add(-time.Duration(w.Last.Amount*60-1) * time.Minute)
	case rule.Minutes:
		start = now.UTC().Truncate(time.Minute).Add(-time.Duration(w.Last.Amount-1) * time.Minute)
	}
	return !at.Before(start)
}

func get(props map[string]any, path string) any {
	if path == "" {
		return nil
	}
	var cur any = props
	for _, seg := range split(path) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[seg]
	}
	return cur
}

func split(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// key is a scalar's identity: numbers by value, strings, booleans.
func key(v any) (string, bool) {
	if f, ok := num(v); ok {
		return fmt.Sprintf("n%v", f), true
	}
	switch x := v.(type) {
	case string:
		return "s" + x, true
	case bool:
		return fmt.Sprintf("b%v", x), true
	}
	return "", false
}
