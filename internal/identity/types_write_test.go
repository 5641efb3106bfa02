package identity_test

// A workspace's identifier types as setIdentifierType changes them
// (PatchType) and as identify, track and profile(identifier:) then read
// identifiers: moved from server's end-to-end test of the two fields.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
)

// wantInputErr checks err is BAD_USER_INPUT on field.
func wantInputErr(t *testing.T, err error, field string) *apperr.Error {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok || ae.Code != apperr.BadUserInput || ae.Field != field {
		t.Fatalf("error %v, want BAD_USER_INPUT on %s", err, field)
	}
	return ae
}

func (e *env) types(t *testing.T, ws string) identity.Types {
	t.Helper()
	ts, err := identity.LoadTypes(e.ctx, e.st.Tenant(ws))
	if err != nil {
		t.Fatal(err)
	}
	if names := ts.Names(); len(names) < 6 || !slices.Equal(names[:6], []string{"anonymousId", "userId", "email", "phone", "deviceId", "crmId"}) {
		t.Fatalf("types order = %q, want the built-ins first", names)
	}
	return ts
}

func (e *env) patchType(t *testing.T, name string, p identity.TypePatch) identity.TypeConfig {
	t.Helper()
	c, err := identity.PatchType(e.ctx, e.tn, name, p)
	if err != nil {
		t.Fatalf("patch %s: %v", name, err)
	}
	return c
}

// TestCustomIdentifierTypeInIdentify: a custom type and a changed
// built-in are the workspace's own; identify and profile(identifier:)
// read the custom type, and refuse its blocked values.
func TestCustomIdentifierTypeInIdentify(t *testing.T) {
	e := newWriteEnv(t)
	types := e.types(t, "ws1")
	if len(types) != 6 {
		t.Fatalf("%d types in a fresh workspace, want 6", len(types))
	}
	email, phone, userID := types["email"], types["phone"], types["userId"]
	if email.Normalization != identity.NormEmail || email.MaxPerProfile != 5 || email.Priority != 20 || email.Unique || email.DefaultRegion != "" {
		t.Fatalf("default email = %+v", email)
	}
	if phone.Normalization != identity.NormPhone || phone.DefaultRegion != "US" || phone.MaxPerProfile != 3 {
		t.Fatalf("default phone = %+v", phone)
	}
	if !userID.Unique || userID.MaxPerProfile != 1 || userID.Priority != 10 || !slices.Contains(userID.Blocked, "undefined") {
		t.Fatalf("default userId = %+v", userID)
	}

	// A custom type and a changed built-in.
	got := e.patchType(t, "loyaltyCard", identity.TypePatch{Priority: ptr(40), Blocked: []string{"TEST-CARD"}})
	if got.Name != "loyaltyCard" || got.Normalization != identity.NormNone || got.MaxPerProfile != 10 || got.Priority != 40 || got.Unique || !slices.Equal(got.Blocked, []string{"test-card"}) {
		t.Fatalf("new custom type = %+v", got)
	}
	e.patchType(t, "email", identity.TypePatch{MaxPerProfile: ptr(2)})
	types = e.types(t, "ws1")
	if len(types) != 7 || types["email"].MaxPerProfile != 2 || types["email"].Priority != 20 || types["email"].Normalization != identity.NormEmail {
		t.Fatalf("after changes: %+v", types)
	}
	if types["loyaltyCard"].Priority != 40 {
		t.Fatalf("loyaltyCard = %+v", types["loyaltyCard"])
	}

	// The custom type works in identify and profile lookups; its blocked
	// values are refused.
	p := e.identify(t, nil, "loyaltyCard", " LC-0042 ", "email", "ann@example.com").Profile
	if got := e.owner(t, "loyaltyCard", "LC-0042"); got != p.ID {
		t.Fatalf("profile by custom identifier = %q, want %s", got, p.ID)
	}
	_, err := e.identifyErr(e.tn, nil, "loyaltyCard", "test-card")
	wantInputErr(t, err, "input.identifiers[0].value")

	// Another workspace sees only the defaults.
	typesB := e.types(t, "ws2")
	if len(typesB) != 6 || typesB["email"].MaxPerProfile != 5 {
		t.Fatalf("workspace ws2 sees ws1's types: %+v", typesB)
	}
	_, err = e.identifyErr(e.st.Tenant("ws2"), nil, "loyaltyCard", "LC-0042")
	wantInputErr(t, err, "input.identifiers[0].type")
}

