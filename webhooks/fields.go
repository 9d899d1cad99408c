package webhooks

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
)

// The longest values a push may carry, in bytes (after cleanText). A
// longer one is not real: the push is acknowledged and recorded as
// rejected (retrying cannot make it shorter), and the store never sees the
// value (a 900 KB card id would otherwise fail as a key, for ever).
const (
	// MaxIDBytes bounds identifiers: card ids, customer numbers, order
	// numbers, auth ids, traces, event names, codes, and the numbers and
	// times of a push.
	MaxIDBytes = 128
	// MaxTextBytes bounds texts: merchant names, reasons, amounts,
	// currencies, countries, addresses.
	MaxTextBytes = 256
	// MaxLinkBytes bounds web addresses: a confirmation link, a logistics
	// image.
	MaxLinkBytes = 2048
)

// cutBytes is how much of a value too long to be real the rejected record
// keeps, to tell one such push from another without carrying it.
const cutBytes = 16

// need says what a missing field means. "The document" is the provider's
// push document, whose fields docs/upay.md and docs/hypercard.md tabulate.
type need uint8

const (
	// optional: the document does not require it.
	optional need = iota
	// required: the document requires it. A known event without it is
	// rejected, except a code or approval request: the field is shown as
	// absent (or defaulted) and the push is delivered.
	required
	// routing: a routing key (card id, customer number), required. A code
	// or approval request needs at least one of its routing keys.
	routing
	// essential: what a code or approval request delivers (its code, link
	// or auth id): without it there is nothing to deliver.
	essential
)

// field is one value of a push as its event declares it: its name in the
// push (as ops and the rejection reason name it), where it was decoded to,
// its bound, whether it must be there, and what a well-formed value looks
// like.
type field struct {
	name  string
	value *Scalar
	max   int
	need  need
	// valid says whether a present value is well-formed (nil: any is). A
	// malformed value is dropped: shown as absent, never as sent.
	valid func(Scalar) bool
	// private values (card numbers, codes) are dropped rather than cut
	// when too long: a cut card number would show the wrong last digits.
	private bool
}

// The field constructors, by kind of value.

func idField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxIDBytes, need: n}
}

func textField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxTextBytes, need: n}
}

func linkField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxLinkBytes, need: n}
}

func timeField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxIDBytes, need: n, valid: validTime}
}

func intField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxIDBytes, need: n, valid: validInt}
}

func amountField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxTextBytes, need: n, valid: validAmount}
}

func currencyField(name string, v *Scalar, n need) field {
	return field{name: name, value: v, max: MaxTextBytes, need: n, valid: validCurrency}
}

func cardField(name string, v *CardNumber, n need) field {
	return field{name: name, value: (*Scalar)(v), max: MaxIDBytes, need: n, valid: validCard, private: true}
}

// secretField is a code, or (max MaxLinkBytes) a link.
func secretField(name string, v *Secret, n need, max int) field {
	return field{name: name, value: (*Scalar)(v), max: max, need: n, private: true}
}

func validTime(s Scalar) bool { _, ok := s.Time(); return ok }
func validInt(s Scalar) bool  { _, ok := s.Int(); return ok }

// validCard: a card number shows its last four digits, so it must have
// four.
func validCard(s Scalar) bool { return otpbot.MaskCard(string(s)) != "" }

var currencyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$`)

// validAmount: a decimal ("12.50", "-3", 100, "1.2E+1"), nothing else, so
// that no text can pose as an amount (otpbot.ValidAmount).
func validAmount(s Scalar) bool { return otpbot.ValidAmount(string(s)) }

// validCurrency: a code such as EUR, USDT or 978, not a phrase.
func validCurrency(s Scalar) bool { return currencyRE.MatchString(string(s)) }

// verdict is what vet found in the fields of a push.
type verdict struct {
	// reject is why the push is rejected, "" when it is not.
	reject string
	// degraded names the fields a delivered code or approval request lacks
	// or had malformed, in declaration order: they are shown as absent or
	// defaulted, and ops is told.
	degraded []string
}

// vet checks the fields of a push of the given kind, in place: a value
// too long to be real is cut (the push is rejected), a malformed one is
// dropped. With strict false (an event whose fields are unpublished, or an
// unknown one) no field is required.
//
// A code or approval request is rejected only when it lacks its essential
// field or every routing key: whatever else is missing or malformed is
// listed in degraded and the push is delivered without it. Any other
// known event is rejected when a required or routing field is missing, as
// its document says.
func vet(fields []field, kind otpbot.Kind, strict bool) verdict {
	var v verdict
	for _, f := range fields {
		if n := len(*f.value); n > f.max {
			*f.value = cut(*f.value, f.private)
			if v.reject == "" {
				v.reject = fmt.Sprintf("%s too long (%d bytes, at most %d)", f.name, n, f.max)
			}
		}
	}
	if v.reject != "" {
		return v
	}
	pushed := kind.Pushed()
	var keys []string
	routed := false
	for _, f := range fields {
		present := *f.value != ""
		if f.need == routing {
			keys = append(keys, f.name)
			routed = routed || present
		}
		switch {
		case present && f.valid != nil && !f.valid(*f.value):
			// Malformed: dropped, never shown as sent. A known event that
			// is not delivered keeps its place in history without it.
			*f.value = ""
			v.degraded = append(v.degraded, f.name)
		case present || !strict || f.need == optional:
		case f.need == essential || !pushed:
			if v.reject == "" {
				v.reject = "missing required field " + f.name
			}
		default: // a required field or one routing key of a pushed event
			v.degraded = append(v.degraded, f.name)
		}
	}
	if strict && pushed && v.reject == "" && len(keys) > 0 && !routed {
		v.reject = "missing routing key (" + strings.Join(keys, " or ") + ")"
	}
	if v.reject != "" || !pushed {
		v.degraded = nil // only a delivered push is degraded
	}
	return v
}

// cut shortens a value too long to be real to what a record may keep:
// nothing of a private one, a marked prefix of any other.
func cut(s Scalar, private bool) Scalar {
	if private {
		return ""
	}
	i := cutBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
