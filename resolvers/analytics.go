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

func toVolumeQuery(since, until time.Time, interval model.Interval, timeZone *string, names, channels []string, groupBy *model.EventVolumeGroupBy, top *int) analytics.VolumeQuery {
	q := analytics.VolumeQuery{Since: since, Until: until, Interval: intervals[interval], TimeZone: deref(timeZone), Names: names, Channels: channels, Top: defaultTop}
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
		out.Buckets[i] = model.EventVolumeBucket{Start: v.Span.Bounds[i].In(v.Span.Loc), End: v.Span.Bounds[i+1].In(v.Span.Loc), Total: int(b.Total), Counts: counts}
	}
	return out
}
