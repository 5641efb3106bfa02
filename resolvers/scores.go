package resolvers

import (
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/scores"
)

var scoreKeys = map[model.ScoreField]string{
	model.ScoreFieldEngagement:    scores.KeyEngagement,
	model.ScoreFieldChurnRisk:     scores.KeyChurnRisk,
	model.ScoreFieldLifetimeValue: scores.KeyLifetimeValue,
	model.ScoreFieldRfmRecency:    scores.KeyRecency,
	model.ScoreFieldRfmFrequency:  scores.KeyFrequency,
	model.ScoreFieldRfmMonetary:   scores.KeyMonetary,
	model.ScoreFieldOrders:        scores.KeyOrders,
	model.ScoreFieldRevenue:       scores.KeyRevenue,
}

// toProfileQuery maps profiles' arguments to the domain's query (the
// caller's scope and cursor are set by the resolver).
func toProfileQuery(first int, search *string, orderBy *model.ProfileOrder, by *model.ProfileScoreOrder, filter []model.ScoreRangeInput) traits.ProfileQuery {
	q := traits.ProfileQuery{First: first, Search: search, Order: profile.CreatedDesc}
	if orderBy != nil {
		q.Order = profileOrders[*orderBy]
	}
	if by != nil {
		q.ByScore = &traits.ScoreOrder{Key: scoreKeys[by.Score], Asc: by.Direction != nil && *by.Direction == model.SortDirectionAsc}
	}
	for _, f := range filter {
		q.ScoreFilter = append(q.ScoreFilter, traits.Range{Key: scoreKeys[f.Score], Min: f.Min, Max: f.Max})
	}
	return q
}

func toScores(s scores.Scores, in scores.Input) *model.Scores {
	return &model.Scores{
		Rfm:        &model.Rfm{Recency: s.RFM.Recency, Frequency: s.RFM.Frequency, Monetary: s.RFM.Monetary, Label: optional(s.RFM.Label)},
		Engagement: s.Engagement, ChurnRisk: s.ChurnRisk, LifetimeValue: s.LifetimeValue, Explain: s.Explain,
		Orders: int(in.Orders), Revenue: in.Revenue,
		FirstOrderAt: optionalTime(in.FirstOrder), LastOrderAt: optionalTime(in.LastOrder),
	}
}

func toScoreSettings(s *traits.ScoreSettingsState) *model.ScoreSettings {
	return &model.ScoreSettings{OrderEvent: s.OrderEvent, RevenueProperty: s.RevenueProperty, Recount: toBackfill(s.Backfill),
		UpdatedAt: optionalTime(s.UpdatedAt)}
}

func toScoreSummary(s *traits.SummaryInfo) *model.ScoreSummary {
	if s == nil {
		return nil
	}
	out := &model.ScoreSummary{At: s.At, Buyers: s.Buyers, SampledFrom: int(s.Seen),
		Recency: s.Recency[:], Frequency: s.Frequency[:], Monetary: s.Monetary[:]}
	if s.TypicalGap > 0 {
		d := s.TypicalGap.Hours() / 24
		out.TypicalGapDays = &d
	}
	return out
}