// TestPatchTypeRefuses: what setIdentifierType refuses, by field, leaves
// the stored type as it was.
func TestPatchTypeRefuses(t *testing.T) {
	e := newWriteEnv(t)
	e.patchType(t, "email", identity.TypePatch{MaxPerProfile: ptr(2)})
	for _, tt := range []struct {
		name  string
		patch identity.TypePatch
		field string
	}{
		{"bad-name", identity.TypePatch{}, "input.name"},
		{"Email", identity.TypePatch{}, "input.name"},
		{"email", identity.TypePatch{MaxPerProfile: ptr(0)}, "input.maxPerProfile"},
		{"email", identity.TypePatch{Normalization: ptr(identity.NormNone)}, "input.normalization"},
		{"phone", identity.TypePatch{DefaultRegion: ptr("ZZ")}, "input.defaultRegion"},
		{"email", identity.TypePatch{Priority: ptr(-1)}, "input.priority"},
		{"email", identity.TypePatch{Blocked: []string{strings.Repeat("x", 300)}}, "input.blockedValues[0]"},
		{"userId", identity.TypePatch{MaxPerProfile: ptr(2)}, "input.maxPerProfile"},
	} {
		_, err := identity.PatchType(e.ctx, e.tn, tt.name, tt.patch)
		wantInputErr(t, err, tt.field)
	}
	if types := e.types(t, "ws1"); len(types) != 6 || types["email"].MaxPerProfile != 2 || types["userId"].MaxPerProfile != 1 {
		t.Fatalf("refused patches changed the types: %+v", types)
	}
}

// TestPhoneDefaultRegion: national numbers are read in the phone type's
// default region, the same way by identify, track and profile lookups,
// per workspace; without a region a number must carry its country code.
func TestPhoneDefaultRegion(t *testing.T) {
	e := newWriteEnv(t)
	heldPhones := func(p *profile.Profile) []string {
		t.Helper()
		var out []string
		for _, id := range e.heldSet(t, p.ID) {
			if id.Type == identity.Phone {
				out = append(out, id.Value)
			}
		}
		return out
	}
	// US numbers by default, UK once set to GB.
	if got := heldPhones(e.identify(t, nil, "phone", "(212) 555-0100").Profile); !slices.Equal(got, []string{"+12125550100"}) {
		t.Fatalf("US local number stored as %v", got)
	}
	if c := e.patchType(t, "phone", identity.TypePatch{DefaultRegion: ptr("gb")}); c.DefaultRegion != "GB" {
		t.Fatalf("phone after setting GB = %+v", c)
	}
	p := e.identify(t, nil, "phone", "07700 900123", "email", "uk@example.co.uk").Profile
	if got := heldPhones(p); !slices.Contains(got, "+447700900123") {
		t.Fatalf("UK local number stored as %v", got)
	}
	// track and profile(identifier:) read it the same way.
	if pid := e.trackEvent(t, "m-uk-1", "page_viewed", t0.Add(-time.Minute), "phone", "+44 7700 900123"); pid != p.ID {
		t.Fatalf("track with the E.164 form went to %s, want %s", pid, p.ID)
	}
	if got := e.owner(t, "phone", "077009 00123"); got != p.ID {
		t.Fatalf("profile by UK local number = %q, want %s", got, p.ID)
	}
	// Another workspace still reads local numbers as US ones.
	other := e.st.Tenant("ws2")
	res, err := e.identifyErr(other, nil, "phone", "(212) 555-0100")
	if err != nil {
		t.Fatal(err)
	}
	if held, err := identity.Identifiers(e.ctx, other, res.Profile.ID); err != nil || len(held) != 1 || held[0].Value != "+12125550100" {
		t.Fatalf("workspace ws2 phone = %+v, %v", held, err)
	}
	_, err = e.identifyErr(other, nil, "phone", "07700 900123")
	wantInputErr(t, err, "input.identifiers[0].value")

	// Clearing the region: numbers must then carry their country code.
	e.patchType(t, "phone", identity.TypePatch{DefaultRegion: ptr("")})
	if r := e.types(t, "ws1")["phone"].DefaultRegion; r != "" {
		t.Fatalf("defaultRegion %q not cleared", r)
	}
	_, err = e.identifyErr(e.tn, nil, "phone", "07700 900123")
	if ae := wantInputErr(t, err, "input.identifiers[0].value"); !strings.Contains(ae.Message, "country code") {
		t.Fatalf("message = %q", ae.Message)
	}
}
