package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/otpbot/otpbot"
)

// Redacted replaces a value the redaction handler hid.
const Redacted = otpbot.Redacted

// minSecretLen is the shortest configured secret that is scrubbed from text:
// replacing every "a" or "12" in every line would make logs unreadable and
// protects nothing, since such a secret is guessable anyway.
const minSecretLen = 4

// secretWords are key words that mark an attribute as secret wherever they
// appear as a word of the key ("code", "status_code", "X-UPA-SIGN", "apiKey").
var secretWords = map[string]bool{
	"code": true, "codes": true, "otp": true, "pin": true, "cvv": true, "cvc": true,
	"token": true, "secret": true, "password": true, "passwd": true, "pass": true,
	"signature": true, "sign": true, "sig": true, "key": true, "apikey": true,
	"authorization": true, "cookie": true, "payload": true,
}

// secretFragments mark a key as secret even inside a longer word
// ("webhooksecret", "bottoken").
var secretFragments = []string{"token", "secret", "password", "signature"}

// Redactor is a slog.Handler that scrubs every record before handing it to
// the handler it wraps:
//   - values of the root package's log types (otpbot.CardNumber, CardID,
//     Secret, MaskedID, Key, KeyType, Target, Ref) mask themselves where
//     they are logged and pass as they render: card numbers as "•••• 1234",
//     secrets as [REDACTED], routing keys with their card id shortened,
//     chat ids and task ids whole;
//   - any other value whose attribute key suggests a secret (code, token,
//     secret, password, signature, sign, key...) is replaced by
//     [REDACTED];
//   - every configured secret string is replaced by [REDACTED] in the
//     message and in every other string value;
//   - the last net, for free text (the message, errors, plain strings):
//     every run of 12 to 19 digits (a card number, spaces or dashes between
//     groups allowed; see MaskCardNumbers) becomes "•••• " and its last four.
//
// Numbers, durations and times pass untouched. Values of other kinds
// (errors, structs, maps) are rendered and scrubbed as text, so a struct
// logged by mistake loses its secret fields.
type Redactor struct {
	inner   slog.Handler
	secrets []string
	keys    *keyVerdicts // shared by the handlers WithAttrs/WithGroup derive
}

// keyVerdicts remembers SecretKey's answer per attribute key: a program
// logs a few dozen distinct keys, each on many lines, and splitting a key
// into words costs more than the rest of a line's scrubbing. At most
// maxKeyVerdicts keys are kept, so keys built from data cannot grow it.
type keyVerdicts struct {
	m sync.Map // string → bool
	n atomic.Int32
}

const maxKeyVerdicts = 1024

func (k *keyVerdicts) secret(key string) bool {
	if v, ok := k.m.Load(key); ok {
		return v.(bool)
	}
	secret := SecretKey(key)
	if k.n.Load() < maxKeyVerdicts && k.n.Add(1) <= maxKeyVerdicts {
		k.m.Store(key, secret)
	}
	return secret
}

// NewRedactor wraps inner. Secrets shorter than four characters are ignored.
func NewRedactor(inner slog.Handler, secrets ...string) *Redactor {
	var keep []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= minSecretLen && !seen[s] {
			seen[s] = true
			keep = append(keep, s)
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(keep, func(i, j int) bool { return len(keep[i]) > len(keep[j]) })
	return &Redactor{inner: inner, secrets: keep, keys: &keyVerdicts{}}
}

// Enabled implements slog.Handler.
func (h *Redactor) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *Redactor) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &Redactor{inner: h.inner.WithAttrs(clean), secrets: h.secrets, keys: h.keys}
}

// WithGroup implements slog.Handler.
func (h *Redactor) WithGroup(name string) slog.Handler {
	return &Redactor{inner: h.inner.WithGroup(name), secrets: h.secrets, keys: h.keys}
}

