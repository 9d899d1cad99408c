package webhooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
	// HMAC-SHA256 under IDKey of the canonical form of the body's known
	// fields (those the parser reads for its event type; the whole body
	// for a type it does not know). A plain hash would let
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

// bodyIDHexLen is how many hex digits of the HMAC an id keeps: 128 bits,
// plenty to tell pushes apart, and short in logs.
const bodyIDHexLen = 32

// bodyID returns the keyed identity of a JSON body: the hex HMAC-SHA256
// under key of the canonical form of the members the parser reads (see
// knownShape), truncated to bodyIDHexLen digits. The canonical form is the
// body parsed and re-marshalled with sorted keys and numbers as written, so
// that whitespace and key order do not change the identity of a push;
// members the parser does not read are left out, so that a retry that
// gained a field (HyperCard says new ones will appear) is still a repeat.
// A nil shape keeps the whole body: for a push of an unknown type no member
// is known, and every one of them may be what tells two pushes apart.
func bodyID(key, body []byte, known shape) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	if known != nil {
		v = known.filter(v)
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(canon)
	return hex.EncodeToString(mac.Sum(nil))[:bodyIDHexLen], nil
}

// shape names the members of a JSON object that a parser reads. A member
// whose value is itself filtered (UPay's detail) maps to its own shape; the
// others map to nil and are kept whole.
type shape map[string]shape

// knownShape returns the shape of the members that decoding into each of
// structs (pointers to structs) reads: their fields' JSON names.
func knownShape(structs ...any) shape {
	sh := shape{}
	for _, v := range structs {
		t := reflect.TypeOf(v)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			sh[name] = nil
		}
	}
	return sh
}

// filter keeps the members of the object v that sh names, recursing into
// those with a shape of their own; a value that is not an object is kept
// as it is. Names match without regard to letter case, as encoding/json
// matches them when it decodes the push, so that a member the parser would
// read under another spelling still counts.
func (sh shape) filter(v any) any {
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(sh))
	for k, val := range obj {
		for name, sub := range sh {
			if strings.EqualFold(k, name) {
				if sub != nil {
					val = sub.filter(val)
				}
				out[k] = val
				break
			}
		}
	}
	return out
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
