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

// SegmentSize replays the segment's membership history up to the span's
// end: one read of the segment's changes, in the order the history index
// keeps them, so the figures are the history's own (the size at the end
// of the last bucket is the size now).
func (s *Service) SegmentSize(ctx context.Context, tn store.Tenant, segmentID string, q SeriesQuery) (*SegmentSizes, error) {
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	out := &SegmentSizes{Span: sp, Buckets: make([]SizeBucket, sp.Len())}
	var before int64 // members when the span begins
	err = segment.EachChange(ctx, tn, segmentID, sp.End(), func(entered bool, at time.Time) error {
		i := sp.Index(at)
		switch {
		case i < 0 && entered:
			before++
		case i < 0:
			before--
		case entered:
			out.Buckets[i].Entered++
		default:
			out.Buckets[i].Exited++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	size := before
	for i := range out.Buckets {
		size += out.Buckets[i].Entered - out.Buckets[i].Exited
		out.Buckets[i].Size = size
	}
	return out, nil
}
