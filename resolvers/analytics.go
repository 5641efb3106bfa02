package resolvers

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

var intervals = map[model.Interval]analytics.Interval{
	model.IntervalHour: analytics.Hour, model.IntervalDay: analytics.Day,
	model.IntervalWeek: analytics.Week, model.IntervalMonth: analytics.Month,
}

var volumeGroups = map[model.EventVolumeGroupBy]analytics.GroupBy{
	model.EventVolumeGroupByName: analytics.ByName, model.EventVolumeGroupByChannel: analytics.ByChannel,
	model.EventVolumeGroupByProperty: analytics.ByProperty,
}

// volumeProperty checks the property a series by PROPERTY groups by and
// sets it on q: its values are stored data (profiles:read, as for
// topValues), and a property of personal data needs pii:read.
func (r *Resolver) volumeProperty(ctx context.Context, q *analytics.VolumeQuery, property *string) error {
	if q.GroupBy != analytics.ByProperty {
		if property != nil {
			return apperr.Invalid("property", "is only for groupBy: PROPERTY")
		}
		return nil
	}
	if property == nil || *property == "" {
		return apperr.Invalid("property", "groupBy: PROPERTY needs the property (a dot path) to group by")
	}
	if err := rule.ValidatePath(*property, "property"); err != nil {
		return err // bad input first, whatever the token
	}
	if err := r.requireValues(ctx, "eventVolume by PROPERTY"); err != nil {
		return err
	}
	m, err := r.piiMasker(ctx)
	if err != nil {
		return err
	}
	if m != nil {
		if err := m.CheckKeys("property", *property); err != nil {
			return err
		}
	}
	q.Property = *property
	return nil
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
		mg := model.EventVolumeGroup{Other: g.Other, Total: int(g.Total), Value: g.Value}
		if !g.Other && !g.Null {
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

func toActiveProfiles(v *analytics.Actives) *model.ActiveProfiles {
	out := &model.ActiveProfiles{TimeZone: v.Span.Loc.String(), Total: int(v.Total), Buckets: make([]model.ActiveProfilesBucket, len(v.Buckets))}
	for i, n := range v.Buckets {
		start, end := bucketEdges(v.Span, i)
		out.Buckets[i] = model.ActiveProfilesBucket{Start: start, End: end, Active: int(n)}
	}
	return out
}

func toRevenue(v *analytics.Revenues) *model.Revenue {
	out := &model.Revenue{TimeZone: v.Span.Loc.String(), OrderEvent: v.OrderEvent, RevenueProperty: v.Property,
		Orders: int(v.Orders), Revenue: money(v.Revenue), AverageOrderValue: average(v.Revenue, v.Orders), Buckets: make([]model.RevenueBucket, len(v.Buckets))}
	for i, b := range v.Buckets {
		start, end := bucketEdges(v.Span, i)
		out.Buckets[i] = model.RevenueBucket{Start: start, End: end, Orders: int(b.Orders), Revenue: money(b.Revenue), AverageOrderValue: average(b.Revenue, b.Orders)}
	}
	return out
}

// money is an amount in millionths as a number.
func money(micros int64) float64 { return float64(micros) / 1e6 }

func average(micros, orders int64) float64 {
	if orders == 0 {
		return 0
	}
	return math.Round(float64(micros)/float64(orders)) / 1e6
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

// defaultPeriods is the schema's default for retention's periods.
const defaultPeriods = 8

func toFilter(in model.EventFilter) analytics.EventFilter {
	f := analytics.EventFilter{Name: in.Name}
	for i := range in.Where {
		f.Where = append(f.Where, *toCond(&in.Where[i]))
	}
	return f
}

// windowUnits are a window unit's length.
var windowUnits = map[model.WindowUnit]time.Duration{model.WindowUnitMinutes: time.Minute, model.WindowUnitHours: time.Hour, model.WindowUnitDays: 24 * time.Hour}

func toFunnelQuery(steps []model.EventFilter, within *model.RelativeWindowInput, since, until time.Time, segmentID, breakdownTrait *string) (analytics.FunnelQuery, error) {
	q := analytics.FunnelQuery{Since: since, Until: until, Within: 14 * 24 * time.Hour, SegmentID: deref(segmentID), BreakdownTrait: deref(breakdownTrait)}
	for _, st := range steps {
		q.Steps = append(q.Steps, toFilter(st))
	}
	if within != nil {
		// Checked per unit before multiplying: a huge amount must not wrap
		// into a small window.
		unit := windowUnits[within.Unit]
		most := int(analytics.MaxWithin / unit)
		if within.Amount < 1 || within.Amount > most {
			return q, apperr.Invalid("within.amount", "must be between 1 and %d %s", most, strings.ToLower(string(within.Unit)))
		}
		q.Within = time.Duration(within.Amount) * unit
	}
	if breakdownTrait != nil && *breakdownTrait == "" {
		return q, apperr.Invalid("breakdownTrait", "must not be empty")
	}
	return q, nil
}

// checkFiltersPII refuses filters (and a breakdown trait) on personal
// data to a token without pii:read.
func (r *Resolver) checkFiltersPII(ctx context.Context, field string, fs []analytics.EventFilter, breakdown string) error {
	m, err := r.piiMasker(ctx)
	if err != nil || m == nil {
		return err
	}
	for i, f := range fs {
		at := fmt.Sprintf("%s[%d]", field, i)
		if len(fs) == 1 && field != "steps" {
			at = field // start, returning: one filter
		}
		for j, c := range f.Where {
			if err := m.CheckKeys(fmt.Sprintf("%s.where[%d]", at, j), c.Key); err != nil {
				return err
			}
		}
	}
	if breakdown != "" {
		return m.CheckKeys("breakdownTrait", breakdown)
	}
	return nil
}

// ratio is a over b, 0 when b is.
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func toFunnel(q analytics.FunnelQuery, f *analytics.Funnel) *model.Funnel {
	out := &model.Funnel{Steps: make([]model.FunnelStep, len(f.Steps)), Breakdown: []model.FunnelGroup{}}
	for k, st := range f.Steps {
		m := model.FunnelStep{Name: q.Steps[k].Name, People: int(st.People), Conversion: 1, ConversionFromFirst: ratio(st.People, f.Steps[0].People)}
		if k > 0 {
			m.Conversion = ratio(st.People, f.Steps[k-1].People)
			if st.People > 0 {
				med, p90 := st.Median.Seconds(), st.P90.Seconds()
				m.MedianSecondsFromPrevious, m.P90SecondsFromPrevious = &med, &p90
			}
		} else if st.People == 0 {
			m.Conversion = 0
		}
		out.Steps[k] = m
	}
	for _, g := range f.Groups {
		people := make([]int, len(g.People))
		for i, n := range g.People {
			people[i] = int(n)
		}
		out.Breakdown = append(out.Breakdown, model.FunnelGroup{Value: g.Value, Other: g.Other, People: people})
	}
	return out
}

func toRetention(q analytics.RetentionQuery, v *analytics.Retention) *model.Retention {
	out := &model.Retention{TimeZone: v.Span.Loc.String(), Periods: q.Periods, Cohorts: make([]model.RetentionCohort, len(v.Cohorts))}
	for i, c := range v.Cohorts {
		start, end := bucketEdges(v.Span, i)
		m := model.RetentionCohort{Start: start, End: end, People: int(c.People), Returned: make([]int, len(c.Returned)), Rates: make([]float64, len(c.Returned))}
		for k, n := range c.Returned {
			m.Returned[k], m.Rates[k] = int(n), ratio(n, c.People)
		}
		out.Cohorts[i] = m
	}
	return out
}

func toTopValues(v *analytics.TopValues) *model.TopValues {
	out := &model.TopValues{Events: int(v.Events), Missing: int(v.Missing), Distinct: v.Distinct, Other: int(v.Other), Values: make([]model.TopValue, len(v.Values))}
	for i, x := range v.Values {
		out.Values[i] = model.TopValue{Value: x.Value, Count: int(x.Count)}
	}
	return out
}

// toTile is the bucket under way of a live series (it has one bucket).
func toTile(v *analytics.Volume) *model.EventVolumeTile {
	ev := toEventVolume(v)
	return &model.EventVolumeTile{TimeZone: ev.TimeZone, Groups: ev.Groups, Bucket: &ev.Buckets[0]}
}

// requireValues refuses stored values (trait values of a breakdown, an
// event property's values) to a token that cannot read profiles:
// analytics:read alone gives counts, and a group can be one person.
func (r *Resolver) requireValues(ctx context.Context, what string) error {
	_, p, err := r.tenant(ctx)
	if err != nil {
		return err
	}
	if !p.Has(auth.ScopeProfilesRead) {
		return apperr.New(apperr.Forbidden, "%s needs scope %s as well: it returns stored values, not only counts", what, auth.ScopeProfilesRead)
	}
	return nil
}
