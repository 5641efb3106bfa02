package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/timeline"
)

func (r *Resolver) track(ctx context.Context, field string, inputs []model.TrackInput) ([]timeline.TrackResult, error) {
	tn, p, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	in := make([]timeline.TrackInput, len(inputs))
	for i, t := range inputs {
		in[i] = timeline.TrackInput{
			MessageID: t.MessageID, Identifiers: toIdentifiers(t.Identifiers), Name: t.Name,
			Properties: t.Properties, OccurredAt: t.OccurredAt, Channel: deref(t.Channel), Traits: t.Traits,
		}
	}
	return r.timeline.Track(ctx, tn, p.Subject, field, in)
}
