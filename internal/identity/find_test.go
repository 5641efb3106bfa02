package identity_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// TestFindEach: identifiers are normalised as given by a caller before
// the look-up; one no profile holds is ""; an invalid one is INVALID at
// the caller's field.
func TestFindEach(t *testing.T) {
	e := newEnv(t)
	res, err := e.svc.Identity.Resolve(e.ctx, e.tn, identity.Request{Identifiers: ids("email", "ann@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	field := func(i int) string { return fmt.Sprintf("identifiers[%d]", i) }
	got, err := identity.FindEach(e.ctx, e.tn, ids("email", "  Ann@Example.COM ", "email", "bob@example.com"), field)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{res.Profile.ID, ""}; !slices.Equal(got, want) {
		t.Fatalf("found %q, want %q", got, want)
	}
	_, err = identity.FindEach(e.ctx, e.tn, ids("email", "ann@example.com", "nope", "x"), field)
	if apperr.CodeOf(err) != apperr.BadUserInput || !strings.Contains(err.Error(), "identifiers[1][0].type") {
		t.Fatalf("unknown type: %v, want BAD_USER_INPUT at identifiers[1][0].type", err)
	}
}
