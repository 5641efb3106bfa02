package identity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// normalisePhone formats v as E.164 (+<country code><national number>).
//
// The rule:
//   - Only digits and the separators space - ( ) . are accepted, after an
//     optional leading "+" or "00" (read as "+"). Letters (vanity numbers),
//     extensions and URIs ("tel:") are refused.
//   - A number without "+"/"00" is read as a national number of region
//     (ISO 3166 alpha-2, e.g. "US": "(212) 555-0100" → +12125550100; "GB":
//     "07700 900123" → +447700900123). The region's own international
//     prefix works too ("011 33 ..." in the US). With no region, a number
//     must carry its country code.
//   - The country code must exist and the national number must have a
//     length that country's numbering plan allows for a full number
//     (libphonenumber's IsPossibleNumber, excluding "local only" numbers
//     that lack an area code).
//
// Numbers are deliberately not required to be in an assigned range
// (IsValidNumber): that would refuse the fictional 555-01xx numbers used in
// tests and demos and, worse, real numbers in ranges newer than the
// metadata. Wrong lengths, unknown country codes and non-numbers are
// refused, which is what matters for matching people.
func normalisePhone(v, region string) (string, error) {
	var b strings.Builder
	plus := false
	rest := v
	if strings.HasPrefix(rest, "+") {
		plus, rest = true, rest[1:]
	} else if strings.HasPrefix(rest, "00") {
		plus, rest = true, rest[2:]
	}
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", errors.New("invalid phone number: only digits, spaces and - ( ) . are allowed, after an optional leading +")
		}
	}
	digits := b.String()
	if digits == "" {
		return "", errors.New("invalid phone number: no digits")
	}
	if len(digits) > 17 {
		return "", errors.New("invalid phone number: too long")
	}
	var (
		num *phonenumbers.PhoneNumber
		err error
	)
	if plus {
		num, err = phonenumbers.Parse("+"+digits, "")
	} else {
		if region == "" {
			return "", errors.New("invalid phone number: add the +country code (this workspace sets no default region for phones)")
		}
		num, err = phonenumbers.Parse(digits, region)
	}
	if err != nil {
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) {
			return "", errors.New("invalid phone number: unknown country code")
		}
		return "", errors.New("invalid phone number")
	}
	if num.GetNationalNumber() == 0 {
		return "", errors.New("invalid phone number")
	}
	switch phonenumbers.IsPossibleNumberWithReason(num) {
	case phonenumbers.IS_POSSIBLE:
		return phonenumbers.Format(num, phonenumbers.E164), nil
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "", errors.New("invalid phone number: unknown country code")
	case phonenumbers.TOO_SHORT:
		return "", fmt.Errorf("invalid phone number: too short for country code +%d", num.GetCountryCode())
	case phonenumbers.TOO_LONG:
		return "", fmt.Errorf("invalid phone number: too long for country code +%d", num.GetCountryCode())
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return "", errors.New("invalid phone number: a local number; include the area code")
	default:
		return "", fmt.Errorf("invalid phone number: wrong length for country code +%d", num.GetCountryCode())
	}
}

// validRegion reports whether region is a region phonenumbers knows.
func validRegion(region string) bool {
	_, ok := phonenumbers.GetSupportedRegions()[region]
	return ok
}
