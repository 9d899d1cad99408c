package webhooks

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// SignUPay returns UPay's X-UPA-SIGN for a push: Base64(HMAC-SHA256(secret,
// event + "|" + timestamp + "|" + body)), with timestamp the X-UPA-TIMESTAMP
// header (milliseconds) and body the bytes sent.
func SignUPay(secret []byte, event, timestamp string, body []byte) string {
	return base64.StdEncoding.EncodeToString(upayMAC(secret, event, timestamp, body))
}

// upayMAC is the raw HMAC behind SignUPay.
func upayMAC(secret []byte, event, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(event))
	mac.Write([]byte("|"))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("|"))
	mac.Write(body)
	return mac.Sum(nil)
}

// The headers HyperCard signs besides the body fields.
const (
	HyperCardHeaderTimestamp = "timestamp" // Unix seconds
	HyperCardHeaderNonce     = "nonce"
	HyperCardHeaderAPIKey    = "api-key"
	HyperCardHeaderVersion   = "version"
	HyperCardHeaderSignature = "signature" // never part of the signed string
)

// HyperCardSignString builds the string HyperCard signs: every header of
// headers (names lower-cased; HyperCard signs timestamp, nonce, api-key and
// version) and every field of the flat JSON object body, except signature
// and empty values, sorted by key in ASCII order and joined as
// key=value&key=value.
//
// Values are rendered as the sender wrote them: strings unquoted, numbers as
// their literal (json.RawMessage, never through a float), true/false as
// such; null is empty and left out. HyperCard pushes are flat and its
// flattening of nested values is unpublished, so an object or array is
// rendered as its compact JSON text. A header wins over a body field of the
// same name, so that the timestamp that is checked for freshness is always
// the one the signature covers. An empty body has no fields; any other body
// that is not a JSON object is an error.
func HyperCardSignString(headers map[string]string, body []byte) (string, error) {
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
		if v != "" && !strings.EqualFold(k, HyperCardHeaderSignature) {
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

// SignHyperCard returns the signature header HyperCard would send:
// Base64(SHA256withRSA(key, HyperCardSignString(headers, body))).
func SignHyperCard(key *rsa.PrivateKey, headers map[string]string, body []byte) (string, error) {
	s, err := HyperCardSignString(headers, body)
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

// UPay JWE algorithms accepted when decrypting {"payload":"<JWE>"} bodies
// with the merchant private key (UPay does not publish which it uses):
//
//   - key management: RSA-OAEP, RSA-OAEP-256 (RSA1_5 is refused: it is open
//     to padding-oracle attacks);
//   - content encryption: A128GCM, A256GCM, A128CBC-HS256, A256CBC-HS512.
func upayJWEAlgorithms() ([]jose.KeyAlgorithm, []jose.ContentEncryption) {
	return []jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256},
		[]jose.ContentEncryption{jose.A128GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A256CBC_HS512}
}

// EncryptUPay wraps a push body the way UPay sends encrypted pushes:
// {"payload":"<JWE compact serialization>"}, RSA-OAEP-256 with the
// merchant's public key and A256GCM.
func EncryptUPay(pub *rsa.PublicKey, body []byte) ([]byte, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: pub}, nil)
	if err != nil {
		return nil, fmt.Errorf("upay encrypt: %w", err)
	}
	obj, err := enc.Encrypt(body)
	if err != nil {
		return nil, fmt.Errorf("upay encrypt: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("upay encrypt: %w", err)
	}
	out, err := json.Marshal(struct {
		Payload string `json:"payload"`
	}{compact})
	if err != nil {
		return nil, fmt.Errorf("upay encrypt: %w", err)
	}
	return out, nil
}
