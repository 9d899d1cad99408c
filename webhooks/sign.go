package webhooks

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/otpbot/otpbot/hyperpay"
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

// The headers HyperCard signs besides the body fields. They are
// hyperpay's: one scheme serves HyperCard's pushes and otpbot's API requests.
const (
	HyperCardHeaderTimestamp = hyperpay.HeaderTimestamp // Unix seconds
	HyperCardHeaderNonce     = hyperpay.HeaderNonce
	HyperCardHeaderAPIKey    = hyperpay.HeaderAPIKey
	HyperCardHeaderVersion   = hyperpay.HeaderVersion
	HyperCardHeaderSignature = hyperpay.HeaderSignature // never part of the signed string
)

// HyperCardSignString builds the string HyperCard signs over headers and the
// flat JSON object body; see hyperpay.SignString, which it calls.
func HyperCardSignString(headers map[string]string, body []byte) (string, error) {
	return hyperpay.SignString(headers, body)
}

// SignHyperCard returns the signature header HyperCard would send:
// Base64(SHA256withRSA(key, HyperCardSignString(headers, body))); see
// hyperpay.Sign, which it calls.
func SignHyperCard(key *rsa.PrivateKey, headers map[string]string, body []byte) (string, error) {
	return hyperpay.Sign(key, headers, body)
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
