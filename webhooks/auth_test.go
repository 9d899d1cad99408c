package webhooks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/otpbot/otpbot"
)

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("generate %d-bit key: %v", bits, err)
	}
	return k
}

func randomSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// flip changes one byte of s (at i; negative counts from the end) to another
// character of the same class, so the result is still well-formed.
func flip(s string, i int) string {
	if i < 0 {
		i += len(s)
	}
	b := []byte(s)
	switch c := b[i]; {
	case c == '9':
		b[i] = '8'
	case c >= '0' && c <= '8':
		b[i] = c + 1
	case c == 'A':
		b[i] = 'B'
	default:
		b[i] = 'A'
	}
	return string(b)
}

// withHeader returns a func that copies valid with header k set to v, or
// removed when v is empty: one broken header per case.
func withHeader(valid map[string]string) func(k, v string) map[string]string {
	return func(k, v string) map[string]string {
		h := make(map[string]string, len(valid))
		for hk, hv := range valid {
			h[hk] = hv
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
}

// checkSigned checks a signed push's answer: the status; an accepted push
// reached the store once as the event sent (is, described by what); a
// refused one did not reach it; and the log never shows the signature sig.
func checkSigned(t *testing.T, e *env, got response, want int, sig, what string, is func(otpbot.Event) bool) {
	t.Helper()
	if got.status != want {
		t.Fatalf("status = %d, want %d (%q)", got.status, want, got.body)
	}
	evs := e.ing.ingested()
	if want == 200 && (len(evs) != 1 || !is(evs[0])) {
		t.Errorf("store got %+v, want %s", evs, what)
	}
	if want != 200 && len(evs) != 0 {
		t.Errorf("a refused push reached the store: %+v", evs)
	}
	if logs := e.logs.String(); sig != "" && strings.Contains(logs, sig) {
		t.Errorf("log shows the signature: %s", logs)
	}
}

// upayHeaders signs a UPay push sent at sentAt.
func upayHeaders(secret []byte, event string, sentAt time.Time, body []byte) map[string]string {
	ts := strconv.FormatInt(sentAt.UnixMilli(), 10)
	return map[string]string{
		UPayHeaderTimestamp: ts,
		UPayHeaderSign:      SignUPay(secret, event, ts, body),
		UPayHeaderRequestID: "req-1",
	}
}

func TestSignUPayKnownAnswer(t *testing.T) {
	// Computed independently: printf 'CC_CONSUME|1755248905430|{}' |
	// openssl dgst -sha256 -hmac secret -binary | base64
	got := SignUPay([]byte("secret"), "CC_CONSUME", "1755248905430", []byte("{}"))
	if want := "ZX/ufhS9/9Axv1JZfk+HD3d3EET9k3DXYUmNRBUdAN0="; got != want {
		t.Errorf("SignUPay = %s, want %s", got, want)
	}
}

func TestUPaySignature(t *testing.T) {
	secret := randomSecret(t)
	body := mustRead("upay", "3ds_otp.json")
	valid := upayHeaders(secret, "3DS_OTP", now, body)
	with := withHeader(valid)
	tests := []struct {
		name   string
		token  string // also configure a token; the request then carries path
		path   string
		body   []byte
		header map[string]string
		want   int
	}{
		{name: "valid", body: body, header: valid, want: 200},
		{name: "retry within tolerance", body: body, header: upayHeaders(secret, "3DS_OTP", now.Add(-4*time.Minute), body), want: 200},
		{name: "flipped byte in body", body: []byte(strings.Replace(string(body), "004711", "004712", 1)), header: valid, want: 401},
		{name: "flipped byte in timestamp header", body: body, header: with(UPayHeaderTimestamp, flip(valid[UPayHeaderTimestamp], -1)), want: 401},
		{name: "flipped byte in signature", body: body, header: with(UPayHeaderSign, flip(valid[UPayHeaderSign], 3)), want: 401},
		{name: "stale timestamp", body: body, header: upayHeaders(secret, "3DS_OTP", now.Add(-6*time.Minute), body), want: 401},
		{name: "timestamp in the future", body: body, header: upayHeaders(secret, "3DS_OTP", now.Add(6*time.Minute), body), want: 401},
		{name: "timestamp in seconds", body: body, header: with(UPayHeaderTimestamp, strconv.FormatInt(now.Unix(), 10)), want: 401},
		{name: "signed for another event", body: body, header: upayHeaders(secret, "CC_CONSUME", now, body), want: 401},
		{name: "signed with another secret", body: body, header: upayHeaders([]byte("other"), "3DS_OTP", now, body), want: 401},
		{name: "no signature", body: body, header: with(UPayHeaderSign, ""), want: 401},
		{name: "no timestamp", body: body, header: with(UPayHeaderTimestamp, ""), want: 401},
		{name: "not JSON, so no event to verify with", body: []byte("event=3DS_OTP"), header: upayHeaders(secret, "3DS_OTP", now, []byte("event=3DS_OTP")), want: 401},
		{name: "token and signature: both valid", token: testToken, path: "?token=" + testToken, body: body, header: valid, want: 200},
		{name: "token and signature: token missing", token: testToken, body: body, header: valid, want: 401},
		{name: "token and signature: signature missing", token: testToken, path: "?token=" + testToken, body: body, header: with(UPayHeaderSign, ""), want: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, SecretKey: secret, Token: tt.token}})
			got := e.post(t, DefaultUPayPath+tt.path, tt.body, tt.header)
			checkSigned(t, e, got, tt.want, tt.header[UPayHeaderSign], "the code",
				func(ev otpbot.Event) bool { return ev.Code == "004711" })
		})
	}
}

