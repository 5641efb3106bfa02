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

// applyIdentifierTypeInput applies the fields the caller set to base (the
// type's current configuration, or a new custom type's defaults).
func applyIdentifierTypeInput(base identity.TypeConfig, in model.IdentifierTypeInput) identity.TypeConfig {
	c := base
	if in.Normalization != nil {
		c.Normalization = strings.ToLower(string(*in.Normalization))
		if c.Normalization != identity.NormPhone && in.DefaultRegion == nil {
			c.DefaultRegion = ""
		}
	}
	if in.DefaultRegion != nil {
		c.DefaultRegion = *in.DefaultRegion
	}
	if in.Unique != nil {
		c.Unique = *in.Unique
		if c.Unique && in.MaxPerProfile == nil {
			c.MaxPerProfile = 1
		}
	}
	if in.MaxPerProfile != nil {
		c.MaxPerProfile = *in.MaxPerProfile
	}
	if in.Priority != nil {
		c.Priority = *in.Priority
	}
	if in.BlockedValues != nil {
		c.Blocked = in.BlockedValues
	}
	return c
}
