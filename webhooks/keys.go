package webhooks

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseRSAPublicKey reads an RSA public key such as HyperCard's: PEM
// ("PUBLIC KEY", "RSA PUBLIC KEY" or a "CERTIFICATE"), or the bare Base64 DER
// that merchant platforms often display instead of a PEM file. Errors never
// quote the input.
func ParseRSAPublicKey(data []byte) (*rsa.PublicKey, error) {
	der, typ, err := keyDER(data)
	if err != nil {
		return nil, fmt.Errorf("rsa public key: %w", err)
	}
	var key any
	switch typ {
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(der)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(der); err == nil {
			key = cert.PublicKey
		}
	default: // "PUBLIC KEY" or bare DER: PKIX first, then PKCS#1
		if key, err = x509.ParsePKIXPublicKey(der); err != nil {
			if k, err1 := x509.ParsePKCS1PublicKey(der); err1 == nil {
				key, err = k, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rsa public key: %w", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("rsa public key: found a %T, not an RSA key", key)
	}
	return pub, nil
}

// ParseRSAPrivateKey reads an RSA private key such as the merchant key that
// decrypts UPay bodies: PEM ("PRIVATE KEY" PKCS#8 or "RSA PRIVATE KEY"
// PKCS#1) or bare Base64 DER. Encrypted PEM is not supported. Errors never
// quote the input.
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	der, typ, err := keyDER(data)
	if err != nil {
		return nil, fmt.Errorf("rsa private key: %w", err)
	}
	var key any
	switch typ {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	default: // "PRIVATE KEY" or bare DER: PKCS#8 first, then PKCS#1
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			if k, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
				key, err = k, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rsa private key: %w", err)
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("rsa private key: found a %T, not an RSA key", key)
	}
	return priv, nil
}

// keyDER returns the DER bytes of a PEM block (and its type) or of bare
// Base64 (with type "").
func keyDER(data []byte) ([]byte, string, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, "", errors.New("empty")
	}
	if bytes.HasPrefix(data, []byte("-----BEGIN")) {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, "", errors.New("unreadable PEM")
		}
		if _, encrypted := block.Headers["DEK-Info"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, "", errors.New("encrypted PEM is not supported")
		}
		return block.Bytes, block.Type, nil
	}
	compact := bytes.Join(bytes.Fields(data), nil)
	der := make([]byte, base64.StdEncoding.DecodedLen(len(compact)))
	n, err := base64.StdEncoding.Decode(der, compact)
	if err != nil {
		return nil, "", errors.New("neither PEM nor Base64 DER")
	}
	return der[:n], "", nil
}
