package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/timeline"
)

// caller is who makes a write call, for the write path.
func caller(p auth.Principal) ingest.Caller {
	return ingest.Caller{Subject: p.Subject, ConsentWrite: p.Has(auth.ScopeConsentWrite)}
}

// track records inputs (track: field "input", one input; trackBatch:
// field "inputs") and the consent they carry (ingest.Pipeline.Track).
func (r *Resolver) track(ctx context.Context, field string, inputs []model.TrackInput) ([]timeline.TrackResult, error) {
	tn, p, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	in := make([]ingest.TrackInput, len(inputs))
	for i, t := range inputs {
		in[i] = ingest.TrackInput{TrackInput: timeline.TrackInput{
			MessageID: t.MessageID, Identifiers: toIdentifiers(t.Identifiers), Name: t.Name,
			Properties: t.Properties, OccurredAt: t.OccurredAt, Channel: deref(t.Channel), Traits: t.Traits,
		}, Consent: toChoices(t.Consent)}
	}
	return r.ingest.Track(ctx, tn, caller(p), field, in)
}
