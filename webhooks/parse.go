package webhooks

import (
	"bytes"
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

// MinIDKeyBytes is the shortest Parser.IDKey accepted.
const MinIDKeyBytes = 16

// errNoIDKey is a Parser without a usable IDKey: a programming or wiring
// error, not a bad push (the handler answers 503, so nothing is lost).
var errNoIDKey = fmt.Errorf("webhooks: Parser.IDKey must be at least %d bytes", MinIDKeyBytes)

// Parser turns authenticated push bodies into events.
type Parser struct {
	// IDKey keys the identity of a push that carries no id of its own
	// (every HyperCard push; a UPay push without orderNo): the id is an
	// HMAC-SHA256 under IDKey of a canonical form of the body's known
	// fields (those the parser reads for its event type; the whole body
	// for a type it does not know): for HyperCard the string its signature
	// covers (hyperCardID), for UPay the JSON with sorted keys (bodyID).
	// A plain hash would let
	// anyone who sees an id (logs, history, backups, message and task ids)
	// recover a short code in the body by trying every value. It must be
	// at least MinIDKeyBytes long, secret, and the same for every process
	// on one store and across restarts (the store's installation key,
	// otpbot.KeyStore), or a repeated push is not recognised as one.
	IDKey []byte
	// Codes says how long codes live.
	Codes CodeConfig
}

// checkKey fails for a Parser without a usable IDKey. Every parse checks
// it, so a wiring mistake shows at the first push rather than at the first
// push that happens to lack an id.
func (p Parser) checkKey() error {
	if len(p.IDKey) < MinIDKeyBytes {
		return errNoIDKey
	}
	return nil
}

// DefaultCodeTTL is the lifetime of a code whose push carries no expiry when
// CodeConfig.TTL is not set (the configuration key codes.ttl).
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
