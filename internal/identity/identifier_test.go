package identity

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

const field = "input.identifiers"

func TestNormaliseAccepts(t *testing.T) {
	tests := []struct {
		name      string
		in        Identifier
		wantValue string
	}{
		{"anonymousId kept as is", Identifier{AnonymousID, "a1B2-c3"}, "a1B2-c3"},
		{"anonymousId trimmed", Identifier{AnonymousID, "  anon-42\t"}, "anon-42"},
		{"userId case kept", Identifier{UserID, "User_ABC"}, "User_ABC"},
		{"deviceId", Identifier{DeviceID, "dev:9f8e"}, "dev:9f8e"},
		{"crmId", Identifier{CRMID, "SF-00123"}, "SF-00123"},
		{"userId with unicode", Identifier{UserID, "Zoë-ünïcode"}, "Zoë-ünïcode"},
		{"id of exactly 256 bytes", Identifier{UserID, strings.Repeat("u", 256)}, strings.Repeat("u", 256)},
		{"id of 256 bytes after trim", Identifier{UserID, "  " + strings.Repeat("u", 256) + " "}, strings.Repeat("u", 256)},

		{"email lower-cased", Identifier{Email, "Alice@Example.COM"}, "alice@example.com"},
		{"email trimmed", Identifier{Email, "  bob@example.org \n"}, "bob@example.org"},
		{"email plus tag", Identifier{Email, "a.b+tag@mail.example.co.uk"}, "a.b+tag@mail.example.co.uk"},

		{"phone with plus and separators", Identifier{Phone, "+33 6 12-34.56 (78)"}, "+33612345678"},
		{"phone 00 prefix", Identifier{Phone, "0033 612 345 678"}, "+33612345678"},
		{"phone national, default region US", Identifier{Phone, "(555) 123-4567"}, "+15551234567"},
		{"phone national with trunk 1", Identifier{Phone, "1-212-555-0100"}, "+12125550100"},
		{"phone US international prefix 011", Identifier{Phone, "011 44 20 7946 0958"}, "+442079460958"},
		{"phone fictional 555-01xx accepted", Identifier{Phone, "+1 (555) 010-0000"}, "+15550100000"},
		{"phone demo seed format", Identifier{Phone, "+15550000042"}, "+15550000042"},
		{"phone trimmed", Identifier{Phone, " +44 20 7946 0958 "}, "+442079460958"},
		{"phone 15 digits", Identifier{Phone, "+49 1234 5678901234"}, "+4912345678901234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalise(field, []Identifier{tt.in})
			if err != nil {
				t.Fatalf("Normalise(%+v): %v", tt.in, err)
			}
			want := []Identifier{{Type: tt.in.Type, Value: tt.wantValue}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Normalise(%+v) = %+v, want %+v", tt.in, got, want)
			}
		})
	}
}

// wantInvalid checks err is BAD_USER_INPUT about wantField, with a message
// containing inMsg.
func wantInvalid(t *testing.T, err error, wantField, inMsg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want BAD_USER_INPUT on %s", wantField)
	}
	e, ok := apperr.As(err)
	if !ok {
		t.Fatalf("error %v (%T) is not an apperr.Error", err, err)
	}
	if e.Code != apperr.BadUserInput {
		t.Errorf("code = %s, want %s", e.Code, apperr.BadUserInput)
	}
	if e.Field != wantField {
		t.Errorf("field = %q, want %q (error: %v)", e.Field, wantField, err)
	}
	if !strings.Contains(e.Message, inMsg) {
		t.Errorf("message = %q, want it to contain %q", e.Message, inMsg)
	}
	if !utf8.ValidString(e.Message) {
		t.Errorf("message is not valid UTF-8: %q", e.Message)
	}
}

