package analytics

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/store"
)

// SeriesQuery is the span every series takes.
type SeriesQuery struct {
	Since, Until time.Time
	Interval     Interval
	TimeZone     string
}

// SegmentSizes is a segment's size series.
type SegmentSizes struct {
	Span    Span
	Buckets []SizeBucket
}

// SizeBucket is one bucket of a size series.
type SizeBucket struct {
	// Size is the members at the bucket's end (now, for a bucket that
	// has not ended).
	Size int64
	// Entered and Exited count the history's changes in the bucket: a
	// person who entered and left in it counts once in each.
	Entered, Exited int64
}

// SegmentSize replays the segment's membership history by index counts
// (segment.Moves): the figures are the history's own, and the size at
// the end of the last bucket is the size now.
func (s *Service) SegmentSize(ctx context.Context, tn store.Tenant, segmentID string, q SeriesQuery) (*SegmentSizes, error) {
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	out := &SegmentSizes{Span: sp, Buckets: make([]SizeBucket, sp.Len())}
	b, in, err := segment.Moves(ctx, tn, segmentID, sp.Bounds)
	if err != nil {
		return nil, err
	}
	before := b[0] - b[1] // members when the span begins
	for i, m := range in {
		out.Buckets[i].Entered, out.Buckets[i].Exited = m[0], m[1]
	}
	size := before
	for i := range out.Buckets {
		size += out.Buckets[i].Entered - out.Buckets[i].Exited
		out.Buckets[i].Size = size
	}
	return out, nil
}
