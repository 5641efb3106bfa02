package resolvers

import (
	"strings"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/identity"
)

// toIdentifierType maps a type configuration to the API.
func toIdentifierType(c identity.TypeConfig) model.IdentifierType {
	return model.IdentifierType{
		Name: c.Name, Normalization: model.Normalization(strings.ToUpper(c.Normalization)),
		DefaultRegion: optional(c.DefaultRegion), MaxPerProfile: c.MaxPerProfile, Priority: c.Priority,
		Unique: c.Unique, BlockedValues: nonNil(c.Blocked),
	}
}

// toTypePatch maps setIdentifierType's input to the change it asks for.
func toTypePatch(in model.IdentifierTypeInput) identity.TypePatch {
	p := identity.TypePatch{DefaultRegion: in.DefaultRegion, MaxPerProfile: in.MaxPerProfile, Priority: in.Priority, Unique: in.Unique, Blocked: in.BlockedValues}
	if in.Normalization != nil {
		n := strings.ToLower(string(*in.Normalization))
		p.Normalization = &n
	}
	return p
}
