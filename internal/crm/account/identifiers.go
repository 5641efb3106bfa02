package account

import (
	"errors"
	"regexp"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// Identifier is one (type, value) pair naming an account, normalised.
type Identifier struct {
	Type  string `bson:"type" json:"type"`
	Value string `bson:"value" json:"value"`
}

// Account identifier types: Domain and CRMAccountID are built in; any
// other name (letters, digits, _, at most 40, starting with a letter) is
// a custom type, its values trimmed.
const (
	Domain       = "domain"
	CRMAccountID = "crmAccountId"
)

// Limits of an account.
const (
	MaxIdentifiers = 50
	MaxNameLen     = 256
	maxValueLen    = 256
)

var typeName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,39}$`)

// idnaProfile checks and converts a host name as browsers and mail
// servers resolve it (UTS #46, IDNA 2008), Unicode names to punycode.
var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true), idna.StrictDomainName(true), idna.VerifyDNSLength(true), idna.Transitional(false))

// NormaliseDomain is d as a domain identifier: lower-case, without a
// scheme, path, port, trailing dot or leading "www.", in punycode. It
// refuses what is not a registrable domain or a name under one (a bare
// public suffix such as "com" or "co.uk", an IP address, a single label).
func NormaliseDomain(d string) (string, error) {
	d = strings.TrimSpace(strings.ToLower(d))
	if i := strings.Index(d, "://"); i >= 0 {
		d = d[i+3:]
	}
	if i := strings.IndexAny(d, "/?#"); i >= 0 {
		d = d[:i]
	}
	if i := strings.LastIndexByte(d, ':'); i >= 0 {
		d = d[:i]
	}
	if d == "" || len(d) > 254 {
		return "", errors.New("is not a domain")
	}
	// Mapped first (full-width letters, ideographic dots), then trimmed,
	// so that every spelling of www.acme.com lands on acme.com.
	ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(d, "."))
	if err != nil {
		return "", errors.New("is not a domain")
	}
	ascii = strings.TrimPrefix(strings.TrimSuffix(ascii, "."), "www.")
	if !strings.Contains(ascii, ".") {
		return "", errors.New("is not a domain")
	}
	etld1, err := publicsuffix.EffectiveTLDPlusOne(ascii)
	if err != nil || etld1 == "" {
		return "", errors.New("is not a domain (a public suffix alone, like com or co.uk, names no company)")
	}
	// All-numeric top labels are IP addresses, not names.
	if last := ascii[strings.LastIndexByte(ascii, '.')+1:]; strings.Trim(last, "0123456789") == "" {
		return "", errors.New("is not a domain")
	}
	return ascii, nil
}

// normalise validates id (naming field in errors) and returns it
// normalised.
func normalise(field string, id Identifier) (Identifier, error) {
	if !typeName.MatchString(id.Type) {
		return id, apperr.Invalid(field+".type", "must be a letter then letters, digits or _ (at most 40)")
	}
	switch id.Type {
	case Domain:
		d, err := NormaliseDomain(id.Value)
		if err != nil {
			return id, apperr.Invalid(field+".value", "%s", err.Error())
		}
		id.Value = d
	default:
		id.Value = strings.TrimSpace(id.Value)
		if id.Value == "" {
			return id, apperr.Invalid(field+".value", "must not be empty")
		}
	}
	if len(id.Value) > maxValueLen {
		return id, apperr.Invalid(field+".value", "is longer than %d bytes", maxValueLen)
	}
	return id, nil
}

// EmailDomain is the domain of an email address, normalised, or "" when
// it has none.
func EmailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	d, err := NormaliseDomain(email[at+1:])
	if err != nil {
		return ""
	}
	return d
}
