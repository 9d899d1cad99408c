package webhooks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseRSAKeys(t *testing.T) {
	key := rsaKey(t, 1024)
	pkcs1 := x509.MarshalPKCS1PrivateKey(key)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	certDER := selfSigned(t, key)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	b64 := func(der []byte) []byte {
		// wrapped at 64 columns, as platforms display it
		s := base64.StdEncoding.EncodeToString(der)
		var lines []string
		for len(s) > 64 {
			lines, s = append(lines, s[:64]), s[64:]
		}
		return []byte(strings.Join(append(lines, s), "\n"))
	}

	for name, in := range map[string][]byte{
		"PKCS#1 PEM": pemOf("RSA PRIVATE KEY", pkcs1), "PKCS#8 PEM": pemOf("PRIVATE KEY", pkcs8),
		"bare PKCS#8": b64(pkcs8), "bare PKCS#1": b64(pkcs1),
	} {
		got, err := ParseRSAPrivateKey(in)
		if err != nil || !got.Equal(key) {
			t.Errorf("private %s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"PKIX PEM": pemOf("PUBLIC KEY", pkixDER), "PKCS#1 PEM": pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&key.PublicKey)),
		"certificate": pemOf("CERTIFICATE", certDER), "bare PKIX": b64(pkixDER),
		"bare PKCS#1": b64(x509.MarshalPKCS1PublicKey(&key.PublicKey)),
	} {
		got, err := ParseRSAPublicKey(in)
		if err != nil || !got.Equal(&key.PublicKey) {
			t.Errorf("public %s: %v", name, err)
		}
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	bad := map[string][]byte{
		"empty": nil, "garbage": []byte("not a key at all!"), "EC public": pemOf("PUBLIC KEY", ecPub),
		"EC private": pemOf("PRIVATE KEY", ecPriv), "truncated PEM": []byte("-----BEGIN PUBLIC KEY-----\nAAAA"),
		"encrypted": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: pkcs1}),
	}
	for name, in := range bad {
		if _, err := ParseRSAPublicKey(in); err == nil {
			t.Errorf("public %s accepted", name)
		}
		if _, err := ParseRSAPrivateKey(in); err == nil {
			t.Errorf("private %s accepted", name)
		}
	}
	// A private key file given where the public key belongs is refused
	// without quoting it.
	_, err = ParseRSAPublicKey(pemOf("RSA PRIVATE KEY", pkcs1))
	if err == nil || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(pkcs1)[:20]) {
		t.Errorf("private key as public: %v", err)
	}
}

func selfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hypercard"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
