// Package identity turns the identifiers a call carries (anonymous ids,
// emails, phones, CRM ids...) into one persistent profile: normalisation,
// lookup, stitching, and merging profiles that turn out to be one person.
package identity

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/halo-cdp/halo/apperr"
)

// Identifier is one (type, value) pair, normalised.
type Identifier struct {
	Type  string `bson:"type"`
	Value string `bson:"value"`
}

// Built-in identifier types. Per-workspace configuration comes later; until
// then these are the accepted types.
const (
	AnonymousID = "anonymousId"
	UserID      = "userId"
	Email       = "email"
	Phone       = "phone"
	DeviceID    = "deviceId"
	CRMID       = "crmId"
)

var types = map[string]func(string) (string, error){
	AnonymousID: normaliseID,
	UserID:      normaliseID,
	DeviceID:    normaliseID,
	CRMID:       normaliseID,
	Email:       normaliseEmail,
	Phone:       normalisePhone,
}

// MaxPerCall caps the identifiers one call may carry.
const MaxPerCall = 20

// maxValueLen bounds an identifier value (bytes).
const maxValueLen = 256

// blocked are placeholder values SDKs send when they know nothing; matching
// on them would glue strangers together.
var blocked = map[string]bool{
	"": true, "null": true, "nil": true, "none": true, "undefined": true,
	"anonymous": true, "unknown": true, "0": true, "-1": true, "n/a": true,
}

// allZero matches all-zero ids such as 00000000-0000-0000-0000-000000000000.
var allZero = regexp.MustCompile(`^[0-]*$`)

// Normalise validates and normalises a call's identifiers and drops exact
// repeats. field names the GraphQL input field for error messages.
func Normalise(field string, in []Identifier) ([]Identifier, error) {
	if len(in) == 0 {
		return nil, apperr.Invalid(field, "at least one identifier is required")
	}
	if len(in) > MaxPerCall {
		return nil, apperr.Invalid(field, "at most %d identifiers per call, got %d", MaxPerCall, len(in))
	}
	out := make([]Identifier, 0, len(in))
	seen := map[Identifier]bool{}
	for i, id := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		norm, ok := types[id.Type]
		if !ok {
			return nil, apperr.Invalid(f+".type", "unknown identifier type %q (known: anonymousId, userId, email, phone, deviceId, crmId)", truncate(id.Type))
		}
		v := strings.TrimSpace(id.Value)
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, apperr.Invalid(f+".value", "not valid text")
		}
		if len(v) > maxValueLen {
			return nil, apperr.Invalid(f+".value", "longer than %d bytes", maxValueLen)
		}
		if blocked[strings.ToLower(v)] || allZero.MatchString(v) {
			return nil, apperr.Invalid(f+".value", "%q is a placeholder, not an identifier", truncate(v))
		}
		nv, err := norm(v)
		if err != nil {
			return nil, apperr.Invalid(f+".value", "%s", err.Error())
		}
		n := Identifier{Type: id.Type, Value: nv}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func normaliseID(v string) (string, error) { return v, nil }

func normaliseEmail(v string) (string, error) {
	v = strings.ToLower(v)
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || addr.Name != "" {
		return "", fmt.Errorf("invalid email address")
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || !strings.Contains(v[at+1:], ".") || strings.HasSuffix(v, ".") {
		return "", fmt.Errorf("invalid email address")
	}
	return v, nil
}

// normalisePhone keeps a leading "+" (or "00" as "+") and the digits,
// dropping the usual separators. Full E.164 with a default region comes
// with per-workspace identifier configuration.
func normalisePhone(v string) (string, error) {
	var b strings.Builder
	plus := false
	if strings.HasPrefix(v, "+") {
		plus, v = true, v[1:]
	} else if strings.HasPrefix(v, "00") {
		plus, v = true, v[2:]
	}
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", fmt.Errorf("invalid phone number")
		}
	}
	digits := b.String()
	if len(digits) < 7 || len(digits) > 15 {
		return "", fmt.Errorf("invalid phone number: want 7 to 15 digits")
	}
	if plus {
		return "+" + digits, nil
	}
	return digits, nil
}

// truncate shortens s to at most 40 bytes for a message, never splitting
// a UTF-8 sequence.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	cut := 40
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + "…"
}
