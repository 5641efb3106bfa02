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
)

// Identifier is one (type, value) pair, normalised.
type Identifier struct {
	Type  string `bson:"type"`
	Value string `bson:"value"`
}

// Built-in identifier types. Each workspace may tune them and add its own
// (see TypeConfig and LoadTypes).
const (
	AnonymousID = "anonymousId"
	UserID      = "userId"
	Email       = "email"
	Phone       = "phone"
	DeviceID    = "deviceId"
	CRMID       = "crmId"
)

// MaxPerCall caps the identifiers one call may carry.
const MaxPerCall = 20

// maxValueLen bounds an identifier value (bytes).
const maxValueLen = 256

// allZero matches all-zero ids such as 00000000-0000-0000-0000-000000000000.
// They are refused for every type, whatever the workspace configures.
var allZero = regexp.MustCompile(`^[0-]*$`)

// Normalise validates and normalises a call's identifiers with the
// built-in type configuration (DefaultTypes). Calls made on behalf of a
// workspace should use LoadTypes and Types.Normalise instead.
func Normalise(field string, in []Identifier) ([]Identifier, error) {
	return defaultTypes.Normalise(field, in)
}

// defaultTypes is DefaultTypes as a Types.
var defaultTypes = newTypes(DefaultTypes())

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
