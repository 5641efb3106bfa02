package analytics

import (
	"cmp"
	"context"
	"slices"

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
	type group struct {
		value    any
		null     bool
		total    int64
		byBucket map[int]int64
	}
	parts := make([]map[string]*group, walkParts())
	for i := range parts {
		parts[i] = map[string]*group{}
	}
	var keep func([]byte) bool
	if len(q.Names) > 0 {
		keep = func(n []byte) bool { return slices.Contains(q.Names, string(n)) }
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
		k := "\x00null" // apart from every JSON text
		if !null {
			k = valueKey(v)
		}
		g := parts[i][k]
		if g == nil {
			if len(parts[i]) == MaxDistinctTop {
				return tooManyGroups()
			}
			g = &group{value: v, null: null, byBucket: map[int]int64{}}
			parts[i][k] = g
		}
		g.total++
		g.byBucket[b]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	all := parts[0]
	for _, pt := range parts[1:] {
		for k, g := range pt {
			have := all[k]
			if have == nil {
				if len(all) == MaxDistinctTop {
					return nil, tooManyGroups()
				}
				all[k] = g
				continue
			}
			have.total += g.total
			for b, n := range g.byBucket {
				have.byBucket[b] += n
			}
		}
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(all[b].total, all[a].total); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	v := &Volume{Span: sp, Buckets: make([]Bucket, sp.Len())}
	named := keys[:min(len(keys), q.Top)]
	width := len(named)
	if len(keys) > len(named) {
		width++
	}
	for i := range v.Buckets {
		v.Buckets[i].Counts = make([]int64, width)
	}
	for j, k := range keys {
		g := all[k]
		col := min(j, len(named)) // past the named groups: other
		if j < len(named) {
			v.Groups = append(v.Groups, Group{Key: propertyText(g.value), Value: g.value, Null: g.null, Total: g.total})
		}
		for b, n := range g.byBucket {
			v.Buckets[b].Counts[col] += n
			v.Buckets[b].Total += n
		}
		v.Total += g.total
	}
	if width > len(named) {
		other := Group{Other: true}
		for _, k := range keys[len(named):] {
			other.Total += all[k].total
		}
		v.Groups = append(v.Groups, other)
	}
	return v, nil
}

// propertyText is a property value as a group's key: a string as it is,
// any other value as JSON.
func propertyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return valueKey(v)
}

func tooManyGroups() error {
	return apperr.Invalid("property", "has more than %d different values in the range: narrow since and until, or filter by names", MaxDistinctTop)
}
