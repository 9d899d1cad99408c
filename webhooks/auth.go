package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/otpbot/otpbot/hyperpay"
)

// errUnauthorized is wrapped by every failed authentication check (HTTP 401).
var errUnauthorized = errors.New("unauthorized")

// authFailure reports a failed check. The reason is logged, so it names what
// failed and never carries a token, signature or key.
func authFailure(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnauthorized, fmt.Sprintf(format, args...))
}

// UPay's signature headers.
const (
	UPayHeaderSign      = "X-UPA-SIGN"
	UPayHeaderTimestamp = "X-UPA-TIMESTAMP" // 13-digit milliseconds
	UPayHeaderRequestID = "X-UPA-REQUESTID"
)

// equalSecret compares a presented secret with the configured one in
// constant time. Both are hashed first so that not even the length of the
// configured secret shows in the timing.
func equalSecret(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// checkToken accepts the shared secret from the query parameter `token`
// (for platforms that only let the merchant configure a URL) or from
// `Authorization: Bearer`.
func checkToken(r *http.Request, token string) error {
	var given []string
	if q := r.URL.Query().Get("token"); q != "" {
		given = append(given, q)
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		given = append(given, strings.TrimSpace(auth[7:]))
	}
	if len(given) == 0 {
		return authFailure("token missing")
	}
	ok := false
	for _, g := range given {
		ok = equalSecret(g, token) || ok // no short cut: both are compared
	}
	if !ok {
		return authFailure("token does not match")
	}
	return nil
}

// clientAddr returns the address a request comes from: the peer, or, when
// the peer is a trusted proxy, the right-most hop of X-Forwarded-For that is
// not itself a trusted proxy (hops further left could be written by the
// client), else X-Real-IP. An unreadable hop gives the invalid address,
// which no allow list contains.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !containsAddr(trusted, peer) {
		return peer
	}
	if xff := strings.TrimSpace(strings.Join(r.Header.Values("X-Forwarded-For"), ",")); xff != "" {
		hops := strings.Split(xff, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := parseAddr(strings.TrimSpace(hops[i]))
			if !hop.IsValid() || i == 0 || !containsAddr(trusted, hop) {
				return hop
			}
		}
	}
	if real := parseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); real.IsValid() {
		return real
	}
	return peer
}

// parseAddr reads "1.2.3.4", "1.2.3.4:80", "::1" or "[::1]:80"; IPv4-mapped
// IPv6 addresses are unmapped so IPv4 CIDRs match them.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// containsAddr reports whether any prefix contains a.
func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkAddr enforces allow_ips; an empty list allows any address.
func checkAddr(allow []netip.Prefix, a netip.Addr) error {
	if len(allow) == 0 {
		return nil
	}
	if !a.IsValid() {
		return authFailure("client address unreadable")
	}
	if !containsAddr(allow, a) {
		return authFailure("address %s not in allow_ips", a)
	}
	return nil
}

// checkFresh enforces a signature tolerance on a signed timestamp, both
// ways: a time far in the future is as suspect as a stale one.
func checkFresh(header string, t, now time.Time, tolerance time.Duration) error {
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return authFailure("%s outside signature_tolerance (off by %s)", header, d.Round(time.Second))
	}
	return nil
}

// parseDigits reads a non-negative decimal made of digits only.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// openUPay returns the push inside a UPay body: the body itself when it is
// plain JSON, or the decrypted JWE of a {"payload":"<JWE>"} wrapper when a
// private key is configured. Plain bodies are refused when RequireEncryption.
// Only the wrapper's two telling fields are read before decryption.
func (c *UPayConfig) openUPay(body []byte) (plain []byte, encrypted bool, err error) {
	if c.PrivateKey == nil {
		return body, false, nil
	}
	var wrapper struct {
		Payload Scalar `json:"payload"`
		Event   Scalar `json:"event"`
	}
	if json.Unmarshal(body, &wrapper) != nil || wrapper.Payload == "" || wrapper.Event != "" {
		if c.RequireEncryption {
			return nil, false, authFailure("body not encrypted but require_encryption is set")
		}
		return body, false, nil
	}
	keyAlgs, contentEncs := upayJWEAlgorithms()
	obj, err := jose.ParseEncryptedCompact(wrapper.Payload.String(), keyAlgs, contentEncs)
	if err != nil {
		return nil, false, authFailure("payload is not a compact JWE with an accepted algorithm")
	}
	plain, err = obj.Decrypt(c.PrivateKey)
	if err != nil {
		return nil, false, authFailure("payload does not decrypt with the merchant private key")
	}
	return plain, true, nil
}

