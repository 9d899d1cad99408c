package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
)

// ErrMalformed is returned by the parsers when a body is not a JSON object or
// names no event: the provider sent something that is not a push at all
// (HTTP 400). A known event that is merely missing a field is not an error:
// it parses into an event of kind otpbot.KindRejected.
var ErrMalformed = errors.New("malformed push")

// DefaultCodeTTL is the lifetime of a code whose push carries no expiry when
// CodeConfig.TTL is not set (CONTRACT §2 codes.ttl).
const DefaultCodeTTL = 5 * time.Minute

// CodeConfig says how long codes live when the push itself does not say.
type CodeConfig struct {
	// TTL is the default lifetime; DefaultCodeTTL when zero.
	TTL time.Duration
	// TTLByEvent overrides TTL per event name ("3DS_OTP", "OPT_CODE"...);
	// names match case-insensitively (otpbot.NormalizeName).
	TTLByEvent map[string]time.Duration
}

// ttl returns the lifetime of a code of the named event.
func (c CodeConfig) ttl(name string) time.Duration {
	name = otpbot.NormalizeName(name)
	for k, d := range c.TTLByEvent {
		if d > 0 && otpbot.NormalizeName(k) == name {
			return d
		}
	}
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCodeTTL
}

// field is a named value of a push, for the required-field check.
type field struct {
	name  string
	value Scalar
}

// firstMissing returns the name of the first empty field, or "".
func firstMissing(fs ...field) string {
	for _, f := range fs {
		if f.value == "" {
			return f.name
		}
	}
	return ""
}

// reject turns ev into a rejected event: it keeps what identifies and routes
// the push (for history and ops) but never a code or link, since a rejected
// event is not pushed.
func reject(ev *otpbot.Event, reason string) {
	ev.Kind = otpbot.KindRejected
	ev.Reason = reason
	ev.Code, ev.Link, ev.CodeLabel = "", "", ""
	ev.ExpiresAt = time.Time{}
}

// decodeObject unmarshals a JSON object into v. A missing or null value
// leaves v empty (the required-field check then names what is missing);
// anything other than an object is an error.
func decodeObject(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if raw[0] != '{' {
		return errors.New("not an object")
	}
	return json.Unmarshal(raw, v)
}

// bodyHash returns the hex SHA-256 of the canonical form of a JSON body:
// parsed and re-marshalled with sorted keys, numbers as written, so that
// whitespace and key order do not change the identity of a push.
func bodyHash(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// statusWord translates a documented status code into words with table
// (which returns "" for a code it does not know); an undocumented code is
// kept visible as "status N" rather than dropped.
func statusWord(v Scalar, table func(int64) string) string {
	if v == "" {
		return ""
	}
	if n, ok := v.Int(); ok {
		if w := table(n); w != "" {
			return w
		}
	}
	return "status " + v.String()
}
