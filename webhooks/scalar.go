package webhooks

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
)

// Scalar is a lenient JSON scalar: both providers send numbers sometimes as
// JSON numbers and sometimes as strings ("result": "1" in HyperCard's own
// examples), and declare some strings that arrive as numbers. Scalar keeps
// the text exactly as written — a number's literal, a string's contents — so
// amounts are never rounded through a float and signature strings render
// numbers as the sender wrote them.
//
// null and absent both give "" (which the parsers treat as missing); true and
// false give "true" and "false"; an object or array gives "" as well, because
// no scalar field can carry one and treating it as missing lets the
// required-field check name it instead of failing the whole push.
//
// A string is cleaned as it is decoded (cleanText: no control or
// bidirectional formatting character survives), so that no provider string
// reaches a message, a log line or the store with them.
type Scalar string

// UnmarshalJSON implements json.Unmarshaler.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	v, str, err := decodeScalar(b)
	if str {
		v = cleanText(v)
	}
	*s = Scalar(v)
	return err
}

// decodeScalar reads a JSON scalar as Scalar describes, without cleaning;
// str says whether it was a JSON string.
func decodeScalar(b []byte) (v string, str bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", false, nil
	}
	switch b[0] {
	case '"':
		// encoding/json hands over a valid literal: without escapes (and
		// with valid UTF-8, which it would otherwise repair) its contents
		// are the value, and re-entering the decoder is what costs.
		if len(b) >= 2 && b[len(b)-1] == '"' {
			if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
				return string(inner), true, nil
			}
		}
		err := json.Unmarshal(b, &v)
		return v, true, err
	case '{', '[', 'n':
		return "", false, nil
	}
	return string(b), false, nil // a number literal, true or false: already valid JSON text
}

// signedScalar is a Scalar as sent, not cleaned: the value a signature
// covers (the UPay event name in X-UPA-SIGN's string).
type signedScalar string

// UnmarshalJSON implements json.Unmarshaler.
func (s *signedScalar) UnmarshalJSON(b []byte) error {
	v, _, err := decodeScalar(b)
	*s = signedScalar(v)
	return err
}

// String returns the value as written.
func (s Scalar) String() string { return string(s) }

// Int returns the value as an integer ("1", 1, "1.0" and 1e0 all give 1); ok
// is false when it is missing or not a whole number.
func (s Scalar) Int() (int64, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// Time reads the value as a time, in each form the documents use: a Unix
// time in seconds or in milliseconds ("Long", "int": any value above 10^11,
// which in seconds would be the year 5138, is taken as milliseconds), or
// the text "2006-01-02 15:04:05" (UPay's dispatchTime, a String without a
// stated zone, read as UTC; a "T" between date and time is accepted too).
// ok is false when it is missing or none of these.
func (s Scalar) Time() (time.Time, bool) {
	if n, ok := s.Int(); ok {
		if n <= 0 {
			return time.Time{}, false
		}
		if n > 1e11 {
			return time.UnixMilli(n).UTC(), true
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range [...]string{time.DateTime, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, strings.TrimSpace(string(s))); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// CardNumber is a card number (PAN) as a push carries it. It parses like
// Scalar, but prints masked as otpbot.CardNumber does ("•••• 1234") through
// fmt and slog, so that a push struct that ends up in a log line never
// shows the full number; only its last four digits (otpbot.MaskCard) ever
// leave the parser.
type CardNumber Scalar

// UnmarshalJSON implements json.Unmarshaler.
func (c *CardNumber) UnmarshalJSON(b []byte) error { return (*Scalar)(c).UnmarshalJSON(b) }

// String returns the masked number.
func (c CardNumber) String() string { return otpbot.CardNumber(c).String() }

// LogValue implements slog.LogValuer with the masked number.
func (c CardNumber) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Secret is a one-time code or link as a push carries it. It parses like
// Scalar and prints as otpbot.Secret does ([REDACTED], or "" when absent)
// through fmt and slog: codes are never written to logs.
type Secret Scalar

// UnmarshalJSON implements json.Unmarshaler.
func (s *Secret) UnmarshalJSON(b []byte) error { return (*Scalar)(s).UnmarshalJSON(b) }

// String hides the value.
func (s Secret) String() string { return otpbot.Secret(s).String() }

// LogValue implements slog.LogValuer, hiding the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
