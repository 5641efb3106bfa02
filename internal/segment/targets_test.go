package segment_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment"
)

// TestStaticTargets: the profiles a static-segment call names, by id and
// by identifier, within MaxStaticBatch; adding is strict about
// identifiers that match no one, removing ignores them.
func TestStaticTargets(t *testing.T) {
	e := newEnv(t)
	a, b := e.identify(t, "a", nil), e.identify(t, "b", nil)
	st, err := e.seg.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "list", Kind: segment.Static})
	if err != nil {
		t.Fatal(err)
	}
	members := func() []string {
		t.Helper()
		var out []string
		for id := range e.members(t, st.ID) {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	refused := func(what string, err error, code apperr.Code, field, msg string) {
		t.Helper()
		ae, ok := apperr.As(err)
		if !ok || ae.Code != code || ae.Field != field || !strings.Contains(ae.Message, msg) {
			t.Fatalf("%s: %v, want %s at %q: …%s…", what, err, code, field, msg)
		}
	}

	refused("add nobody", e.addTo(st.ID, segment.Targets{}), apperr.BadUserInput, "profileIds", "give profileIds and/or identifiers")
	refused("remove nobody", e.removeFrom(st.ID, segment.Targets{}), apperr.BadUserInput, "profileIds", "give profileIds and/or identifiers")
	// The cap counts ids and identifiers together.
	over := segment.Targets{ProfileIDs: make([]string, segment.MaxStaticBatch), Identifiers: anon("a")}
	refused("add over the cap", e.addTo(st.ID, over), apperr.BadUserInput, "profileIds", "at most 10000 profiles per call, got 10001")
	refused("remove over the cap", e.removeFrom(st.ID, over), apperr.BadUserInput, "profileIds", "at most 10000 profiles per call, got 10001")
	// Identifiers are normalised as the workspace's types say, and an
	// invalid one is refused where it stands.
	bad := segment.Targets{Identifiers: append(anon("a"), identity.Identifier{Type: identity.Email, Value: "not an email"})}
	if err := e.addTo(st.ID, bad); apperr.CodeOf(err) != apperr.BadUserInput || !strings.HasPrefix(fieldOf(err), "identifiers[1]") {
		t.Fatalf("invalid identifier: %v (field %q)", err, fieldOf(err))
	}

	// Ids and identifiers together, a profile named twice counted once.
	if err := e.addTo(st.ID, segment.Targets{ProfileIDs: []string{a}, Identifiers: append(anon("a"), anon("b")...)}); err != nil {
		t.Fatal(err)
	}
	if got := members(); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("members %v, want %v", got, sorted(a, b))
	}
	// Adding: one identifier matching no one refuses the whole call.
	c := e.identify(t, "c", nil)
	err = e.addTo(st.ID, segment.Targets{ProfileIDs: []string{c}, Identifiers: append(anon("nobody"), email("nobody@example.com")...)})
	refused("add unknown identifiers", err, apperr.NotFound, "", "2 of 2 identifiers match no profile; nothing was added")
	if got := members(); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("members after a refused add %v, want %v", got, sorted(a, b))
	}
	// Removing: they are ignored.
	if err := e.removeFrom(st.ID, segment.Targets{ProfileIDs: []string{a}, Identifiers: append(anon("nobody"), anon("b")...)}); err != nil {
		t.Fatal(err)
	}
	if got := members(); len(got) != 0 {
		t.Fatalf("members after remove %v", got)
	}
	// The segment's own checks follow the targets'.
	if err := e.addTo("nope", segment.Targets{ProfileIDs: []string{a}}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown segment: %v", err)
	}
	if err := e.addTo("nope", segment.Targets{Identifiers: anon("nobody")}); err == nil || !strings.Contains(err.Error(), "nothing was added") {
		t.Fatalf("unknown identifier and segment: %v", err)
	}
}
