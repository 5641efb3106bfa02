package identity

import (
	"context"

	"github.com/halo-cdp/halo/store"
)

// TypePatch is a change to an identifier type: the fields a caller set
// (nil: keep the current value).
type TypePatch struct {
	Normalization *string // NormEmail, NormPhone or NormNone
	DefaultRegion *string // "" clears it
	MaxPerProfile *int
	Priority      *int
	Unique        *bool
	Blocked       []string // nil: keep; empty: clear
}

// Apply returns base (the type's current configuration, or a new custom
// type's defaults: Types.Base) with the patch's fields set. A new
// normalization other than phone drops the default region unless the
// patch sets one; unique alone implies MaxPerProfile 1.
func (p TypePatch) Apply(base TypeConfig) TypeConfig {
	c := base
	if p.Normalization != nil {
		c.Normalization = *p.Normalization
		if c.Normalization != NormPhone && p.DefaultRegion == nil {
			c.DefaultRegion = ""
		}
	}
	if p.DefaultRegion != nil {
		c.DefaultRegion = *p.DefaultRegion
	}
	if p.Unique != nil {
		c.Unique = *p.Unique
		if c.Unique && p.MaxPerProfile == nil {
			c.MaxPerProfile = 1
		}
	}
	if p.MaxPerProfile != nil {
		c.MaxPerProfile = *p.MaxPerProfile
	}
	if p.Priority != nil {
		c.Priority = *p.Priority
	}
	if p.Blocked != nil {
		c.Blocked = p.Blocked
	}
	return c
}

// PatchType applies p to identifier type name's current configuration
// (or a new custom type's defaults) and stores the result (SetType, which
// validates it): mutation setIdentifierType.
func PatchType(ctx context.Context, tn store.Tenant, name string, p TypePatch) (TypeConfig, error) {
	types, err := LoadTypes(ctx, tn)
	if err != nil {
		return TypeConfig{}, err
	}
	return SetType(ctx, tn, p.Apply(types.Base(name)))
}