// encryptWith wraps body in {"payload": JWE} with the given algorithms.
func encryptWith(t *testing.T, pub *rsa.PublicKey, alg jose.KeyAlgorithm, enc jose.ContentEncryption, body []byte) []byte {
	t.Helper()
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: pub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(body)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]string{"payload": s})
	return out
}

func TestUPayEncrypted(t *testing.T) {
	plain := mustRead("upay", "3ds_otp.json")
	for _, bits := range []int{1024, 2048} {
		t.Run(fmt.Sprintf("RSA-%d", bits), func(t *testing.T) {
			key, other := rsaKey(t, bits), rsaKey(t, bits)
			secret := randomSecret(t)
			sealed, err := EncryptUPay(&key.PublicKey, plain)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(sealed), "004711") || !strings.HasPrefix(string(sealed), `{"payload":"`) {
				t.Fatalf("EncryptUPay output is not a sealed wrapper: %s", sealed)
			}
			var wrapper struct{ Payload string }
			if err := json.Unmarshal(sealed, &wrapper); err != nil {
				t.Fatal(err)
			}
			tampered, _ := json.Marshal(map[string]string{"payload": flip(wrapper.Payload, -5)})
			forOther, err := EncryptUPay(&other.PublicKey, plain)
			if err != nil {
				t.Fatal(err)
			}
			sign := func(b []byte) map[string]string { return upayHeaders(secret, "3DS_OTP", now, b) }
			tests := []struct {
				name    string
				require bool
				body    []byte
				header  map[string]string
				want    int
			}{
				{name: "signed over the encrypted body", body: sealed, header: sign(sealed), want: 200},
				{name: "signed over the decrypted JSON", body: sealed, header: sign(plain), want: 200},
				{name: "plain JSON still accepted", body: plain, header: sign(plain), want: 200},
				{name: "plain JSON refused when encryption is required", require: true, body: plain, header: sign(plain), want: 401},
				{name: "encrypted, encryption required", require: true, body: sealed, header: sign(sealed), want: 200},
				{name: "flipped byte in the JWE", body: tampered, header: sign(tampered), want: 401},
				{name: "encrypted for another key", body: forOther, header: sign(forOther), want: 401},
				{name: "signature over neither", body: sealed, header: sign([]byte(`{"event":"3DS_OTP"}`)), want: 401},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, SecretKey: secret, PrivateKey: key, RequireEncryption: tt.require}})
					got := e.post(t, DefaultUPayPath, tt.body, tt.header)
					if got.status != tt.want {
						t.Fatalf("status = %d, want %d (%q)", got.status, tt.want, got.body)
					}
					evs := e.ing.ingested()
					if tt.want == 200 && (len(evs) != 1 || evs[0].Code != "004711" || evs[0].ID != "upay:PN7") {
						t.Errorf("store got %+v, want the decrypted push", evs)
					}
				})
			}
		})
	}
}

