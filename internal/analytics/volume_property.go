package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// volumeByProperty answers an event-volume series grouped by a property's
// value. Rollups hold no property values (they would hold personal data,
// and which paths a dashboard asks for is not known ahead), so it walks
// the stored events once in storage order, as topValues does (a walk
// token; more than MaxDistinctTop values is refused rather than answered
// inexactly).
func (s *Service) volumeByProperty(ctx context.Context, tn store.Tenant, q VolumeQuery, sp Span) (*Volume, error) {
	if err := rule.ValidatePath(q.Property, "property"); err != nil {
		return nil, err
	}
	release, err := s.walk(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	// Per part: each value once (its key, as stored, its total), and the
	// counts of every value and bucket in one map: a value seen in one
	// bucket costs one entry, not a map of its own.
	type group struct {
		key   string
		value any
		null  bool
		total int64
	}
	type part struct {
		index  map[string]int32
		groups []group
		counts map[uint64]int64 // group<<32 | bucket
	}
	parts := make([]part, walkParts())
	for i := range parts {
		parts[i] = part{index: map[string]int32{}, counts: map[uint64]int64{}}
	}
	var keep func([]byte) bool
	if len(q.Names) > 0 {
		names := make(map[string]bool, len(q.Names))
		for _, n := range q.Names {
			names[n] = true
		}
		keep = func(n []byte) bool { return names[string(n)] }
	}
	err = timeline.EachStored(ctx, tn, len(parts), keep, func(i int, it *timeline.Item) error {
		b := sp.Index(it.OccurredAt)
		if it.Kind != timeline.KindEvent || b < 0 || len(q.Channels) > 0 && !slices.Contains(q.Channels, it.Channel) {
			return nil
		}
		props, err := it.Properties()
		if err != nil {
			return err
		}
		v, ok := rule.Lookup(props, q.Property)
		null := !ok || v == nil
		k := nullKey
		if !null {
			k = valueKey(v)
		}
		pt := &parts[i]
		g, seen := pt.index[k]
		if !seen {
			if len(pt.groups) == MaxDistinctTop {
				return tooManyGroups()
			}
			g = int32(len(pt.groups))
			pt.index[k] = g
			pt.groups = append(pt.groups, group{key: k, value: v, null: null})
		}
		pt.groups[g].total++
		pt.counts[uint64(g)<<32|uint64(b)]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The parts together, under one index.
	index := map[string]int32{}
	var all []group
	counts := map[uint64]int64{}
	for _, pt := range parts {
		to := make([]int32, len(pt.groups))
		for j, g := range pt.groups {
			at, seen := index[g.key]
			if !seen {
				if len(all) == MaxDistinctTop {
					return nil, tooManyGroups()
				}
				at = int32(len(all))
				index[g.key] = at
				all = append(all, group{key: g.key, value: g.value, null: g.null})
			}
			all[at].total += g.total
			to[j] = at
		}
		for gb, n := range pt.counts {
			counts[uint64(to[gb>>32])<<32|gb&0xffffffff] += n
		}
	}
	order := make([]int32, len(all))
	for i := range order {
		order[i] = int32(i)
	}
	// Largest first; ties by the value's JSON text (events without the
	// value first).
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(all[b].total, all[a].total); c != 0 {
			return c
		}
		return cmp.Compare(all[a].key, all[b].key)
	})
	named := min(len(order), q.Top)
	col := make([]int, len(all)) // each value's column: past the named, other
	for rank, g := range order {
		col[g] = min(rank, named)
	}
	width := named
	if len(order) > named {
		width++
	}
	v := &Volume{Span: sp, Buckets: make([]Bucket, sp.Len())}
	for i := range v.Buckets {
		v.Buckets[i].Counts = make([]int64, width)
	}
	for gb, n := range counts {
		g, b := int32(gb>>32), int(gb&0xffffffff)
		v.Buckets[b].Counts[col[g]] += n
		v.Buckets[b].Total += n
		v.Total += n
	}
	for _, g := range order[:named] {
		v.Groups = append(v.Groups, Group{Key: propertyText(all[g].value), Value: all[g].value, Null: all[g].null, Total: all[g].total})
	}
	if width > named {
		other := Group{Other: true}
		for _, g := range order[named:] {
			other.Total += all[g].total
		}
		v.Groups = append(v.Groups, other)
	}
	return v, nil
}

// nullKey groups the events without the value: apart from every JSON
// text, and first among equals.
const nullKey = "\x00null"

// propertyText is a property value as a group's key: a string as it is,
// any other value as JSON.
func propertyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // shown, not embedded in a page
	if err := enc.Encode(v); err != nil {
		return valueKey(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func tooManyGroups() error {
	return apperr.Invalid("property", "has more than %d different values in the range: narrow since and until, or filter by names", MaxDistinctTop)
}
