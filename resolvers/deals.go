package resolvers

import (
	"context"
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/crm/deal"
)

func toDeal(d *deal.Deal, now time.Time) *model.Deal {
	out := &model.Deal{ID: d.ID, Name: d.Name, Pipeline: d.Pipeline, Stage: d.Stage, Status: model.DealStatus(d.Status),
		Amount: d.AmountUnits(), Currency: d.Currency, OwnerID: optional(d.OwnerID), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		CloseReason: optional(d.CloseReason), Version: int(d.Version), AccountID: d.AccountID, ContactIDs: d.ContactIDs,
		History: []model.DealStageVisit{}}
	if !d.ExpectedCloseAt.Equal(deal.NoClose) {
		out.ExpectedCloseAt = &d.ExpectedCloseAt
	}
	if !d.ClosedAt.IsZero() {
		out.ClosedAt = &d.ClosedAt
	}
	for _, v := range d.History {
		m := model.DealStageVisit{Stage: v.Stage, EnteredAt: v.EnteredAt, Reason: optional(v.Reason)}
		end := now
		if !v.LeftAt.IsZero() {
			left := v.LeftAt
			m.LeftAt, end = &left, left
		}
		m.Seconds = end.Sub(v.EnteredAt).Seconds()
		out.History = append(out.History, m)
	}
	return out
}

func toPipeline(p *deal.Pipeline) *model.Pipeline {
	out := &model.Pipeline{Key: p.Key, Name: p.Name, Version: int(p.Version), Stages: []model.PipelineStage{}}
	for _, s := range p.Stages {
		out.Stages = append(out.Stages, toStage(s))
	}
	return out
}

func toStage(s deal.Stage) model.PipelineStage {
	return model.PipelineStage{Key: s.Key, Name: s.Name, Probability: s.Probability, Outcome: model.StageOutcome(s.Outcome)}
}

func toDealFilter(f *model.DealFilter) deal.Filter {
	if f == nil {
		return deal.Filter{}
	}
	out := deal.Filter{Pipeline: deref(f.Pipeline), Stage: deref(f.Stage), Owner: deref(f.OwnerID), Account: deref(f.AccountID)}
	if f.Status != nil {
		out.Status = string(*f.Status)
	}
	if f.ClosingFrom != nil {
		out.ClosingFrom = f.ClosingFrom.UTC()
	}
	if f.ClosingTo != nil {
		out.ClosingTo = f.ClosingTo.UTC()
	}
	return out
}

func toSummary(s *deal.Summary) *model.PipelineSummary {
	out := &model.PipelineSummary{Pipeline: toPipeline(s.Pipeline), Stages: []model.PipelineStageSummary{}, Won: int(s.Won), Lost: int(s.Lost), WinRate: s.WinRate}
	if s.AverageCycle > 0 {
		d := s.AverageCycle.Hours() / 24
		out.AverageCycleDays = &d
	}
	for _, st := range s.Stages {
		stage := toStage(st.Stage)
		m := model.PipelineStageSummary{Stage: &stage, Count: int(st.Count), Values: []model.DealValue{}}
		for _, v := range st.Values {
			m.Values = append(m.Values, model.DealValue{Currency: v.Currency, Amount: v.Amount, Weighted: v.Weighted})
		}
		out.Stages = append(out.Stages, m)
	}
	return out
}

// dealPage is a connection over the deals f picks.
func (r *Resolver) dealPage(ctx context.Context, f deal.Filter, first *int, after *string) (*model.DealConnection, error) {
	list := f.ListName()
	tn, n, key, err := r.pageRequest(ctx, list, first, after)
	if err != nil {
		return nil, err
	}
	page, err := r.deals.List(ctx, tn, f, n, key)
	if err != nil {
		return nil, err
	}
	conn := &model.DealConnection{Edges: []model.DealEdge{}, Nodes: []model.Deal{}}
	conn.Count = func(ctx context.Context) (int64, error) { return r.deals.Count(ctx, tn, f) }
	now := r.deals.Now()
	cursors := make([]string, len(page.Deals))
	for i, d := range page.Deals {
		m := toDeal(d, now)
		cursors[i] = wrapCursor(list, page.Cursors[i])
		conn.Edges = append(conn.Edges, model.DealEdge{Cursor: cursors[i], Node: m})
		conn.Nodes = append(conn.Nodes, *m)
	}
	conn.PageInfo = pageInfo(cursors, page.HasNext, key != "")
	return conn, nil
}
