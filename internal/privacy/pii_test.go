package privacy_test

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
)

func TestMaskString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		// Email: first character, ***, the domain.
		{"ana@example.com", "a***@example.com"},
		{"A.B+tag@Sub.Example.co.uk", "A***@Sub.Example.co.uk"},
		{"é@example.com", "é***@example.com"},
		{`"a@b"@example.com`, `"***@example.com`},
		// Phone: +, the country code, one * per hidden digit, the last two.
		{"+14155550123", "+1********23"},
		{"+447700900123", "+44********23"},
		{"+351912345678", "+351*******78"},
		{"+1 (415) 555-0123", "+1********23"},
		{"(415) 555-0123", "(***"}, // national numbers: too varied to split safely
		{"1990-01-02", "1***"},
		{"+9991234567", "+9*******67"}, // unknown country code: one digit kept
		// Anything else: first character and ***.
		{"Ana", "A***"},
		{"Ana Lima", "A***"},
		{"Ünal", "Ü***"},
		{"x", "***"},
		{"", ""},
		{"@", "***"},
		{"ana@", "a***"},
		{"@example.com", "@***"},
		{"12345", "1***"},     // too short for a phone number
		{"+123", "+***"},      // likewise
		{"555-0123x", "5***"}, // not only digits and separators
		{"\xff\xfe", "***"},   // not UTF-8: nothing shows
		{"\xffabc@example.com", "***"},
	} {
		if got := privacy.MaskString(tt.in); got != tt.want {
			t.Errorf("MaskString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := privacy.MaskEmail("not an email"); got != "n***" {
		t.Errorf("MaskEmail(non-email) = %q", got)
	}
	if got := privacy.MaskPhone("call me"); got != "c***" {
		t.Errorf("MaskPhone(non-phone) = %q", got)
	}
}

func TestMaskValueKeepsShape(t *testing.T) {
	in := map[string]any{
		"street": "1 Main St", "zip": int64(12345), "geo": []any{1.5, -2.25},
		"verified": true, "note": nil, "lines": []any{"a", map[string]any{"x": "yz"}},
	}
	want := map[string]any{
		"street": "1***", "zip": "***", "geo": []any{"***", "***"},
		"verified": "***", "note": nil, "lines": []any{"***", map[string]any{"x": "y***"}},
	}
	if got := privacy.MaskValue(in); !reflect.DeepEqual(got, want) {
		t.Errorf("MaskValue = %#v\nwant %#v", got, want)
	}
	if in["street"] != "1 Main St" {
		t.Error("MaskValue modified its input")
	}
	for _, v := range []any{nil, "", 0, int32(1), uint8(2), 3.5, false, []string{"a"}, struct{}{}, map[string]string{"a": "b"}} {
		got := privacy.MaskValue(v)
		if v != nil && v != "" && got != "***" {
			t.Errorf("MaskValue(%#v) = %#v, want ***", v, got)
		}
	}
}

func TestMaskerTraits(t *testing.T) {
	m := privacy.NewPIIMasker(privacy.PIISettings{
		TraitKeys:       []string{"email", "Name", "address.street", "contacts.phone", "a.b.c"},
		IdentifierTypes: []string{"email", "phone"},
	})
	in := map[string]any{
		"EMAIL": "ana@example.com", // keys match case-insensitively
		"name":  map[string]any{"first": "Ana", "last": "Lima"},
		"plan":  "pro",
		"address": map[string]any{
			"street": "1 Main St", "city": "Lisbon",
		},
		"contacts": []any{
			map[string]any{"phone": "+351912345678", "kind": "mobile"},
			"loose string",
		},
		"a": "scalar where a path expects an object",
	}
	want := map[string]any{
		"EMAIL":    "a***@example.com",
		"name":     map[string]any{"first": "A***", "last": "L***"},
		"plan":     "pro",
		"address":  map[string]any{"street": "1***", "city": "Lisbon"},
		"contacts": []any{map[string]any{"phone": "+351*******78", "kind": "mobile"}, "loose string"},
		"a":        "scalar where a path expects an object",
	}
	before := privacy.MaskValue(in) // a deep copy, to check in is untouched
	got := m.Traits(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Traits = %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(privacy.MaskValue(in), before) || in["address"].(map[string]any)["street"] != "1 Main St" {
		t.Error("Traits modified its input")
	}

	// Nothing to mask: the same object comes back.
	plain := map[string]any{"plan": "pro"}
	if got := m.Traits(plain); reflect.ValueOf(got).Pointer() != reflect.ValueOf(plain).Pointer() {
		t.Error("Traits copied an object with nothing to mask")
	}
	for _, v := range []any{nil, "x", 1.0, []any{}, map[string]any{}} {
		_ = m.Traits(v) // any JSON value, no panic
	}

	if got := m.Identifier("email", "ana@example.com"); got != "a***@example.com" {
		t.Errorf("Identifier(email) = %q", got)
	}
	if got := m.Identifier("phone", "+14155550123"); got != "+1********23" {
		t.Errorf("Identifier(phone) = %q", got)
	}
	if got := m.Identifier("userId", "u-123"); got != "u-123" {
		t.Errorf("Identifier(userId) = %q, want it in clear", got)
	}
	if !m.MasksIdentifierType("phone") || m.MasksIdentifierType("crmId") {
		t.Error("MasksIdentifierType")
	}

	for _, tt := range []struct {
		key      string
		in, want any
	}{
		{"Email", "ana@example.com", "a***@example.com"},
		{"email.work", "ana@example.com", "a***@example.com"}, // inside a PII key
		{"address", map[string]any{"street": "1 Main St", "city": "Lisbon"}, map[string]any{"street": "1***", "city": "Lisbon"}},
		{"address.street", "1 Main St", "1***"},
		{"address.city", "Lisbon", "Lisbon"},
		{"plan", "pro", "pro"},
		{"a.b", map[string]any{"c": "x1", "d": "y1"}, map[string]any{"c": "x***", "d": "y1"}},
	} {
		if got := m.Trait(tt.key, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Trait(%q, %v) = %v, want %v", tt.key, tt.in, got, tt.want)
		}
	}

	// No settings: nothing masked.
	none := privacy.NewPIIMasker(privacy.PIISettings{})
	if got := none.Traits(in); !reflect.DeepEqual(got, in) {
		t.Errorf("empty settings masked %v", got)
	}
}

func TestDefaultPIISettings(t *testing.T) {
	m := privacy.NewPIIMasker(privacy.DefaultPIISettings())
	got := m.Traits(map[string]any{
		"email": "ana@example.com", "phone": "+14155550123", "firstName": "Ana", "lastName": "Lima",
		"name": "Ana Lima", "address": map[string]any{"city": "Lisbon"}, "birthDate": "1990-01-02",
		"plan": "pro", "city": "Lisbon",
	})
	want := map[string]any{
		"email": "a***@example.com", "phone": "+1********23", "firstName": "A***", "lastName": "L***",
		"name": "A***", "address": map[string]any{"city": "L***"}, "birthDate": "1***",
		"plan": "pro", "city": "Lisbon",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default masking = %#v\nwant %#v", got, want)
	}
	if !m.MasksIdentifierType(identity.Email) || !m.MasksIdentifierType(identity.Phone) || m.MasksIdentifierType(identity.UserID) {
		t.Error("default identifier types are email and phone")
	}
}

func TestValidatePIISettings(t *testing.T) {
	types := identity.Types{}
	for _, c := range identity.DefaultTypes() {
		types[c.Name] = c
	}
	got, err := privacy.ValidatePIISettings(privacy.PIISettings{
		TraitKeys:       []string{"email", "Email", "address.street", "ssn"},
		IdentifierTypes: []string{"email", "crmId", "email"},
	}, types)
	if err != nil {
		t.Fatal(err)
	}
	want := privacy.PIISettings{TraitKeys: []string{"email", "address.street", "ssn"}, IdentifierTypes: []string{"email", "crmId"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tidied = %+v, want %+v", got, want)
	}
	if got, err := privacy.ValidatePIISettings(privacy.PIISettings{}, types); err != nil || got.TraitKeys == nil || got.IdentifierTypes == nil {
		t.Errorf("empty settings: %+v, %v (want empty, non-nil lists)", got, err)
	}

	many := make([]string, privacy.MaxPIITraitKeys+1)
	for i := range many {
		many[i] = "k" + strings.Repeat("x", i)
	}
	for _, tt := range []struct {
		in    privacy.PIISettings
		field string
	}{
		{privacy.PIISettings{IdentifierTypes: []string{"email", "loyaltyCard"}}, "identifierTypes[1]"},
		{privacy.PIISettings{IdentifierTypes: []string{"Email"}}, "identifierTypes[0]"},
		{privacy.PIISettings{TraitKeys: []string{"ok", ""}}, "traitKeys[1]"},
		{privacy.PIISettings{TraitKeys: []string{strings.Repeat("x", privacy.MaxPIIKeyBytes+1)}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"$where"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"a.$gt"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"a..b"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{".a"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"a."}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"a.b.c.d.e.f"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"a\x00b"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: []string{"\xff"}}, "traitKeys[0]"},
		{privacy.PIISettings{TraitKeys: many}, "traitKeys"},
	} {
		_, err := privacy.ValidatePIISettings(tt.in, types)
		e, ok := apperr.As(err)
		if !ok || e.Code != apperr.BadUserInput || e.Field != tt.field {
			t.Errorf("%+v: err %v, want BAD_USER_INPUT on %s", tt.in, err, tt.field)
		}
	}
}

func TestPIISettingsStored(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ctx, tn := env.Ctx, env.Tenant

	got, err := privacy.LoadPIISettings(ctx, tn)
	if err != nil || !reflect.DeepEqual(got, privacy.DefaultPIISettings()) {
		t.Fatalf("never set: %+v, %v; want the defaults", got, err)
	}
	m, err := env.Services.Privacy.PIIMaskerFor(ctx, tn)
	if err != nil || !m.MasksIdentifierType("phone") {
		t.Fatalf("masker before any change: %v", err)
	}

	set := privacy.PIISettings{TraitKeys: []string{"ssn", "email"}, IdentifierTypes: []string{"email"}}
	for range 2 { // insert, then replace
		if _, err := env.Services.Privacy.SetPIISettings(ctx, tn, set, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := privacy.LoadPIISettings(ctx, tn); err != nil || !reflect.DeepEqual(got, set) {
		t.Fatalf("stored %+v, %v; want %+v", got, err, set)
	}
	// The cached masker sees the change at once.
	m, err = env.Services.Privacy.PIIMaskerFor(ctx, tn)
	if err != nil || m.MasksIdentifierType("phone") || !reflect.DeepEqual(m.Settings(), set) {
		t.Fatalf("masker after the change: %+v, %v", m.Settings(), err)
	}

	// Refused input changes nothing.
	_, err = env.Services.Privacy.SetPIISettings(ctx, tn, privacy.PIISettings{IdentifierTypes: []string{"nope"}}, "admin")
	if apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("unknown type: %v", err)
	}
	if got, _ := privacy.LoadPIISettings(ctx, tn); !reflect.DeepEqual(got, set) {
		t.Fatalf("refused call changed the settings to %+v", got)
	}

	// A workspace's settings are its own.
	other := env.Store.Tenant("ws2")
	if got, _ := privacy.LoadPIISettings(ctx, other); !reflect.DeepEqual(got, privacy.DefaultPIISettings()) {
		t.Fatalf("ws2 sees %+v", got)
	}

	// Custom identifier types can be PII once they exist.
	if _, err := identity.SetType(ctx, tn, identity.NewCustomType("passport")); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Services.Privacy.SetPIISettings(ctx, tn, privacy.PIISettings{IdentifierTypes: []string{"passport"}}, "admin"); err != nil {
		t.Fatalf("custom type: %v", err)
	}
}

// FuzzMaskString checks what masking guarantees for any input, by the
// shape of what comes out: valid UTF-8; "" only for ""; and of the input
// only what the documented form shows: plain text its first character and
// "***" ("***" alone for one character or a first byte that is not
// UTF-8); an email address its first character, "***" and "@domain"; an
// international phone number "+", the country code (a known code, else one
// digit), one "*" per hidden digit (at least two) and the last two digits.
// MaskEmail and MaskPhone give their own form or the plain one.
func FuzzMaskString(f *testing.F) {
	for _, s := range []string{
		"", "a", "ab", "ana@example.com", "+14155550123", "@@", "+", "++1", "\xff", "a@\xff",
		"+1 (415) 555-0123", "+351912345678", "+9991234567", "+1234567", "+123456", "+123", "é@x", "a***",
		"+1-2.3(4)5 6 7", "\xff\xfe", "\xffabc@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := privacy.MaskString(s)
		kind := checkMasked(t, "MaskString", s, got)
		if got := privacy.MaskEmail(s); checkMasked(t, "MaskEmail", s, got) == "phone" {
			t.Fatalf("MaskEmail(%q) = %q: a phone mask", s, got)
		}
		if got := privacy.MaskPhone(s); checkMasked(t, "MaskPhone", s, got) == "email" {
			t.Fatalf("MaskPhone(%q) = %q: an email mask", s, got)
		}
		if kind == "phone" && privacy.MaskPhone(s) != got {
			t.Fatalf("MaskString(%q) = %q, MaskPhone = %q", s, got, privacy.MaskPhone(s))
		}
	})
}

var phoneMask = regexp.MustCompile(`^\+([0-9]{1,3})(\*{2,})([0-9]{2})$`)

// checkMasked fails t unless got is a mask of s in one of the documented
// forms, and says which: "", "plain", "email" or "phone".
func checkMasked(t *testing.T, fn, s, got string) string {
	t.Helper()
	fail := func(why string) { t.Helper(); t.Fatalf("%s(%q) = %q: %s", fn, s, got, why) }
	if !utf8.ValidString(got) {
		fail("not valid UTF-8")
	}
	if (s == "") != (got == "") {
		fail("empty in or out, not both")
	}
	if s == "" {
		return ""
	}
	first, size := utf8.DecodeRuneInString(s)
	if m := phoneMask.FindStringSubmatch(got); m != nil {
		// "+" then only digits and separators, at least 7 digits.
		rest, ok := strings.CutPrefix(s, "+")
		var digits []byte
		for i := 0; ok && i < len(rest); i++ {
			switch c := rest[i]; {
			case c >= '0' && c <= '9':
				digits = append(digits, c)
			case strings.IndexByte(" -().", c) < 0:
				ok = false
			}
		}
		if !ok || len(digits) < 7 {
			fail("a phone mask of something not an international number")
		}
		cc, stars, last := m[1], m[2], m[3]
		switch {
		case len(cc)+len(stars)+len(last) != len(digits):
			fail(fmt.Sprintf("not one * per hidden digit (%d digits in)", len(digits)))
		case !strings.HasPrefix(string(digits), cc) || !strings.HasSuffix(string(digits), last):
			fail("shows digits other than its first and last")
		}
		// The kept prefix is the country code: the known code the digits
		// start with (codes are prefix-free), else one digit.
		want := digits[:1]
		for n := 1; n <= 3; n++ {
			if code, _ := strconv.Atoi(string(digits[:n])); phonenumbers.GetRegionCodeForCountryCode(code) != phonenumbers.UNKNOWN_REGION {
				want = digits[:n]
				break
			}
		}
		if cc != string(want) {
			fail(fmt.Sprintf("keeps %q, not the country code %q", cc, want))
		}
		return "phone"
	}
	if rest, ok := strings.CutPrefix(got, string(first)+"***@"); ok && first != utf8.RuneError {
		at := strings.LastIndexByte(s, '@')
		if at <= 0 || first == '@' || "@"+rest != s[at:] {
			fail("not first character, *** and the address's own domain")
		}
		return "email"
	}
	switch {
	case got == "***":
		if size < len(s) && first != utf8.RuneError {
			fail("hides the first character of longer text")
		}
	case got == string(first)+"***" && first != utf8.RuneError && size < len(s):
	default:
		fail("not a documented mask form")
	}
	return "plain"
}
