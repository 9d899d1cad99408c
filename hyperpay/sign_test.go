package hyperpay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"go/build"
	"strings"
	"sync"
	"testing"

	"github.com/otpbot/otpbot/hyperpay"
)

// keys caches generated keys by size: a 2048-bit key takes a noticeable
// fraction of a second, and the tests need a few of each. Distinct indexes
// are distinct keys.
var keys struct {
	sync.Mutex
	m map[[2]int]*rsa.PrivateKey
}

// rsaKey returns test key number i of the given size.
func rsaKey(t testing.TB, bits, i int) *rsa.PrivateKey {
	t.Helper()
	keys.Lock()
	defer keys.Unlock()
	if k := keys.m[[2]int{bits, i}]; k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	if keys.m == nil {
		keys.m = map[[2]int]*rsa.PrivateKey{}
	}
	keys.m[[2]int{bits, i}] = k
	return k
}

// requestHeaders are the signed headers of a typical API request.
func requestHeaders() map[string]string {
	return map[string]string{
		hyperpay.HeaderTimestamp: "1706650000",
		hyperpay.HeaderNonce:     "a1b2c3d4e5",
		hyperpay.HeaderAPIKey:    "ak_test_123",
		hyperpay.HeaderVersion:   "1.0",
	}
}

func TestSignStringOfADecision(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{
			name: "the documented auth request: numbers as written, ASCII order",
			body: `{"auth_id":283,"card_id":"15723682800000053333","auth_result":2}`,
			want: "api-key=ak_test_123&auth_id=283&auth_result=2&card_id=15723682800000053333" +
				"&nonce=a1b2c3d4e5&timestamp=1706650000&version=1.0",
		},
		{
			name: "a signature field and empty values are not signed",
			body: `{"auth_id":"a-1","card_id":"","signature":"forged"}`,
			want: "api-key=ak_test_123&auth_id=a-1&nonce=a1b2c3d4e5&timestamp=1706650000&version=1.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hyperpay.SignString(requestHeaders(), []byte(tt.body))
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	body := []byte(`{"auth_id":283,"card_id":"15723682800000053333","auth_result":2}`)
	for _, bits := range []int{1024, 2048} {
		t.Run(fmt.Sprintf("RSA-%d", bits), func(t *testing.T) {
			key, other := rsaKey(t, bits, 0), rsaKey(t, bits, 1)
			sig, err := hyperpay.Sign(key, requestHeaders(), body)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(sig)
			if err != nil || len(raw) != bits/8 {
				t.Fatalf("signature is not standard Base64 of %d bytes: %d bytes, %v", bits/8, len(raw), err)
			}
			changed := func(k, v string) map[string]string {
				h := requestHeaders()
				h[k] = v
				return h
			}
			tests := []struct {
				name    string
				pub     *rsa.PublicKey
				headers map[string]string
				body    string
				sig     string
				want    error
			}{
				{"as signed", &key.PublicKey, requestHeaders(), string(body), sig, nil},
				{"same fields in another order and layout", &key.PublicKey, requestHeaders(),
					`{ "auth_result": 2, "card_id": "15723682800000053333", "auth_id": 283 }`, sig, nil},
				{"URL alphabet without padding", &key.PublicKey, requestHeaders(), string(body),
					base64.RawURLEncoding.EncodeToString(raw), nil},
				{"another key's public half", &other.PublicKey, requestHeaders(), string(body), sig, hyperpay.ErrSignature},
				{"approve turned into decline", &key.PublicKey, requestHeaders(),
					strings.Replace(string(body), `"auth_result":2`, `"auth_result":3`, 1), sig, hyperpay.ErrSignature},
				{"number rendered differently", &key.PublicKey, requestHeaders(),
					strings.Replace(string(body), `283`, `283.0`, 1), sig, hyperpay.ErrSignature},
				{"other nonce", &key.PublicKey, changed(hyperpay.HeaderNonce, "zzzzzzzzzz"), string(body), sig, hyperpay.ErrSignature},
				{"other api key", &key.PublicKey, changed(hyperpay.HeaderAPIKey, "ak_other"), string(body), sig, hyperpay.ErrSignature},
				{"other version", &key.PublicKey, changed(hyperpay.HeaderVersion, "2.0"), string(body), sig, hyperpay.ErrSignature},
				{"signature not Base64", &key.PublicKey, requestHeaders(), string(body), "%%%", hyperpay.ErrSignatureEncoding},
				{"body not an object", &key.PublicKey, requestHeaders(), `[283]`, sig, hyperpay.ErrSignString},
				{"no public key", nil, requestHeaders(), string(body), sig, hyperpay.ErrSignature},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := hyperpay.Verify(tt.pub, tt.headers, []byte(tt.body), tt.sig)
					if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
						t.Fatalf("Verify = %v, want %v", err, tt.want)
					}
					if err != nil && strings.Contains(err.Error(), sig[:16]) {
						t.Errorf("error quotes the signature: %v", err)
					}
				})
			}
		})
	}
}

func TestSignRefusesWhatCannotBeSigned(t *testing.T) {
	if _, err := hyperpay.Sign(nil, requestHeaders(), []byte(`{}`)); err == nil {
		t.Error("Sign without a key: no error")
	}
	if _, err := hyperpay.Sign(rsaKey(t, 1024, 0), requestHeaders(), []byte(`"283"`)); err == nil {
		t.Error("Sign of a body that is not an object: no error")
	}
}

// TestImportsOnlyStandardLibrary keeps the layering of docs/architecture.md: webhooks
// (which may import only otpbot) imports hyperpay, so hyperpay must not pull
// in anything else of ours or any third-party module.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	pkg, err := build.Import("github.com/otpbot/otpbot/hyperpay", ".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("found no imports: the package was not read")
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/otpbot/otpbot" {
			t.Errorf("hyperpay imports %s", imp)
		}
	}
}
