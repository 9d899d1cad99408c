package hptest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"testing"

	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/hyperpay/hptest"
)

// TestStart: the fake started outside a test answers a signed decision
// like New's, and is gone once closed.
func TestStart(t *testing.T) {
	if _, err := hptest.Start(nil); err == nil {
		t.Fatal("Start(nil) succeeded; want an error")
	}
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := hptest.Start(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	status, code := post(t, fake, key, hyperpay.DecidePath, "n1", `{"auth_id":7,"card_id":"C1","auth_result":2}`)
	if status != http.StatusOK || code != hyperpay.SuccessCode {
		t.Fatalf("decision answered %d %s; want 200 %s", status, code, hyperpay.SuccessCode)
	}
	if r, ok := fake.AuthResult("7"); !ok || r != 2 {
		t.Errorf("auth 7 is %d (known %v); want 2", r, ok)
	}
	fake.Close()
	fake.Close() // idempotent
	if resp, err := http.Post(fake.URL()+hyperpay.DecidePath, "application/json", nil); err == nil {
		resp.Body.Close()
		t.Error("the fake still answers after Close")
	}
}
