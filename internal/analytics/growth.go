package analytics

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/store"
)

// Growth is the profile-growth series.
type Growth struct {
	Span    Span
	Buckets []GrowthBucket
}

// GrowthBucket is one bucket of it. Every figure is of what is stored:
// a profile merged into another or erased is no longer a profile.
type GrowthBucket struct {
	// Profiles are the stored profiles created before the bucket's end.
	Profiles int64
	// New are the stored profiles created in the bucket.
	New int64
	// Known are the stored profiles that became known in the bucket: the
	// first identifier of a person (not an anonymousId or deviceId) was
	// seen then.
	Known int64
	// Merges and Unmerges took effect in the bucket (a merge undone later
	// still counts where it happened).
	Merges, Unmerges int64
	// Erasures finished erasures begun in the bucket; ErasedProfiles the
	// profiles they erased.
	Erasures, ErasedProfiles int64
}

// ProfileGrowth counts new profiles with one index count per bucket, and
// reads the identifiers (for Known), the merge records and the erasure
// records of the span.
func (s *Service) ProfileGrowth(ctx context.Context, tn store.Tenant, q SeriesQuery) (*Growth, error) {
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	out := &Growth{Span: sp, Buckets: make([]GrowthBucket, sp.Len())}
	err = profilesAt(ctx, tn, sp, func(i int, created, total int64) {
		out.Buckets[i].New, out.Buckets[i].Profiles = created, total
	})
	if err != nil {
		return nil, err
	}
	err = identity.EachKnown(ctx, tn, func(_ string, at time.Time) error {
		if i := sp.Index(at); i >= 0 {
			out.Buckets[i].Known++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = identity.EachMergeEvent(ctx, tn, sp.Start(), sp.End(), func(kind string, at time.Time) error {
		if i := sp.Index(at); i >= 0 {
			if kind == identity.KindMerge {
				out.Buckets[i].Merges++
			} else {
				out.Buckets[i].Unmerges++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = privacy.EachErasure(ctx, tn, sp.Start(), sp.End(), func(at time.Time, profiles int) error {
		if i := sp.Index(at); i >= 0 {
			out.Buckets[i].Erasures++
			out.Buckets[i].ErasedProfiles += int64(profiles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
