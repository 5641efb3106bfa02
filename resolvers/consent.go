package resolvers

import (
	"context"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// Cursor lists of consent.
const (
	consentHistoryList = "consent"
	exportList         = "export"
)

func toChoice(c model.ConsentChoiceInput) consent.Choice {
	return consent.Choice{
		Purpose: c.Purpose, Channel: string(c.Channel), Status: string(c.Status), Source: deref(c.Source),
		CapturedAt: c.CapturedAt, ExpiresAt: c.ExpiresAt, Proof: c.Proof,
	}
}

func toChoices(in []model.ConsentChoiceInput) []consent.Choice {
	out := make([]consent.Choice, len(in))
	for i, c := range in {
		out[i] = toChoice(c)
	}
	return out
}

func toSubject(profileID *string, id *model.IdentifierInput) consent.Subject {
	s := consent.Subject{ProfileID: profileID}
	if id != nil {
		s.Identifier = &identity.Identifier{Type: id.Type, Value: id.Value}
	}
	return s
}

func toPurpose(p consent.Purpose) model.ConsentPurpose {
	return model.ConsentPurpose{Key: p.Key, Description: optional(p.Description), LawfulBasis: model.LawfulBasis(p.LawfulBasis), BuiltIn: p.BuiltIn}
}

func toConsentState(s consent.State) model.ConsentState {
	out := model.ConsentState{
		ProfileID: s.ProfileID, Purpose: s.Purpose, Channel: model.ConsentChannel(s.Channel), Status: model.ConsentStatus(s.Status),
		LawfulBasis: model.LawfulBasis(s.LawfulBasis), CapturedAt: s.CapturedAt, Source: optional(s.Source),
	}
	if s.Status == "GRANTED" {
		t := s.CapturedAt
		out.GrantedAt = &t
	}
	out.ExpiresAt = optionalTime(s.ExpiresAt)
	return out
}

func toConsentStates(in []consent.State) []model.ConsentState {
	out := make([]model.ConsentState, len(in))
	for i, s := range in {
		out[i] = toConsentState(s)
	}
	return out
}

func toConsentRecord(r consent.Record) model.ConsentRecord {
	out := model.ConsentRecord{
		ID: r.ID, Purpose: r.Purpose, Channel: model.ConsentChannel(r.Channel), Status: model.ConsentStatus(r.Status),
		Source: optional(r.Source), CapturedAt: r.CapturedAt, RecordedAt: r.RecordedAt, ExpiresAt: r.ExpiresAt,
	}
	if r.Proof != nil {
		out.Proof = r.Proof
	}
	return out
}

// consentProfile loads the live profile behind a GraphQL Profile.
func (r *Resolver) consentProfile(ctx context.Context, obj *model.Profile) (store.Tenant, *profile.Profile, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return tn, nil, err
	}
	p, err := r.profileDoc(ctx, tn, obj.ID)
	return tn, p, err
}
