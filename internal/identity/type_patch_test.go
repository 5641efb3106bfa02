package identity_test

import (
	"slices"
	"testing"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

func ptr[T any](v T) *T { return &v }

// TestTypePatchApply: only the set fields change; a normalization other
// than phone drops the region unless set; unique alone implies 1 value.
func TestTypePatchApply(t *testing.T) {
	base := identity.TypeConfig{Name: "loyalty", Normalization: identity.NormPhone, DefaultRegion: "GB", MaxPerProfile: 3, Priority: 50, Blocked: []string{"x"}}
	c := identity.TypePatch{Priority: ptr(7)}.Apply(base)
	if c.Priority != 7 || c.DefaultRegion != "GB" || c.MaxPerProfile != 3 || !slices.Equal(c.Blocked, []string{"x"}) {
		t.Fatalf("priority only: %+v", c)
	}
	if c := (identity.TypePatch{Normalization: ptr(identity.NormNone)}).Apply(base); c.DefaultRegion != "" || c.Normalization != identity.NormNone {
		t.Fatalf("normalization none: %+v, want the region dropped", c)
	}
	if c := (identity.TypePatch{Normalization: ptr(identity.NormPhone), DefaultRegion: ptr("US")}).Apply(base); c.DefaultRegion != "US" {
		t.Fatalf("phone with region: %+v", c)
	}
	if c := (identity.TypePatch{Unique: ptr(true)}).Apply(base); !c.Unique || c.MaxPerProfile != 1 {
		t.Fatalf("unique alone: %+v, want MaxPerProfile 1", c)
	}
	if c := (identity.TypePatch{Unique: ptr(true), MaxPerProfile: ptr(2)}).Apply(base); c.MaxPerProfile != 2 {
		t.Fatalf("unique with max: %+v, want 2 (left to validation)", c)
	}
	if c := (identity.TypePatch{Blocked: []string{}}).Apply(base); len(c.Blocked) != 0 {
		t.Fatalf("empty blocked: %+v, want cleared", c)
	}
}

// TestPatchType: a patch starts from the stored configuration, and what
// it stores is validated.
func TestPatchType(t *testing.T) {
	e := newEnv(t)
	if _, err := identity.PatchType(e.ctx, e.tn, "loyalty", identity.TypePatch{Priority: ptr(40)}); err != nil {
		t.Fatal(err)
	}
	c, err := identity.PatchType(e.ctx, e.tn, "loyalty", identity.TypePatch{Unique: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Priority != 40 || !c.Unique || c.MaxPerProfile != 1 {
		t.Fatalf("second patch: %+v, want priority 40 kept, unique, 1 per profile", c)
	}
	types, err := identity.LoadTypes(e.ctx, e.tn)
	if err != nil || types.Base("loyalty").Priority != 40 {
		t.Fatalf("stored: %+v %v", types.Base("loyalty"), err)
	}
	if _, err := identity.PatchType(e.ctx, e.tn, "loyalty", identity.TypePatch{Priority: ptr(-1)}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("invalid priority: %v, want BAD_USER_INPUT", err)
	}
}
