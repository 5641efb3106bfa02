package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// listSorts are the ad-hoc list orders of the plain list's orderBy, for a
// filter without sortBy.
var listSorts = map[model.ProfileOrder]segment.Sort{
	model.ProfileOrderCreatedAtDesc:  {Field: segment.SortCreatedAt},
	model.ProfileOrderCreatedAtAsc:   {Field: segment.SortCreatedAt, Asc: true},
	model.ProfileOrderUpdatedAtDesc:  {Field: segment.SortUpdatedAt},
	model.ProfileOrderLastSeenAtDesc: {Field: segment.SortLastSeenAt},
}

// adHocArgs are the profiles arguments that make an ad-hoc list.
type adHocArgs struct {
	first       int
	after       *string
	search      *string
	orderBy     *model.ProfileOrder
	byScore     *model.ProfileScoreOrder
	scoreFilter []model.ScoreRangeInput
	filter      *model.SegmentRuleInput
	sortBy      *model.ProfileSortInput
}

// adHocProfiles answers profiles(filter:, sortBy:): the segment engine's
// list of the profiles a rule matches now (segment.ListProfiles).
func (r *queryResolver) adHocProfiles(ctx context.Context, tn store.Tenant, p auth.Principal, a adHocArgs) (*model.ProfileConnection, error) {
	switch {
	case a.search != nil:
		return nil, apperr.Invalid("search", "cannot be combined with filter or sortBy")
	case a.byScore != nil:
		return nil, apperr.Invalid("byScore", "cannot be combined with filter or sortBy: sort with sortBy: {by: SCORE, score: …}")
	case a.scoreFilter != nil:
		return nil, apperr.Invalid("scoreFilter", "cannot be combined with filter or sortBy: compare the score in the filter (computed: {key: \"scores.…\"})")
	}
	q := segment.ListQuery{First: a.first, Sort: listSorts[model.ProfileOrderCreatedAtDesc]}
	if a.orderBy != nil {
		s, ok := listSorts[*a.orderBy]
		if !ok {
			return nil, apperr.Invalid("orderBy", "unknown order %s", *a.orderBy)
		}
		q.Sort = s
	}
	if s := a.sortBy; s != nil {
		q.Sort = segment.Sort{Field: segment.SortField(s.By), Asc: s.Direction != nil && *s.Direction == model.SortDirectionAsc}
		if s.Trait != nil {
			q.Sort.Trait = *s.Trait
		}
		if s.Score != nil {
			q.Sort.Score = scoreKeys[*s.Score]
		}
		switch {
		case s.By == model.ProfileSortFieldTrait && s.Trait == nil:
			return nil, apperr.Invalid("sortBy.trait", "is required with by: TRAIT")
		case s.By == model.ProfileSortFieldScore && s.Score == nil:
			return nil, apperr.Invalid("sortBy.score", "is required with by: SCORE")
		}
	}
	if a.filter != nil {
		rl, err := toRule(a.filter, "filter")
		if err != nil {
			return nil, err
		}
		// Membership of a segment is read with segments:read
		// (Profile.segments): a filter must not be a side door to it.
		if len(rule.DependsOn(rl).Segments) > 0 && !p.Has(auth.ScopeSegmentsRead) {
			return nil, apperr.New(apperr.Forbidden, "filter with inSegment needs scope %s", auth.ScopeSegmentsRead)
		}
		q.Rule = &rl
	}
	list := segment.ListName(q.Sort)
	var err error
	if q.After, err = unwrapCursor(list, a.after); err != nil {
		return nil, err
	}
	page, err := r.segments.ListProfilesFor(ctx, tn, q, r.ruleGuard(p))
	if err != nil {
		return nil, err
	}
	conn := &model.ProfileConnection{Edges: []model.ProfileEdge{}, Nodes: []model.Profile{}}
	// Counted in the pass that read the page.
	conn.Count = func(context.Context) (int64, error) { return page.Total, nil }
	cursors := make([]string, len(page.Profiles))
	for i, pr := range page.Profiles {
		mp := remember(ctx, pr)
		cursors[i] = wrapCursor(list, page.Cursors[i])
		conn.Edges = append(conn.Edges, model.ProfileEdge{Cursor: cursors[i], Node: mp})
		conn.Nodes = append(conn.Nodes, *mp)
	}
	conn.PageInfo = pageInfo(cursors, page.HasNext, a.after != nil && *a.after != "")
	return conn, nil
}
