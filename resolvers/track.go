package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/timeline"
)

// track records inputs (track: field "input", one input; trackBatch:
// field "inputs") and the consent they carry. The consent is checked
// before anything is written and recorded after the events.
func (r *Resolver) track(ctx context.Context, field string, inputs []model.TrackInput) ([]timeline.TrackResult, error) {
	tn, p, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	choices, err := r.prepareTrackConsent(ctx, tn, field, inputs)
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
	results, err := r.timeline.Track(ctx, tn, p.Subject, field, in)
	if err != nil {
		return nil, err
	}
	if err := r.applyTrackConsent(ctx, tn, choices, results); err != nil {
		return nil, err
	}
	return results, nil
}