func TestNormaliseRefusesValues(t *testing.T) {
	tests := []struct {
		name  string
		in    Identifier
		inMsg string
	}{
		{"email without @", Identifier{Email, "alice.example.com"}, "invalid email"},
		{"email without dot in domain", Identifier{Email, "alice@localhost"}, "invalid email"},
		{"email with display name", Identifier{Email, "Name <a@b.co>"}, "invalid email"},
		{"email in angle brackets", Identifier{Email, "<a@b.co>"}, "invalid email"},
		{"email with trailing dot", Identifier{Email, "a@b.co."}, "invalid email"},
		{"email empty local part", Identifier{Email, "@b.co"}, "invalid email"},
		{"email two @", Identifier{Email, "a@b@c.co"}, "invalid email"},
		{"email with space inside", Identifier{Email, "a b@c.co"}, "invalid email"},

		{"phone with letters", Identifier{Phone, "555-CALL-NOW"}, "invalid phone"},
		{"phone with plus inside", Identifier{Phone, "+33+612345678"}, "invalid phone"},
		{"phone with slash", Identifier{Phone, "0612/345678"}, "invalid phone"},
		{"phone too few digits", Identifier{Phone, "+33 12 34"}, "too short for country code +33"},
		{"phone 6 digits", Identifier{Phone, "123456"}, "invalid phone"},
		{"phone 7 digits, local only", Identifier{Phone, "555-0100"}, "include the area code"},
		{"phone too long for +1", Identifier{Phone, "+123456789012345"}, "too long for country code +1"},
		{"phone 16 digits", Identifier{Phone, "+1234567890123456"}, "invalid phone"},
		{"phone 18 digits", Identifier{Phone, "+123456789012345678"}, "too long"},
		{"phone unknown country code", Identifier{Phone, "+999 1234 5678"}, "unknown country code"},
		{"phone only separators and 00", Identifier{Phone, "00 () -"}, "no digits"},
		{"phone all zeros after country code", Identifier{Phone, "+1 000 000 0000"}, "invalid phone"},
		{"phone extension", Identifier{Phone, "+1 212 555 0100 ext 12"}, "invalid phone"},
		{"phone tel URI", Identifier{Phone, "tel:+12125550100"}, "invalid phone"},

		{"too long", Identifier{UserID, strings.Repeat("u", 257)}, "longer than 256 bytes"},
		{"too long multi-byte", Identifier{UserID, strings.Repeat("é", 129)}, "longer than 256 bytes"},
		{"invalid UTF-8", Identifier{UserID, "ab\xffcd"}, "not valid text"},
		{"NUL", Identifier{UserID, "ab\x00cd"}, "not valid text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalise(field, []Identifier{tt.in})
			if got != nil {
				t.Errorf("result %+v alongside an error", got)
			}
			wantInvalid(t, err, field+"[0].value", tt.inMsg)
		})
	}
}

func TestNormaliseRefusesPlaceholders(t *testing.T) {
	values := []string{
		"", "   ", "null", "NULL", "Null", "nil", "NIL", "none", "None",
		"undefined", "UNDEFINED", "anonymous", "Anonymous", "unknown", "Unknown",
		"n/a", "N/A", "0", " 0 ", "-1",
		"00000000-0000-0000-0000-000000000000", "000", "---", "0-0",
	}
	for _, typ := range []string{AnonymousID, UserID, Email, Phone, DeviceID, CRMID} {
		for _, v := range values {
			t.Run(fmt.Sprintf("%s=%q", typ, v), func(t *testing.T) {
				_, err := Normalise(field, []Identifier{{Type: typ, Value: v}})
				wantInvalid(t, err, field+"[0].value", "placeholder")
			})
		}
	}
}

func TestNormaliseRefusesPlaceholderPhoneOfZeros(t *testing.T) {
	// Enough digits for a phone number, but all zeros.
	_, err := Normalise(field, []Identifier{{Type: Phone, Value: "0000000000"}})
	wantInvalid(t, err, field+"[0].value", "placeholder")
}

func TestNormaliseFieldNamesOffendingIndex(t *testing.T) {
	in := []Identifier{
		{Type: Email, Value: "ok@example.com"},
		{Type: Phone, Value: "12"},
		{Type: Email, Value: "bad"},
	}
	_, err := Normalise(field, in)
	wantInvalid(t, err, "input.identifiers[1].value", "phone")

	in[1] = Identifier{Type: "twitter", Value: "@x"}
	_, err = Normalise(field, in)
	wantInvalid(t, err, "input.identifiers[1].type", `unknown identifier type "twitter"`)

	in[1] = Identifier{Type: Phone, Value: "+33612345678"}
	_, err = Normalise(field, in)
	wantInvalid(t, err, "input.identifiers[2].value", "invalid email")
}

func TestNormaliseUnknownType(t *testing.T) {
	for _, typ := range []string{"", "Email", "EMAIL", "fax", "anonymousID"} {
		t.Run(typ, func(t *testing.T) {
			_, err := Normalise(field, []Identifier{{Type: typ, Value: "x@y.co"}})
			wantInvalid(t, err, field+"[0].type", "unknown identifier type")
		})
	}
}

