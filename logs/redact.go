package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/otpbot/otpbot"
)

// Redacted replaces a value the redaction handler hid.
const Redacted = "[REDACTED]"

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
//   - attributes whose key suggests a secret (code, token, secret, password,
//     signature, sign, key...) have their value replaced by [REDACTED],
//     except otpbot's routing keys (key_type=card key=…RD-A, card ids
//     masked by otpbot.MaskID), which ops must be able to read;
//   - every configured secret string is replaced by [REDACTED] in the
//     message and in every string value;
//   - every run of 12 to 19 digits (a card number, spaces or dashes between
//     groups allowed) in the message and string values becomes ••••last4.
//
// Values of other kinds (errors, structs, maps) are rendered and scrubbed
// the same way, so a struct logged by mistake loses its secret fields.
type Redactor struct {
	inner   slog.Handler
	secrets []string
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
	return &Redactor{inner: inner, secrets: keep}
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
	return &Redactor{inner: h.inner.WithAttrs(clean), secrets: h.secrets}
}

// WithGroup implements slog.Handler.
func (h *Redactor) WithGroup(name string) slog.Handler {
	return &Redactor{inner: h.inner.WithGroup(name), secrets: h.secrets}
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
	v := a.Value.Resolve()
	if SecretKey(a.Key) && v.Kind() != slog.KindGroup {
		if shown, ok := routingKey(a.Key, v); ok {
			return slog.String(a.Key, h.Scrub(shown))
		}
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

// routingKey returns how to show an attribute that looks secret only
// because of the word "key" ("key", "key_type", "owner_key") but holds
// otpbot's routing key, which ops need to read and which is not a secret:
// an otpbot.Key or its type, "card:ID" / "customer:NO" (or with a space,
// as ops reports write them), or, under the attribute "key" itself, a
// card id as the bot logs it. A card id is shown masked by otpbot.MaskID
// (some platforms use the card number as id), a customer number as it
// is. ok is false for anything else, which stays redacted.
func routingKey(name string, v slog.Value) (shown string, ok bool) {
	if !routingName(name) {
		return "", false
	}
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindAny:
		switch x := v.Any().(type) {
		case otpbot.Key:
			return keyText(x.Type, ":", x.ID), x.ID != ""
		case *otpbot.Key:
			if x == nil || x.ID == "" {
				return "", false
			}
			return keyText(x.Type, ":", x.ID), true
		case otpbot.KeyType:
			s = string(x)
		default:
			return "", false
		}
	default:
		return "", false
	}
	if s == string(otpbot.KeyCard) || s == string(otpbot.KeyCustomer) {
		return s, true
	}
	if i := strings.IndexAny(s, ": "); i > 0 && i < len(s)-1 {
		t := otpbot.KeyType(s[:i])
		if t == otpbot.KeyCard || t == otpbot.KeyCustomer {
			return keyText(t, s[i:i+1], s[i+1:]), true
		}
	}
	// The bot logs a key's type and its id apart ("key_type", "key"),
	// the id already shortened by otpbot.MaskID; masking again keeps at
	// most its last four characters, whatever it holds.
	if strings.EqualFold(name, "key") && s != "" {
		return otpbot.MaskID(s), true
	}
	return "", false
}

// cryptoWords make a "key" in an attribute name a cryptographic key
// ("api_key", "signing_key"), never a routing key.
var cryptoWords = map[string]bool{
	"api": true, "private": true, "priv": true, "public": true, "pub": true,
	"signing": true, "access": true, "session": true, "auth": true,
	"encryption": true, "enc": true, "hmac": true, "master": true, "ssh": true,
}

// routingName reports whether an attribute name may hold a routing key:
// "key" is the only word that makes it look secret, and nothing says it
// is a cryptographic key ("key", "key_type", "owner_key"; not "api_key",
// "signing_key" or "secret_key").
func routingName(name string) bool {
	lower := strings.ToLower(name)
	for _, f := range secretFragments {
		if strings.Contains(lower, f) {
			return false
		}
	}
	for _, w := range keyWords(name) {
		if cryptoWords[w] || (secretWords[w] && w != "key" && w != lower) {
			return false
		}
	}
	return true
}

// keyText writes a routing key with its card id masked.
func keyText(t otpbot.KeyType, sep, id string) string {
	if t == otpbot.KeyCard {
		id = otpbot.MaskID(id)
	}
	return string(t) + sep + id
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
// with ••••last4.
func (h *Redactor) Scrub(s string) string {
	for _, sec := range h.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return MaskCardNumbers(s)
}

// MaskCardNumbers replaces every run of 12 to 19 digits in s (single spaces
// or dashes between digit groups allowed, as card numbers are written) with
// "••••" and its last four digits. Longer or shorter runs are left alone:
// they are ids, amounts or timestamps, not card numbers.
func MaskCardNumbers(s string) string {
	if !hasLongDigitRun(s) {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := cardRunEnd(s, i)
		if end < 0 {
			// Not a card number: copy this group of digits as it is.
			k := i
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			b.WriteString(s[i:k])
			i = k
			continue
		}
		b.WriteString("••••")
		b.WriteString(lastDigits(s[i:end], 4))
		i = end
	}
	return b.String()
}

// cardRunEnd returns where the card number starting at i ends, or -1 when
// none starts there. A contiguous group of 12-19 digits is one; a shorter
// group is joined with the groups after it (one space or dash apart) and the
// longest join of 12-19 digits wins, so "4111 1111 1111 1111 2024" masks
// the card and keeps the year.
func cardRunEnd(s string, i int) int {
	k := i
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	n := k - i
	if n >= 12 && n <= 19 {
		return k
	}
	if n > 19 {
		return -1
	}
	best, digits := -1, n
	for k+1 < len(s) && (s[k] == ' ' || s[k] == '-') && isDigit(s[k+1]) {
		j := k + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		digits += j - (k + 1)
		if digits > 19 {
			break
		}
		if digits >= 12 {
			best = j
		}
		k = j
	}
	return best
}

func hasLongDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
			if n >= 12 {
				return true
			}
		} else if s[i] != ' ' && s[i] != '-' {
			n = 0
		}
	}
	return false
}

func lastDigits(s string, n int) string {
	out := make([]byte, 0, n)
	for i := len(s) - 1; i >= 0 && len(out) < n; i-- {
		if isDigit(s[i]) {
			out = append(out, s[i])
		}
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
