package otpbot

import (
	"strconv"
	"strings"
)

// Amounts arrive as the providers write them: "12.5", "12.50", 12.5,
// "1.2E+1". otpbot shows them in the currency's minor units, the way a
// bank statement does: USD 12.50, JPY 100, BHD 0.125.

// maxAmountExponent bounds the exponent of an amount written in exponent
// form: no real amount needs more, and a larger one would expand into a
// string of zeros.
const maxAmountExponent = 30

// currencyExponents are the ISO 4217 currencies whose minor unit is not
// the hundredth (the exponent of every other listed currency is 2).
var currencyExponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// iso4217 lists the active ISO 4217 alphabetic codes (2025). A code not
// listed here (USDT, a numeric code) has no known minor unit: its amounts
// are shown with the decimals they were written with.
const iso4217 = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV " +
	"BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK " +
	"DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS " +
	"INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD " +
	"MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR " +
	"PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD " +
	"SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS " +
	"VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"

// CurrencyExponent returns the number of decimals of the currency's minor
// unit (ISO 4217: 2 for USD, 0 for JPY, 3 for BHD); ok is false for a code
// ISO 4217 does not list. Letter case does not matter.
func CurrencyExponent(code string) (exp int, ok bool) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != 3 || !isLetters(code) {
		return 0, false
	}
	// The list is codes of three letters, each followed by a space but the
	// last: a match at a multiple of four is one whole code.
	if i := strings.Index(iso4217, code); i < 0 || i%4 != 0 {
		return 0, false
	}
	if e, ok := currencyExponents[code]; ok {
		return e, true
	}
	return 2, true
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// decimal is a number as digits and a scale: digits × 10^-scale.
type decimal struct {
	neg    bool
	digits string // without leading zeros; "0" for zero
	scale  int    // decimals written (≥ 0)
}

// parseDecimal reads a decimal as providers write one: an optional sign,
// digits with an optional fraction, and an optional exponent ("12.50",
// "-3", ".5", "1.2E+1", "125e-3"). ok is false for anything else,
// including an exponent beyond maxAmountExponent.
func parseDecimal(s string) (decimal, bool) {
	s = strings.TrimSpace(s)
	var d decimal
	if s != "" && (s[0] == '+' || s[0] == '-') {
		d.neg, s = s[0] == '-', s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || s[i+1:] == "" || e > maxAmountExponent || e < -maxAmountExponent {
			return decimal{}, false
		}
		mant, exp = s[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return decimal{}, false
	}
	digits, scale := intPart+frac, len(frac)-exp
	if scale < 0 {
		digits += strings.Repeat("0", -scale)
		scale = 0
	}
	d.digits, d.scale = strings.TrimLeft(digits, "0"), scale
	if d.digits == "" {
		d.digits, d.neg = "0", false
	}
	return d, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// withScale returns d with exactly scale decimals: zeros added, or
// trailing zeros dropped (never a significant digit).
func (d decimal) withScale(scale int) decimal {
	for d.scale > scale && strings.HasSuffix(d.digits, "0") && d.digits != "0" {
		d.digits, d.scale = d.digits[:len(d.digits)-1], d.scale-1
	}
	if d.digits == "0" && d.scale > scale {
		d.scale = scale
	}
	if d.scale < scale {
		d.digits += strings.Repeat("0", scale-d.scale)
		d.scale = scale
	}
	return d
}

// String writes d with its scale: "12.50", "-0.125", "100".
func (d decimal) String() string {
	digits := d.digits
	if len(digits) <= d.scale {
		digits = strings.Repeat("0", d.scale-len(digits)+1) + digits
	}
	s := digits
	if d.scale > 0 {
		s = digits[:len(digits)-d.scale] + "." + digits[len(digits)-d.scale:]
	}
	if d.neg && strings.Trim(d.digits, "0") != "" {
		s = "-" + s
	}
	return s
}

// ValidAmount reports whether s is a decimal NormalizeAmount reads.
func ValidAmount(s string) bool {
	_, ok := parseDecimal(s)
	return ok
}

// NormalizeAmount writes an amount in the minor units of its currency:
// exactly as many decimals as the currency has ("12.5" USD → "12.50",
// "100.00" JPY → "100", "0.125" BHD → "0.125"), the exponent form expanded
// ("1.2E+1" USD → "12.00"). A decimal beyond the minor unit is kept, never
// rounded away ("12.345" USD stays "12.345"). Without a currency ISO 4217
// lists (none, USDT) the amount keeps the decimals it was written with,
// the exponent expanded. ok is false when amount is not a decimal.
func NormalizeAmount(amount, currency string) (string, bool) {
	d, ok := parseDecimal(amount)
	if !ok {
		return "", false
	}
	if exp, known := CurrencyExponent(currency); known {
		d = d.withScale(exp)
	}
	return d.String(), true
}