func TestUPayJWEAlgorithms(t *testing.T) {
	key := rsaKey(t, 2048)
	plain := mustRead("upay", "3ds_otp.json")
	e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, Token: testToken, PrivateKey: key}})
	keyAlgs, encs := upayJWEAlgorithms()
	for _, alg := range keyAlgs {
		for _, enc := range encs {
			t.Run(string(alg)+"+"+string(enc), func(t *testing.T) {
				got := e.post(t, withToken(DefaultUPayPath, testToken), encryptWith(t, &key.PublicKey, alg, enc, plain), nil)
				if !isUPayAck(got) {
					t.Errorf("refused: %d %q", got.status, got.body)
				}
			})
		}
	}
	// RSA1_5 is open to padding oracles: refused even with a valid token.
	got := e.post(t, withToken(DefaultUPayPath, testToken), encryptWith(t, &key.PublicKey, jose.RSA1_5, jose.A128GCM, plain), nil)
	if got.status != 401 {
		t.Errorf("RSA1_5: status %d, want 401", got.status)
	}
}

// hyperCardHeaders signs a HyperCard push sent at sentAt.
func hyperCardHeaders(t *testing.T, key *rsa.PrivateKey, sentAt time.Time, body []byte) map[string]string {
	t.Helper()
	h := map[string]string{
		HyperCardHeaderTimestamp: strconv.FormatInt(sentAt.Unix(), 10),
		HyperCardHeaderNonce:     "a1b2c3d4e5",
		HyperCardHeaderAPIKey:    "ak_test_123",
		HyperCardHeaderVersion:   "1.0",
	}
	sig, err := SignHyperCard(key, h, body)
	if err != nil {
		t.Fatal(err)
	}
	h[HyperCardHeaderSignature] = sig
	return h
}

func TestHyperCardSignature(t *testing.T) {
	body := mustRead("hypercard", "auth_3ds.json")
	for _, bits := range []int{1024, 2048} {
		t.Run(fmt.Sprintf("RSA-%d", bits), func(t *testing.T) {
			key, other := rsaKey(t, bits), rsaKey(t, bits)
			valid := hyperCardHeaders(t, key, now, body)
			with := withHeader(valid)
			tests := []struct {
				name   string
				body   []byte
				header map[string]string
				want   int
			}{
				{"valid", body, valid, 200},
				{"the original request resent 24h later", body, hyperCardHeaders(t, key, now.Add(-24*time.Hour), body), 200},
				{"same fields, other layout", []byte(strings.ReplaceAll(string(body), "\n", " ")), valid, 200},
				{"flipped byte in body", []byte(strings.Replace(string(body), `"1.00"`, `"1.01"`, 1)), valid, 401},
				{"flipped byte in nonce header", body, with(HyperCardHeaderNonce, flip(valid[HyperCardHeaderNonce], 0)), 401},
				{"flipped byte in api-key header", body, with(HyperCardHeaderAPIKey, flip(valid[HyperCardHeaderAPIKey], -1)), 401},
				{"flipped byte in timestamp header", body, with(HyperCardHeaderTimestamp, flip(valid[HyperCardHeaderTimestamp], -1)), 401},
				{"flipped byte in signature", body, with(HyperCardHeaderSignature, flip(valid[HyperCardHeaderSignature], 5)), 401},
				{"stale timestamp", body, hyperCardHeaders(t, key, now.Add(-26*time.Hour), body), 401},
				{"timestamp in the future", body, hyperCardHeaders(t, key, now.Add(26*time.Hour), body), 401},
				{"signed by another key", body, hyperCardHeaders(t, other, now, body), 401},
				{"no signature", body, with(HyperCardHeaderSignature, ""), 401},
				{"no timestamp", body, with(HyperCardHeaderTimestamp, ""), 401},
				{"signature not Base64", body, with(HyperCardHeaderSignature, "%%%"), 401},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}})
					got := e.post(t, DefaultHyperCardPath, tt.body, tt.header)
					checkSigned(t, e, got, tt.want, tt.header[HyperCardHeaderSignature], "the AUTH_3DS request",
						func(ev otpbot.Event) bool { return ev.AuthID == "283" })
				})
			}
		})
	}
}

