package deal

import (
	"math"
	"strings"

	"golang.org/x/text/currency"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// Amounts are kept in the currency's minor units (cents), as integers, so
// that sums are exact; the currency's ISO 4217 scale says how many.

// maxMinor bounds an amount: exact in a float64 on the way out.
const maxMinor = 1 << 53

// parseCurrency checks an ISO 4217 code (upper-cased).
func parseCurrency(field, code string) (string, int, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	u, err := currency.ParseISO(code)
	if err != nil || len(code) != 3 {
		return "", 0, apperr.Invalid(field, "unknown currency %q (an ISO 4217 code, like EUR)", code)
	}
	scale, _ := currency.Standard.Rounding(u)
	return u.String(), scale, nil
}

// toMinor converts an amount in units to minor units at scale, rounding
// half away from zero; negative, non-finite or too large is refused.
func toMinor(field string, amount float64, scale int) (int64, error) {
	if math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 {
		return 0, apperr.Invalid(field, "must be a finite amount, zero or more")
	}
	m := math.Round(amount * math.Pow10(scale))
	if m > maxMinor {
		return 0, apperr.Invalid(field, "is too large")
	}
	return int64(m), nil
}

// fromMinor is minor units at scale as an amount in units.
func fromMinor(m int64, scale int) float64 { return float64(m) / math.Pow10(scale) }
