package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
)

// ErrMalformed is returned by the parsers when a body is not a JSON object or
// names no event: the provider sent something that is not a push at all
// (HTTP 400). A known event that is merely missing a field is not an error:
// it parses into an event of kind otpbot.KindRejected.
var ErrMalformed = errors.New("malformed push")

// MinIDSecretBytes is the shortest Parser.IDSecret accepted.
const MinIDSecretBytes = 16

// errNoIDSecret is a Parser without a usable IDSecret: a programming or wiring
// error, not a bad push (the handler answers 503, so nothing is lost).
var errNoIDSecret = fmt.Errorf("webhooks: Parser.IDSecret must be at least %d bytes", MinIDSecretBytes)

// Parser turns authenticated push bodies into events.
type Parser struct {
	// IDSecret keys the identity of a push that carries no id of its own
	// (every HyperCard push; a UPay push without orderNo): the id is an
	// HMAC-SHA256 under IDSecret of a canonical form of the body's known
	// fields (those the parser reads for its event type; the whole body
	// for a type it does not know): for HyperCard the string its signature
	// covers (hyperCardID), for UPay the JSON with sorted keys (bodyID).
	// A plain hash would let
	// anyone who sees an id (logs, history, backups, message and task ids)
	// recover a short code in the body by trying every value. It must be
	// at least MinIDSecretBytes long, secret, and the same for every process
	// on one store and across restarts (the store's installation secret,
	// otpbot.SecretStore), or a repeated push is not recognised as one.
	IDSecret []byte
	// Codes says how long codes live.
	Codes CodeConfig
	// AuthResults says what an AUTH_3DS auth_result means (the
	// configuration key providers.hypercard.auth_results): the one mapping
	// the message, /codes, history and the approval buttons all follow. A
	// result it does not list is otpbot.AuthUnknown (treated as pending).
	// DefaultAuthResults when nil.
	AuthResults map[int]otpbot.AuthState
}

// DefaultAuthResults is what auth_result means when nothing is configured:
// the values otpbot's own answers send (providers.hypercard.api
// approve_result 2 and decline_result 3).
func DefaultAuthResults() map[int]otpbot.AuthState {
	return map[int]otpbot.AuthState{2: otpbot.AuthApproved, 3: otpbot.AuthDeclined}
}

// authState reads an auth_result through p.AuthResults. A missing (or
// malformed, so dropped) result is pending: the request is shown waiting.
func (p Parser) authState(result Scalar) otpbot.AuthState {
	n, ok := result.Int()
	if !ok {
		return otpbot.AuthPending
	}
	results := p.AuthResults
	if results == nil {
		results = DefaultAuthResults()
	}
	if st, ok := results[int(n)]; ok {
		return st
	}
	return otpbot.AuthUnknown
}

// request is what the handler knows of a push besides its body.
type request struct {
	// received is when otpbot accepted it, by otpbot's clock.
	received time.Time
	// signedAt is the time the push's verified signature covers, on the
	// provider's own clock (HyperCard's timestamp header, UPay's
	// X-UPA-TIMESTAMP); zero when the push is not signed.
	signedAt time.Time
	// nonce is HyperCard's signed nonce header; "" when not signed.
	nonce string
	// tolerance is the provider's signature_tolerance: an unsigned push's
	// time further from its receipt than this is taken as clock skew.
	tolerance time.Duration
}

// signed reports whether the push carried a verified signature.
func (r request) signed() bool { return !r.signedAt.IsZero() }

// age is how old something the provider made at created (on its own
// clock) was when the push arrived. A signed push says when it was sent
// on that same clock, so the age is the signed time minus created,
// however far the provider's clock is from otpbot's. Without a signature
// the receipt time stands in for it, unless created is in the future or
// older than the signature tolerance: that is clock skew, not age, and
// the age is then taken as zero (as if created at receipt).
func (r request) age(created time.Time) time.Duration {
	if created.IsZero() {
		return 0
	}
	if r.signed() {
		return max(r.signedAt.Sub(created), 0)
	}
	if age := r.received.Sub(created); age >= 0 && age <= r.tolerance {
		return age
	}
	return 0
}

// occurrence tells one push from a later one with the same contents, for
// the identity of a history event whose body carries no unique id: a
// retry re-sends the same signed nonce and timestamp, a new event does
// not. An unsigned push has neither, so it is told apart by the minute it
// arrived in: content-identical events are collapsed for at most a
// minute.
func (r request) occurrence() string {
	if r.signed() {
		return "&nonce=" + r.nonce + "&timestamp=" + strconv.FormatInt(r.signedAt.Unix(), 10)
	}
	return "&received_minute=" + strconv.FormatInt(r.received.Unix()/60, 10)
}

// setCodeExpiry sets when ev, a code the provider created at created (on
// its clock), stops being valid: its lifetime (codes.ttl, ttl_by_event)
// less its age when it arrived (request.age), counted from the receipt.
// A code older than its lifetime expired on arrival: Reason says why, for
// history and ops.
func (p Parser) setCodeExpiry(ev *otpbot.Event, created time.Time, rq request) {
	ttl := p.Codes.ttl(ev.Name)
	age := rq.age(created)
	ev.ExpiresAt = rq.received.Add(ttl - age)
	if age >= ttl {
		ev.Reason = fmt.Sprintf("%s old by the provider's clock when it arrived, longer than its lifetime of %s",
			age.Round(time.Second), ttl)
	}
}

// amount normalises an amount to its currency's minor units
// (otpbot.NormalizeAmount); a value vet let through is a decimal.
func amount(v, cur Scalar) string {
	if a, ok := otpbot.NormalizeAmount(string(v), string(cur)); ok {
		return a
	}
	return ""
}

// currency writes a currency code as ISO 4217 does, in capitals.
func currency(v Scalar) string { return strings.ToUpper(string(v)) }

// checkSecret fails for a Parser without a usable IDSecret. Every parse checks
// it, so a wiring mistake shows at the first push rather than at the first
// push that happens to lack an id.
func (p Parser) checkSecret() error {
	if len(p.IDSecret) < MinIDSecretBytes {
		return errNoIDSecret
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
	ev.Code, ev.Link = "", ""
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