func TestHyperCardSignString(t *testing.T) {
	headers := map[string]string{"timestamp": "1706650000", "nonce": "a1b2c3d4e5", "Api-Key": "ak", "version": "1.0"}
	tests := []struct {
		name    string
		headers map[string]string
		body    string
		want    string
		wantErr bool
	}{
		{
			name:    "the document's AUTH_3DS example: ASCII order, numbers as written",
			headers: headers,
			body:    string(mustRead("hypercard", "auth_3ds.json")),
			want: "api-key=ak&app3ds_auth_transaction_id=aa61a6ca-a455-4740-9c56-ae83e4dd3798&app_card_id=crd_y37fq5widtmubgavtthyoqpwia" +
				"&auth_id=283&auth_result=2&card_acceptor_location_country=1&card_acceptor_merchant_name=Amazon" +
				"&card_id=15723682800000053333&card_no=103411******3333&created_Time=1699865734&expired_time=1706650873" +
				"&nonce=a1b2c3d4e5&notify_type=AUTH_3DS&timestamp=1706650000&txn_amount=1.00&txn_currency=EUR" +
				"&updated_Time=1699865734&version=1.0",
		},
		{
			name: "empty values, null and signature are left out",
			body: `{"b":"","a":null,"signature":"xyz","c":"1","remark":""}`,
			want: "c=1",
		},
		{
			name: "numbers keep their literal; strings are unescaped",
			body: `{"amount":1.50,"big":12345678901234567890,"exp":1e3,"s":"caf\u00e9","neg":-0.0}`,
			want: "amount=1.50&big=12345678901234567890&exp=1e3&neg=-0.0&s=café",
		},
		{
			name:    "a header wins over a body field of the same name",
			headers: map[string]string{"timestamp": "100"},
			body:    `{"timestamp":"999","x":true}`,
			want:    "timestamp=100&x=true",
		},
		{
			name: "nested values as compact JSON",
			body: `{"n":{ "b" : 1 , "a":[1, 2] }}`,
			want: `n={"b":1,"a":[1,2]}`,
		},
		{name: "empty body: headers only", headers: map[string]string{"nonce": "n", "signature": "s"}, body: "", want: "nonce=n"},
		{name: "not an object", body: `[1,2]`, wantErr: true},
		{name: "not JSON", body: `a=1&b=2`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HyperCardSignString(tt.headers, []byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	body := mustRead("hypercard", "opt_code.json")
	tests := []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"query", "?token=" + testToken, nil, 200},
		{"bearer", "", map[string]string{"Authorization": "Bearer " + testToken}, 200},
		{"bearer, any case", "", map[string]string{"Authorization": "bearer " + testToken}, 200},
		{"basic is not bearer", "", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+testToken))}, 401},
		{"prefix of the token", "?token=" + testToken[:5], nil, 401},
		{"token with a suffix", "?token=" + testToken + "x", nil, 401},
		{"empty", "?token=", nil, 401},
		{"none", "", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, Token: testToken}})
			got := e.post(t, DefaultHyperCardPath+tt.path, body, tt.header)
			if got.status != tt.want {
				t.Errorf("status = %d, want %d", got.status, tt.want)
			}
		})
	}
}

func prefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

