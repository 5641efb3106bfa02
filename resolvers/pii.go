package resolvers

import (
	"context"
	"slices"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
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
	return r.privacy.PIIMaskerFor(ctx, tn)
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
	if err != nil {
		return ids, err
	}
	return maskIdentifiersWith(m, ids), nil
}

// maskIdentifiersWith is maskIdentifiers with the caller's masker m (nil:
// ids in clear).
func maskIdentifiersWith(m *privacy.PIIMasker, ids []model.Identifier) []model.Identifier {
	if m == nil {
		return ids
	}
	out := make([]model.Identifier, len(ids))
	for i, id := range ids {
		id.Value = m.Identifier(id.Type, id.Value)
		out[i] = id
	}
	return out
}

func toPIISettings(s privacy.PIISettings) *model.PIISettings {
	return &model.PIISettings{TraitKeys: nonNil(s.TraitKeys), IdentifierTypes: nonNil(s.IdentifierTypes)}
}

// maskConflicts masks the identifier values of conflicts (a conflict's
// type is an identifier type, or mergeLimit, whose value is the limit and
// stays): IdentifyPayload.conflicts and MergeRecord.conflicts.
func (r *Resolver) maskConflicts(ctx context.Context, cs []model.IdentityConflict) ([]model.IdentityConflict, error) {
	m, err := r.piiMasker(ctx)
	if err != nil {
		return cs, err
	}
	return maskConflictsWith(m, cs), nil
}

// maskConflictsWith is maskConflicts with the caller's masker m (nil: cs
// in clear).
func maskConflictsWith(m *privacy.PIIMasker, cs []model.IdentityConflict) []model.IdentityConflict {
	if m == nil || len(cs) == 0 {
		return cs
	}
	out := make([]model.IdentityConflict, len(cs))
	for i, c := range cs {
		c.Values = slices.Clone(c.Values)
		for j, v := range c.Values {
			c.Values[j] = m.Identifier(c.Type, v)
		}
		out[i] = c
	}
	return out
}

// maskMergeRecord masks what a merge record shows of a person: the
// identifiers that moved, the contested trait values, the conflicts
// (Profile.merges, unmergeProfile).
func (r *Resolver) maskMergeRecord(ctx context.Context, rec *model.MergeRecord) (*model.MergeRecord, error) {
	m, err := r.piiMasker(ctx)
	if err != nil || m == nil || rec == nil {
		return rec, err
	}
	out := *rec
	out.Identifiers = maskIdentifiersWith(m, rec.Identifiers)
	out.Traits = make([]model.TraitDecision, len(rec.Traits))
	for i, d := range rec.Traits {
		d.Won, d.Lost = m.Trait(d.Key, d.Won), m.Trait(d.Key, d.Lost)
		out.Traits[i] = d
	}
	out.Conflicts = maskConflictsWith(m, rec.Conflicts)
	return &out, nil
}

// maskProofWith returns a consent proof as the caller may see it
// (ConsentRecord.proof; privacy.PIIMasker.Proof says what is masked).
func maskProofWith(m *privacy.PIIMasker, proof any) any {
	if m == nil || proof == nil {
		return proof
	}
	return m.Proof(proof)
}

// computedMask returns how the caller sees computed trait values: nil in
// clear, else masked by the definition they come from (Profile.computed,
// which every query, preview, member list and subscription goes through).
func (r *Resolver) computedMask(ctx context.Context) (func(*agg.Def, any) any, error) {
	m, err := r.piiMasker(ctx)
	if err != nil || m == nil {
		return nil, err
	}
	return m.ComputedValue, nil
}

// ruleGuard is the PII check of the segment rules p saves or previews
// (segmentPreview, createSegment, updateSegment): see
// privacy.Service.RuleGuard.
func (r *Resolver) ruleGuard(p auth.Principal) segment.RuleGuard {
	return r.privacy.RuleGuard(p.Has(auth.ScopePIIRead), r.traits)
}

// checkComputedPII refuses, for a caller without pii:read, a computed
// trait definition over personal data whose key a saved, active segment
// rule compares (privacy.CheckDefineFor).
func (r *Resolver) checkComputedPII(ctx context.Context, tn store.Tenant, d *agg.Def) error {
	m, err := r.piiMasker(ctx)
	if err != nil {
		return err
	}
	return privacy.CheckDefineFor(ctx, tn, m, r.segments, d)
}
