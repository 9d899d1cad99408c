package webhooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/otpbot/otpbot/hyperpay"
)

// The identity of a push that carries no id of its own (every HyperCard
// push, a UPay push without orderNo) is a keyed hash of what the parser
// reads of it; see Parser.IDSecret for why it is keyed.

// bodyIDHexLen is how many hex digits of the HMAC an id keeps: 128 bits,
// plenty to tell pushes apart, and short in logs.
const bodyIDHexLen = 32

// bodyID returns the keyed identity of a UPay body without orderNo: the hex HMAC-SHA256
// under key of the canonical form of the members the parser reads (see
// knownShape), truncated to bodyIDHexLen digits. The canonical form is the
// body parsed and re-marshalled with sorted keys and numbers as written, so
// that whitespace and key order do not change the identity of a push;
// members the parser does not read are left out, so that a retry that
// gained a field is still a repeat. A nil shape keeps the whole body: for
// a push of an unknown type no member is known, and every one of them may
// be what tells two pushes apart. (X-UPA-SIGN covers the body's bytes, so
// no replay can re-type a member; HyperCard's signature is looser, see
// hyperCardID.)
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
	return keyedID(key, canon), nil
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
		if sub, ok := sh.member(k); ok {
			if sub != nil {
				val = sub.filter(val)
			}
			out[k] = val
		}
	}
	return out
}

// member reports whether sh names the member k, without regard to letter
// case (as encoding/json matches names), and returns its own shape.
func (sh shape) member(k string) (shape, bool) {
	for name, sub := range sh {
		if strings.EqualFold(k, name) {
			return sub, true
		}
	}
	return nil, false
}

// hyperCardID returns the keyed identity of a HyperCard push: the hex
// HMAC-SHA256 under key, truncated to bodyIDHexLen digits, of the string
// HyperCard's signature covers (hyperpay.SignString), built from the
// members the parser reads (see knownShape; the whole body when known is
// nil).
//
// Building the identity from the signed string rather than from the JSON
// makes the two agree exactly: whatever the signature cannot tell apart is
// one push. A captured push replayed with a member re-typed
// ("create_time": 1765… as "1765…"), a null for an empty string, a string
// holding an object's JSON text, or a value moved across a "&key=" boundary
// still verifies, and so must still be a repeat. What the signature does
// tell apart stays apart: 1.50, "1.5" and 1.5e0 are three values, because
// the signed string keeps a number as it is written. Members the signature
// never covers are left out too: "signature" in any case, and members named
// like a signed header (timestamp, nonce, api-key, version), whose header
// value is signed in their place.
//
// occurrence, when not empty, is appended to the signed string before it
// is hashed (see request.occurrence).
func hyperCardID(key, body []byte, known shape, occurrence string) (string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(body), &members); err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	headers := hyperpay.SignedHeaders()
	var kept bytes.Buffer
	kept.WriteByte('{')
	for k, raw := range members {
		if _, ok := known.member(k); (known != nil && !ok) || slices.Contains(headers, k) {
			continue
		}
		if kept.Len() > 1 {
			kept.WriteByte(',')
		}
		if err := writeJSONString(&kept, k); err != nil {
			return "", fmt.Errorf("canonicalise body: %w", err)
		}
		kept.WriteByte(':')
		kept.Write(raw)
	}
	kept.WriteByte('}')
	signed, err := hyperpay.SignString(nil, kept.Bytes())
	if err != nil {
		return "", fmt.Errorf("canonicalise body: %w", err)
	}
	return keyedID(key, []byte(signed+occurrence)), nil
}

// keyedID is the hex HMAC-SHA256 of canon under key, bodyIDHexLen digits.
func keyedID(key, canon []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(canon)
	return hex.EncodeToString(mac.Sum(nil))[:bodyIDHexLen]
}

// writeJSONString writes s as a JSON string: as it is when it needs no
// escape (member names nearly always), else through encoding/json.
func writeJSONString(b *bytes.Buffer, s string) error {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
	}
	if plain {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return nil
	}
	q, err := json.Marshal(s)
	b.Write(q)
	return err
}