// SecretKey reports whether an attribute key suggests a secret value.
func SecretKey(key string) bool {
	lower := strings.ToLower(key)
	for _, f := range secretFragments {
		if strings.Contains(lower, f) {
			return true
		}
	}
	for _, w := range keyWords(key) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// keyWords splits a key into lower-case words at punctuation and at
// camelCase boundaries: "X-UPA-SIGN" → x, upa, sign; "apiKey" → api, key,
// and also "apikey" as a whole.
func keyWords(key string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	runes := []rune(key)
	for i, r := range runes {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(runes[i-1]):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	words = append(words, strings.ToLower(key))
	return words
}

// attr scrubs one attribute, recursing into groups.
func (h *Redactor) attr(a slog.Attr) slog.Attr {
	if v, ok := selfMasked(a.Value); ok {
		return slog.Attr{Key: a.Key, Value: v}
	}
	v := a.Value.Resolve()
	if h.keys.secret(a.Key) && v.Kind() != slog.KindGroup {
		if isEmpty(v) {
			return slog.Attr{Key: a.Key, Value: v}
		}
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.Scrub(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		clean := make([]slog.Attr, len(attrs))
		for i, g := range attrs {
			clean[i] = h.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(clean...)}
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: h.anyValue(v.Any())}
	default:
		// Numbers, bools, times and durations carry no secret text. A chat
		// id is a long number and must stay readable.
		return slog.Attr{Key: a.Key, Value: v}
	}
}

// selfMasked returns the value of one of the root package's log types as
// it renders itself, and ok; those types decide what a log may show of
// them, whatever the attribute is called.
func selfMasked(v slog.Value) (slog.Value, bool) {
	var x any
	switch v.Kind() {
	case slog.KindLogValuer:
		x = v.LogValuer()
	case slog.KindAny:
		x = v.Any()
	default:
		return v, false
	}
	switch t := x.(type) {
	case otpbot.CardNumber, otpbot.CardID, otpbot.Secret, otpbot.MaskedID,
		otpbot.Key, otpbot.Target, otpbot.Ref:
		return v.Resolve(), true
	case otpbot.KeyType:
		// "card" or "customer": nothing to hide.
		return slog.StringValue(string(t)), true
	}
	return v, false
}

// isEmpty reports whether a value is empty, so "token=" can still show
// that a token was missing.
func isEmpty(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return v.String() == ""
	case slog.KindAny:
		return v.Any() == nil
	}
	return false
}

// anyValue renders a value of unknown type in a form that can be scrubbed:
// errors and Stringers as text; structs, maps and slices through JSON into
// groups whose keys are checked like attribute keys.
func (h *Redactor) anyValue(x any) slog.Value {
	switch t := x.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(h.Scrub(t.Error()))
	case fmt.Stringer:
		return slog.StringValue(h.Scrub(t.String()))
	case []byte:
		return slog.StringValue(h.Scrub(string(t)))
	}
	rv := reflect.ValueOf(x)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return slog.AnyValue(nil)
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		b, err := json.Marshal(x)
		if err != nil {
			return slog.StringValue(h.Scrub(fmt.Sprint(x)))
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return slog.StringValue(h.Scrub(string(b)))
		}
		return h.jsonValue(generic)
	case reflect.String:
		return slog.StringValue(h.Scrub(rv.String()))
	}
	return slog.AnyValue(x)
}

// jsonValue turns decoded JSON into slog values, scrubbing as attr does.
func (h *Redactor) jsonValue(x any) slog.Value {
	switch t := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]slog.Attr, 0, len(keys))
		for _, k := range keys {
			if SecretKey(k) {
				if t[k] == nil || t[k] == "" {
					continue
				}
				attrs = append(attrs, slog.String(k, Redacted))
				continue
			}
			attrs = append(attrs, slog.Attr{Key: k, Value: h.jsonValue(t[k])})
		}
		return slog.GroupValue(attrs...)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = h.jsonValue(e).String()
		}
		return slog.StringValue("[" + strings.Join(parts, " ") + "]")
	case string:
		return slog.StringValue(h.Scrub(t))
	case float64:
		return slog.Float64Value(t)
	case bool:
		return slog.BoolValue(t)
	}
	return slog.StringValue(h.Scrub(fmt.Sprint(x)))
}

// Scrub replaces configured secrets in s with [REDACTED] and card numbers
// with "•••• " and their last four digits (MaskCardNumbers).
func (h *Redactor) Scrub(s string) string {
	for _, sec := range h.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return MaskCardNumbers(s)
}