func TestNormaliseCount(t *testing.T) {
	_, err := Normalise(field, nil)
	wantInvalid(t, err, field, "at least one")
	_, err = Normalise(field, []Identifier{})
	wantInvalid(t, err, field, "at least one")

	many := func(n int) []Identifier {
		out := make([]Identifier, n)
		for i := range out {
			out[i] = Identifier{Type: AnonymousID, Value: fmt.Sprintf("anon-%d", i)}
		}
		return out
	}
	got, err := Normalise(field, many(MaxPerCall))
	if err != nil {
		t.Fatalf("%d identifiers refused: %v", MaxPerCall, err)
	}
	if len(got) != MaxPerCall {
		t.Fatalf("got %d identifiers, want %d", len(got), MaxPerCall)
	}
	_, err = Normalise(field, many(MaxPerCall+1))
	wantInvalid(t, err, field, "at most 20 identifiers per call, got 21")
}

func TestNormaliseDropsExactDuplicates(t *testing.T) {
	in := []Identifier{
		{Type: Email, Value: "Alice@Example.com"},
		{Type: AnonymousID, Value: "anon-1"},
		{Type: Email, Value: " alice@example.COM "}, // same email after normalisation
		{Type: AnonymousID, Value: "anon-1"},        // exact repeat
		{Type: UserID, Value: "anon-1"},             // same value, other type: kept
		{Type: AnonymousID, Value: "ANON-1"},        // ids are case-sensitive: kept
		{Type: Phone, Value: "+33 6 12 34 56 78"},
		{Type: Phone, Value: "0033612345678"}, // same phone after normalisation
	}
	got, err := Normalise(field, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []Identifier{
		{Type: Email, Value: "alice@example.com"},
		{Type: AnonymousID, Value: "anon-1"},
		{Type: UserID, Value: "anon-1"},
		{Type: AnonymousID, Value: "ANON-1"},
		{Type: Phone, Value: "+33612345678"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Normalise = %+v\nwant        %+v", got, want)
	}
}

func TestNormaliseDoesNotModifyInput(t *testing.T) {
	in := []Identifier{{Type: Email, Value: " A@B.CO "}}
	if _, err := Normalise(field, in); err != nil {
		t.Fatal(err)
	}
	if in[0].Value != " A@B.CO " {
		t.Fatalf("input changed to %q", in[0].Value)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "abc", "abc"},
		{"exactly 40", strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{"41 ASCII", strings.Repeat("a", 41), strings.Repeat("a", 40) + "…"},
		{"multi-byte fits", strings.Repeat("é", 20), strings.Repeat("é", 20)},
		// "a" + 30×"é" is 61 bytes; byte 40 falls inside an "é".
		{"rune straddling the cut", "a" + strings.Repeat("é", 30), "a" + strings.Repeat("é", 19) + "…"},
		{"4-byte runes", strings.Repeat("😀", 11), strings.Repeat("😀", 10) + "…"},
		{"4-byte runes offset", "ab" + strings.Repeat("😀", 11), "ab" + strings.Repeat("😀", 9) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in)
			if !utf8.ValidString(got) {
				t.Fatalf("truncate split a rune: %q", got)
			}
			if got != tt.want {
				t.Fatalf("truncate = %q, want %q", got, tt.want)
			}
			if n := len(strings.TrimSuffix(got, "…")); n > 40 {
				t.Fatalf("kept %d bytes, more than 40", n)
			}
		})
	}
}

func TestUnknownTypeMessageKeepsRunesWhole(t *testing.T) {
	typ := "t" + strings.Repeat("ü", 40)
	_, err := Normalise(field, []Identifier{{Type: typ, Value: "v"}})
	wantInvalid(t, err, field+"[0].type", `"t`+strings.Repeat("ü", 19)+`…"`)
}

func TestTruncateInvalidUTF8StaysBounded(t *testing.T) {
	// Continuation bytes only: there is no rune start to back off to; the
	// cut must still stay near 40 bytes rather than drop everything.
	got := truncate(strings.Repeat("\x80", 60))
	if n := len(strings.TrimSuffix(got, "…")); n < 37 || n > 40 {
		t.Fatalf("kept %d bytes, want 37..40", n)
	}
}
