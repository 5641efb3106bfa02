package resolvers

import (
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits"
)

func toComputedTrait(d *traits.Definition) *model.ComputedTrait {
	out := &model.ComputedTrait{
		Key: d.Key, Kind: model.ComputedTraitKind(d.Kind), Event: d.Event, Version: int(d.DefVersion),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Backfill: toBackfill(d.Backfill),
		Property: optional(d.Property), Description: optional(d.Description),
	}
	if len(d.Where) > 0 {
		out.Where = d.Where
	}
	if d.Window != nil {
		out.Window = d.Window
	}
	return out
}

func toBackfill(b traits.Backfill) *model.ComputedTraitBackfill {
	return &model.ComputedTraitBackfill{
		Status: model.BackfillStatus(b.Status), Processed: int(b.Processed), Total: int(b.Total),
		StartedAt: optionalTime(b.StartedAt), FinishedAt: optionalTime(b.FinishedAt), Error: optional(b.Error),
	}
}

func toTraitsInput(in model.DefineComputedTraitInput) traits.Input {
	out := traits.Input{Key: in.Key, Kind: string(in.Kind), Event: in.Event}
	if in.Property != nil {
		out.Property = *in.Property
	}
	if in.Description != nil {
		out.Description = *in.Description
	}
	for _, c := range in.Where {
		out.Where = append(out.Where, rule.PropertyCond{Key: c.Key, Op: rule.Op(c.Op), Value: c.Value, Values: c.Values})
	}
	out.Window = toWindow(in.Window)
	return out
}