func TestAllowIPs(t *testing.T) {
	// The test server's peer is always 127.0.0.1.
	body := mustRead("upay", "3ds_otp.json")
	tests := []struct {
		name    string
		allow   []string
		trusted []string
		header  map[string]string
		want    int
	}{
		{"peer allowed", []string{"127.0.0.0/8"}, nil, nil, 200},
		{"peer not allowed", []string{"10.0.0.0/8"}, nil, nil, 401},
		{"empty list allows any", nil, nil, nil, 200},
		{"forwarded header of an untrusted peer is ignored", []string{"10.0.0.0/8"}, nil,
			map[string]string{"X-Forwarded-For": "10.1.2.3"}, 401},
		{"client behind a trusted proxy", []string{"10.0.0.0/8"}, []string{"127.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "10.1.2.3"}, 200},
		{"trusted proxy, client not allowed", []string{"10.0.0.0/8"}, []string{"127.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "10.1.2.3, 192.0.2.1"}, 401},
		{"spoofed left-most hop is ignored", []string{"10.0.0.0/8"}, []string{"127.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "192.0.2.1, 10.1.2.3"}, 200},
		{"a chain of trusted proxies", []string{"10.1.0.0/16"}, []string{"127.0.0.0/8", "10.9.0.0/16"},
			map[string]string{"X-Forwarded-For": "10.1.2.3, 10.9.0.5"}, 200},
		{"X-Real-IP from a trusted proxy", []string{"10.0.0.0/8"}, []string{"127.0.0.0/8"},
			map[string]string{"X-Real-IP": "10.1.2.3"}, 200},
		{"unreadable hop", []string{"10.0.0.0/8"}, []string{"127.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "10.1.2.3, unknown"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{
				TrustedProxies: prefixes(t, tt.trusted...),
				UPay:           UPayConfig{Enabled: true, Token: testToken, AllowIPs: prefixes(t, tt.allow...)},
			})
			got := e.post(t, withToken(DefaultUPayPath, testToken), body, tt.header)
			if got.status != tt.want {
				t.Errorf("status = %d, want %d (%q)", got.status, tt.want, got.body)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	trusted := prefixes(t, "10.0.0.0/8", "fd00::/8")
	tests := []struct {
		remote string
		xff    []string
		real   string
		want   string
	}{
		{"192.0.2.1:1234", nil, "", "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, "", "192.0.2.1"},
		{"10.0.0.1:1234", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"10.0.0.1:1234", []string{"203.0.113.9, 198.51.100.7, 10.0.0.2"}, "", "198.51.100.7"},
		{"10.0.0.1:1234", []string{"203.0.113.9", "198.51.100.7"}, "", "198.51.100.7"}, // two header lines
		{"10.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, "", "10.0.0.3"},              // all trusted: the left-most
		{"10.0.0.1:1234", nil, "198.51.100.7", "198.51.100.7"},
		{"10.0.0.1:1234", nil, "", "10.0.0.1"},
		{"[fd00::1]:443", []string{"[2001:db8::5]:555"}, "", "2001:db8::5"},
		{"[::ffff:10.0.0.1]:80", []string{"198.51.100.7:4711"}, "", "198.51.100.7"}, // IPv4-mapped peer
		{"10.0.0.1:1234", []string{"bogus"}, "", "invalid IP"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if tt.real != "" {
			r.Header.Set("X-Real-IP", tt.real)
		}
		if got := clientAddr(r, trusted).String(); got != tt.want {
			t.Errorf("clientAddr(%s, %v, %q) = %s, want %s", tt.remote, tt.xff, tt.real, got, tt.want)
		}
	}
}

func TestReplayIsOnlyARepeat(t *testing.T) {
	// A captured, validly signed push replayed within the tolerance reaches
	// the store with the same identity, so the store can only count it as a
	// repeat: acknowledged, never a second message.
	key := rsaKey(t, 1024)
	body := mustRead("hypercard", "opt_code.json")
	e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}})
	h := hyperCardHeaders(t, key, now, body)
	for i := 0; i < 3; i++ {
		if got := e.post(t, DefaultHyperCardPath, body, h); !isHyperCardAck(got) {
			t.Fatalf("push %d: %d %q", i, got.status, got.body)
		}
	}
	evs := e.ing.ingested()
	if len(evs) != 3 || evs[0].ID != evs[1].ID || evs[1].ID != evs[2].ID {
		t.Fatalf("replays got different identities: %+v", evs)
	}
	if n := e.pushes(t, "hypercard", "OPT_CODE", "duplicate"); n != 2 {
		t.Errorf("duplicates counted %v, want 2", n)
	}
	if evs[0].Kind != otpbot.KindCode {
		t.Errorf("kind %s", evs[0].Kind)
	}
}
