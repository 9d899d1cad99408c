package hyperpay

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The headers HyperCard signs besides the body fields
// (docs/hypercard.md#signature). Names are lower case, as HyperCard sends
// and signs them.
const (
	HeaderTimestamp = "timestamp" // Unix seconds
	HeaderNonce     = "nonce"     // 10 random characters
	HeaderAPIKey    = "api-key"
	HeaderVersion   = "version"
	HeaderSignature = "signature" // Base64; never part of the signed string
)

// SignedHeaders returns the names of the headers that enter the signed
// string, in the order they are usually sent. It returns a new slice each
// time so that no caller can change what another one signs.
func SignedHeaders() []string {
	return []string{HeaderTimestamp, HeaderNonce, HeaderAPIKey, HeaderVersion}
}

// Errors a failed verification wraps, so that callers can tell a malformed
// request from a forged one without matching strings.
var (
	// ErrSignatureEncoding: the signature is not Base64.
	ErrSignatureEncoding = errors.New("signature is not Base64")
	// ErrSignString: the body is not a flat JSON object, so there is no
	// string to verify.
	ErrSignString = errors.New("cannot build the signed string")
	// ErrSignature: the signature does not verify with the public key.
	ErrSignature = errors.New("signature does not verify")
)

// SignString builds the string HyperCard signs: every header of headers
// (names lower-cased; HyperCard signs timestamp, nonce, api-key and
// version) and every field of the JSON object body, except signature and
// empty values, sorted by key in ASCII order and joined as
// key=value&key=value.
//
// Values are rendered as the sender wrote them: strings unquoted, numbers as
// their literal (json.RawMessage, never through a float, so 1.00 stays
// 1.00), true/false as such; null is empty and left out. HyperCard pushes are
// flat and its flattening of nested values is unpublished, so an object or
// array is rendered as its compact JSON text. A header wins over a body
// field of the same name, so that the timestamp that is checked for
// freshness is always the one the signature covers. An empty body has no
// fields; any other body that is not a JSON object is an error.
func SignString(headers map[string]string, body []byte) (string, error) {
	params := make(map[string]string, len(headers)+8)
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 {
		var fields map[string]json.RawMessage
		if trimmed[0] != '{' {
			return "", errors.New("hypercard sign string: body is not a JSON object")
		}
		if err := json.Unmarshal(trimmed, &fields); err != nil {
			return "", fmt.Errorf("hypercard sign string: %w", err)
		}
		for k, raw := range fields {
			v, err := signValue(raw)
			if err != nil {
				return "", fmt.Errorf("hypercard sign string: field %q: %w", k, err)
			}
			params[k] = v
		}
	}
	for k, v := range headers {
		params[strings.ToLower(k)] = v
	}
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if v != "" && !strings.EqualFold(k, HeaderSignature) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String(), nil
}

// signValue renders one body value for the signature string.
func signValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case 'n':
		return "", nil
	case '{', '[':
		var b bytes.Buffer
		err := json.Compact(&b, raw)
		return b.String(), err
	}
	return string(raw), nil
}

// Sign returns the signature header for a request or push:
// Base64(SHA256withRSA(key, SignString(headers, body))). HyperCard issues
// 1024-bit keys; any RSA size works.
func Sign(key *rsa.PrivateKey, headers map[string]string, body []byte) (string, error) {
	if key == nil {
		return "", errors.New("hypercard sign: no private key")
	}
	s, err := SignString(headers, body)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(s))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("hypercard sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks signature (the Base64 signature header) against headers
// and body with the signer's public key. The error wraps
// ErrSignatureEncoding, ErrSignString or ErrSignature, and never quotes the
// signature, the headers or the body.
func Verify(pub *rsa.PublicKey, headers map[string]string, body []byte, signature string) error {
	if pub == nil {
		return fmt.Errorf("hypercard verify: no public key: %w", ErrSignature)
	}
	given, err := DecodeSignature(signature)
	if err != nil {
		return fmt.Errorf("hypercard verify: %w", err)
	}
	s, err := SignString(headers, body)
	if err != nil {
		return fmt.Errorf("hypercard verify: %w: body is not a JSON object", ErrSignString)
	}
	digest := sha256.Sum256([]byte(s))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], given) != nil {
		return fmt.Errorf("hypercard verify: %w", ErrSignature)
	}
	return nil
}

// DecodeSignature reads a Base64 signature, standard or URL alphabet,
// padded or not: only the bytes matter, since it is the RSA check that
// proves them. Platforms differ in which alphabet they send. The error
// wraps ErrSignatureEncoding and does not quote s.
func DecodeSignature(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, ErrSignatureEncoding
}