// signature is what a verified signature says of a push: the time it
// covers, on the provider's clock, and HyperCard's nonce. Zero for a push
// that is not signed.
type signature struct {
	at    time.Time
	nonce string
}

// checkUPaySignature verifies X-UPA-SIGN over the raw body and, when the
// body was encrypted, over the decrypted JSON (UPay leaves open which it
// signs). The event name in the signed string comes from the push itself:
// the one field read before the signature is checked.
func (c *UPayConfig) checkUPaySignature(r *http.Request, raw, plain []byte, encrypted bool, now time.Time) (signature, error) {
	sig, ts := r.Header.Get(UPayHeaderSign), r.Header.Get(UPayHeaderTimestamp)
	if sig == "" {
		return signature{}, authFailure("%s missing", UPayHeaderSign)
	}
	ms, ok := parseDigits(ts)
	if !ok || len(ts) != 13 {
		return signature{}, authFailure("%s missing or not 13-digit milliseconds", UPayHeaderTimestamp)
	}
	signed := signature{at: time.UnixMilli(ms).UTC()}
	if err := checkFresh(UPayHeaderTimestamp, signed.at, now, c.SignatureTolerance); err != nil {
		return signature{}, err
	}
	given, err := hyperpay.DecodeSignature(sig)
	if err != nil {
		return signature{}, authFailure("%s is not Base64", UPayHeaderSign)
	}
	var ev struct {
		Event signedScalar `json:"event"` // as UPay signed it: not cleaned
	}
	if json.Unmarshal(plain, &ev) != nil || ev.Event == "" {
		return signature{}, authFailure("no event to verify %s with", UPayHeaderSign)
	}
	if hmac.Equal(given, upayMAC(c.SecretKey, string(ev.Event), ts, raw)) {
		return signed, nil
	}
	if encrypted && hmac.Equal(given, upayMAC(c.SecretKey, string(ev.Event), ts, plain)) {
		return signed, nil
	}
	return signature{}, authFailure("%s does not match", UPayHeaderSign)
}

// checkHyperCardSignature verifies the signature header with HyperCard's
// public key (hyperpay.Verify: SHA256withRSA over the sorted string of the
// signed headers and the body), with the timestamp header (seconds) within
// tolerance. It returns the signed timestamp and nonce.
func (c *HyperCardConfig) checkHyperCardSignature(r *http.Request, body []byte, now time.Time) (signature, error) {
	sig, ts := r.Header.Get(HyperCardHeaderSignature), r.Header.Get(HyperCardHeaderTimestamp)
	if sig == "" {
		return signature{}, authFailure("%s header missing", HyperCardHeaderSignature)
	}
	secs, ok := parseDigits(ts)
	if !ok {
		return signature{}, authFailure("%s header missing or not Unix seconds", HyperCardHeaderTimestamp)
	}
	signed := signature{at: time.Unix(secs, 0).UTC(), nonce: r.Header.Get(HyperCardHeaderNonce)}
	if err := checkFresh(HyperCardHeaderTimestamp, signed.at, now, c.SignatureTolerance); err != nil {
		return signature{}, err
	}
	names := hyperpay.SignedHeaders()
	headers := make(map[string]string, len(names))
	for _, h := range names {
		headers[h] = r.Header.Get(h)
	}
	switch err := hyperpay.Verify(c.PublicKey, headers, body, sig); {
	case err == nil:
		return signed, nil
	case errors.Is(err, hyperpay.ErrSignatureEncoding):
		return signature{}, authFailure("%s header is not Base64", HyperCardHeaderSignature)
	case errors.Is(err, hyperpay.ErrSignString):
		return signature{}, authFailure("cannot build the signed string: body is not a JSON object")
	default:
		return signature{}, authFailure("%s does not verify", HyperCardHeaderSignature)
	}
}
