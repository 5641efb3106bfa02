package resolvers

import (
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/analytics"
)

var intervals = map[model.Interval]analytics.Interval{
	model.IntervalHour: analytics.Hour, model.IntervalDay: analytics.Day,
	model.IntervalWeek: analytics.Week, model.IntervalMonth: analytics.Month,
}

var volumeGroups = map[model.EventVolumeGroupBy]analytics.GroupBy{
	model.EventVolumeGroupByName: analytics.ByName, model.EventVolumeGroupByChannel: analytics.ByChannel,
}

func toSeries(since, until time.Time, interval model.Interval, timeZone *string) analytics.SeriesQuery {
	return analytics.SeriesQuery{Since: since, Until: until, Interval: intervals[interval], TimeZone: deref(timeZone)}
}

func toVolumeQuery(since, until time.Time, interval model.Interval, timeZone *string, names, channels []string, groupBy *model.EventVolumeGroupBy, top *int) analytics.VolumeQuery {
	q := analytics.VolumeQuery{SeriesQuery: toSeries(since, until, interval, timeZone), Names: names, Channels: channels, Top: defaultTop}
	if top != nil {
		q.Top = *top
	}
	if groupBy != nil {
		q.GroupBy = volumeGroups[*groupBy]
	}
	return q
}

// defaultTop is the schema's default for top (an explicit null asks for it).
const defaultTop = 10

func toEventVolume(v *analytics.Volume) *model.EventVolume {
	out := &model.EventVolume{TimeZone: v.Span.Loc.String(), Total: int(v.Total), Groups: []model.EventVolumeGroup{}, Buckets: make([]model.EventVolumeBucket, len(v.Buckets))}
	for _, g := range v.Groups {
		mg := model.EventVolumeGroup{Other: g.Other, Total: int(g.Total)}
		if !g.Other {
			mg.Key = &g.Key // "": the channel of events sent without one
		}
		out.Groups = append(out.Groups, mg)
	}
	for i, b := range v.Buckets {
		counts := make([]int, len(b.Counts))
		for j, n := range b.Counts {
			counts[j] = int(n)
		}
		start, end := bucketEdges(v.Span, i)
		out.Buckets[i] = model.EventVolumeBucket{Start: start, End: end, Total: int(b.Total), Counts: counts}
	}
	return out
}

// bucketEdges are bucket i's start and end, in the series' zone.
func bucketEdges(sp analytics.Span, i int) (time.Time, time.Time) {
	return sp.Bounds[i].In(sp.Loc), sp.Bounds[i+1].In(sp.Loc)
}

func toSegmentSize(segmentID string, v *analytics.SegmentSizes) *model.SegmentSizeSeries {
	out := &model.SegmentSizeSeries{SegmentID: segmentID, TimeZone: v.Span.Loc.String(), Buckets: make([]model.SegmentSizeBucket, len(v.Buckets))}
	for i, b := range v.Buckets {
		start, end := bucketEdges(v.Span, i)
		out.Buckets[i] = model.SegmentSizeBucket{Start: start, End: end, Size: int(b.Size), Entered: int(b.Entered), Exited: int(b.Exited)}
	}
	return out
}

func toProfileGrowth(v *analytics.Growth) *model.ProfileGrowth {
	out := &model.ProfileGrowth{TimeZone: v.Span.Loc.String(), Totals: &model.ProfileGrowthFigures{}, Buckets: make([]model.ProfileGrowthBucket, len(v.Buckets))}
	for i, b := range v.Buckets {
		start, end := bucketEdges(v.Span, i)
		f := &model.ProfileGrowthFigures{
			NewProfiles: int(b.New), NewlyKnown: int(b.Known), Merges: int(b.Merges), Unmerges: int(b.Unmerges),
			Erasures: int(b.Erasures), ErasedProfiles: int(b.ErasedProfiles),
		}
		out.Buckets[i] = model.ProfileGrowthBucket{Start: start, End: end, Profiles: int(b.Profiles), Figures: f}
		out.Profiles = int(b.Profiles)
		t := out.Totals
		t.NewProfiles += f.NewProfiles
		t.NewlyKnown += f.NewlyKnown
		t.Merges += f.Merges
		t.Unmerges += f.Unmerges
		t.Erasures += f.Erasures
		t.ErasedProfiles += f.ErasedProfiles
	}
	return out
}

func toConsentRates(q analytics.ConsentQuery, v *analytics.ConsentRates) *model.ConsentRates {
	channel := model.ConsentChannelAny
	if q.Channel != "" {
		channel = model.ConsentChannel(q.Channel)
	}
	out := &model.ConsentRates{TimeZone: v.Span.Loc.String(), Purpose: q.Purpose, Channel: channel, AllowedWithoutRecord: v.AllowedWithoutRecord, Buckets: make([]model.ConsentRatesBucket, len(v.Buckets))}
	for i, b := range v.Buckets {
		start, end := bucketEdges(v.Span, i)
		share := 0.0
		if b.Profiles > 0 {
			share = float64(b.Contactable) / float64(b.Profiles)
		}
		out.Buckets[i] = model.ConsentRatesBucket{
			Start: start, End: end, Granted: int(b.Granted), Denied: int(b.Denied), Withdrawn: int(b.Withdrawn), Expired: int(b.Expired),
			Profiles: int(b.Profiles), Contactable: int(b.Contactable), ContactableShare: share,
		}
	}
	return out
}
