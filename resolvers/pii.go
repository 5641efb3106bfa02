package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/auth"
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/privacy"
)

// PII masking happens in the field resolvers of Profile and ExportedMember
// (traits, identifiers), so every way a profile reaches a client (queries,
// mutation payloads, segment previews, subscriptions) is masked the same.

// piiMasker returns how the caller must see personal data: nil when the
// token holds pii:read (everything in clear), else the workspace's masker.
// The settings are cached (privacy.PIICacheTTL), so a page of profiles
// costs one settings read, not one per field.
func (r *Resolver) piiMasker(ctx context.Context) (*privacy.PIIMasker, error) {
	tn, p, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if p.Has(auth.ScopePIIRead) {
		return nil, nil
	}
	return privacy.PIIMaskerFor(ctx, tn)
}

// maskTraits returns traits as the caller may see them.
func (r *Resolver) maskTraits(ctx context.Context, traits any) (any, error) {
	m, err := r.piiMasker(ctx)
	if err != nil || m == nil {
		return traits, err
	}
	return m.Traits(traits), nil
}

// maskIdentifiers returns ids as the caller may see them: a masked copy,
// never ids itself changed (the object may be shared).
func (r *Resolver) maskIdentifiers(ctx context.Context, ids []model.Identifier) ([]model.Identifier, error) {
	m, err := r.piiMasker(ctx)
	if err != nil || m == nil {
		return ids, err
	}
	out := make([]model.Identifier, len(ids))
	for i, id := range ids {
		id.Value = m.Identifier(id.Type, id.Value)
		out[i] = id
	}
	return out, nil
}

func toPIISettings(s privacy.PIISettings) *model.PIISettings {
	return &model.PIISettings{TraitKeys: nonNil(s.TraitKeys), IdentifierTypes: nonNil(s.IdentifierTypes)}
}
