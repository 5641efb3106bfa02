package deal

import (
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/currency"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// Amounts are kept in the currency's minor units (cents), as integers, so
// that sums are exact; the currency's ISO 4217 scale says how many.

// maxMinor bounds an amount: exact in a float64 on the way out.
const maxMinor = 1 << 53

// notMoney are ISO 4217 codes that name no currency a deal is priced in:
// testing, "no currency", precious metals, special drawing rights and
// other units of account.
var notMoney = []string{"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}

// parseCurrency checks an ISO 4217 code (upper-cased) and returns it with
// its number of minor-unit digits. The digits are CLDR's, as
// golang.org/x/text keeps them (a few currencies, IDR or IQD among them,
// have fewer there than in ISO 4217's table); a deal stores the digits
// it was priced with, so the library's table changing later rescales
// nothing.
func parseCurrency(field, code string) (string, int, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	u, err := currency.ParseISO(code)
	if err != nil || len(code) != 3 || u.String() != code || slices.Contains(notMoney, code) {
		return "", 0, apperr.Invalid(field, "unknown currency %q (an ISO 4217 code, like EUR)", code)
	}
	scale, _ := currency.Standard.Rounding(u)
	return code, scale, nil
}

// toMinor converts an amount in units to minor units at scale: the
// decimal the client wrote (the float's shortest form), rounded half away
// from zero, so 1.005 EUR is 1.01. Negative, non-finite or too large is
// refused.
func toMinor(field string, amount float64, scale int) (int64, error) {
	if math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 {
		return 0, apperr.Invalid(field, "must be a finite amount, zero or more")
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(amount, 'f', -1, 64))
	if !ok {
		return 0, apperr.Invalid(field, "is not an amount")
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	// Half away from zero: floor(r + 1/2) for r >= 0.
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() || q.Int64() > maxMinor {
		return 0, apperr.Invalid(field, "is too large")
	}
	return q.Int64(), nil
}

// fromMinor is minor units at scale as an amount in units.
func fromMinor(m int64, scale int) float64 { return float64(m) / math.Pow10(scale) }
