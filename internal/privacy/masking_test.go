package privacy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/timeline"
)

// seen is a stored profile's traits and identifiers (by type) as a caller
// with masker m sees them; m nil is a caller who may read PII.
func (e *env) seen(t *testing.T, m *privacy.PIIMasker, profileID string) (map[string]any, map[string]string) {
	t.Helper()
	traits := e.Profile(t, profileID).Traits
	held, err := identity.Identifiers(e.Ctx, e.Tenant, profileID)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, h := range held {
		ids[h.Type] = h.Value
		if m != nil {
			ids[h.Type] = m.Identifier(h.Type, h.Value)
		}
	}
	if m == nil {
		return traits, ids
	}
	return m.Traits(traits).(map[string]any), ids
}

func (e *env) masker(t *testing.T) *privacy.PIIMasker {
	t.Helper()
	m, err := e.svc().PIIMaskerFor(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A person identified with personal traits and identifiers is masked by
// the workspace's settings: by default names, email, address and phone
// (nested values one by one, numbers and unlisted keys untouched), email
// and phone identifiers; a change is refused when invalid and seen at
// once when valid (a custom key, one nested key, the identifier types
// narrowed); empty lists mask nothing; settings are per workspace.
func TestPIIMaskingStoredProfile(t *testing.T) {
	e := newEnv(t)
	ctx, tn := e.Ctx, e.Tenant
	res, err := e.Services.Ingest.Identify(ctx, tn, ingest.Caller{Subject: "tester"}, ingest.IdentifyInput{
		Identifiers: ids("email", "Ana.Costa@example.com", "phone", "+1 555 010 0000", "userId", "u-1"),
		Traits: map[string]any{
			"firstName": "Ana", "lastName": "Costa", "email": "ana.costa@example.com", "plan": "pro",
			"address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
			"ssn":     "123-45-6789", "visits": int64(3),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile.ID
	wantClear := map[string]any{
		"firstName": "Ana", "lastName": "Costa", "email": "ana.costa@example.com", "plan": "pro",
		"address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
		"ssn":     "123-45-6789", "visits": int64(3),
	}
	wantClearIDs := map[string]string{"email": "ana.costa@example.com", "phone": "+15550100000", "userId": "u-1"}
	check := func(what string, m *privacy.PIIMasker, wantTraits map[string]any, wantIDs map[string]string) {
		t.Helper()
		traits, got := e.seen(t, m, p)
		if !reflect.DeepEqual(traits, wantTraits) {
			t.Errorf("%s: traits %#v, want %#v", what, traits, wantTraits)
		}
		if !reflect.DeepEqual(got, wantIDs) {
			t.Errorf("%s: identifiers %v, want %v", what, got, wantIDs)
		}
	}
	check("in clear", nil, wantClear, wantClearIDs)
	check("default settings", e.masker(t), map[string]any{
		"firstName": "A***", "lastName": "C***", "email": "a***@example.com", "plan": "pro",
		"address": map[string]any{"street": "1***", "city": "L***"},
		"ssn":     "123-45-6789", "visits": int64(3),
	}, map[string]string{"email": "a***@example.com", "phone": "+1********00", "userId": "u-1"})

	defaults, err := privacy.LoadPIISettings(ctx, tn)
	if err != nil || !reflect.DeepEqual(defaults.IdentifierTypes, []string{"email", "phone"}) || len(defaults.TraitKeys) == 0 {
		t.Fatalf("default settings %+v %v", defaults, err)
	}

	// Bad input is refused and changes nothing.
	for _, c := range []struct {
		keys, types []string
		field       string
	}{
		{[]string{"ssn"}, []string{"email", "loyaltyCard"}, "identifierTypes[1]"},
		{[]string{"ssn", ""}, nil, "traitKeys[1]"},
		{[]string{strings.Repeat("k", 300)}, nil, "traitKeys[0]"},
		{[]string{"ssn", "$where"}, nil, "traitKeys[1]"},
		{[]string{"address.$gt"}, nil, "traitKeys[0]"},
		{[]string{"address..street"}, nil, "traitKeys[0]"},
	} {
		_, err := e.svc().SetPIISettings(ctx, tn, privacy.PIISettings{TraitKeys: c.keys, IdentifierTypes: c.types}, "admin")
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != c.field {
			t.Errorf("%v %v: %v, want BAD_USER_INPUT on %s", c.keys, c.types, err, c.field)
		}
	}
	if got, err := privacy.LoadPIISettings(ctx, tn); err != nil || !reflect.DeepEqual(got, defaults) {
		t.Fatalf("refused calls changed the settings: %+v %v", got, err)
	}

	// A custom key (ssn), a nested one (address.street: the city is no
	// longer masked), names no longer masked, phone no longer masked.
	set, err := e.svc().SetPIISettings(ctx, tn, privacy.PIISettings{TraitKeys: []string{"ssn", "address.street", "email", "email"}, IdentifierTypes: []string{"email"}}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	want := privacy.PIISettings{TraitKeys: []string{"ssn", "address.street", "email"}, IdentifierTypes: []string{"email"}}
	if !reflect.DeepEqual(set, want) {
		t.Fatalf("SetPIISettings returned %+v, want %+v", set, want)
	}
	if got, err := privacy.LoadPIISettings(ctx, tn); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after the change %+v %v", got, err)
	}
	check("after the change", e.masker(t), map[string]any{
		"firstName": "Ana", "lastName": "Costa", "email": "a***@example.com", "plan": "pro",
		"address": map[string]any{"street": "1***", "city": "Lisbon"},
		"ssn":     "1***", "visits": int64(3),
	}, map[string]string{"email": "a***@example.com", "phone": "+15550100000", "userId": "u-1"})

	if _, err := e.svc().SetPIISettings(ctx, tn, privacy.PIISettings{TraitKeys: []string{}, IdentifierTypes: []string{}}, "admin"); err != nil {
		t.Fatal(err)
	}
	check("nothing is PII", e.masker(t), wantClear, wantClearIDs)

	if got, err := privacy.LoadPIISettings(ctx, e.Store.Tenant("other")); err != nil || !reflect.DeepEqual(got, defaults) {
		t.Fatalf("another workspace sees %+v %v", got, err)
	}
}

// Event properties under a PII trait key are masked like traits; other
// properties are not.
func TestPIIMaskingEventProperties(t *testing.T) {
	e := newEnv(t)
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{
		MessageID: "signup-1", Identifiers: ids("anonymousId", "dev-p"), Name: "signed_up",
		Properties: map[string]any{"email": "pat@example.com", "plan": "pro", "address": map[string]any{"city": "Porto"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := timeline.Read(e.Ctx, e.Tenant, res[0].Profile.ID, 5, "", timeline.Filter{})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("timeline %+v %v", page, err)
	}
	stored := page.Items[0].Properties
	if want := map[string]any{"email": "pat@example.com", "plan": "pro", "address": map[string]any{"city": "Porto"}}; !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored properties %v, want %v", stored, want)
	}
	want := map[string]any{"email": "p***@example.com", "plan": "pro", "address": map[string]any{"city": "P***"}}
	if got := e.masker(t).Traits(stored); !reflect.DeepEqual(got, want) {
		t.Fatalf("masked properties %v, want %v", got, want)
	}
}
