package hptest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/hyperpay/hptest"
)

// post sends body to path of fake, signed by key with nonce (no signature
// when key is nil), and returns the status and the answer's code.
func post(t *testing.T, fake *hptest.Server, key *rsa.PrivateKey, path, nonce, body string) (int, string) {
	t.Helper()
	status, code, err := send(fake, key, path, nonce, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, code
}

// send is post for goroutines other than the test's: it returns its error.
func send(fake *hptest.Server, key *rsa.PrivateKey, path, nonce, body string) (int, string, error) {
	h := map[string]string{
		hyperpay.HeaderTimestamp: "1755248400",
		hyperpay.HeaderNonce:     nonce,
		hyperpay.HeaderAPIKey:    "ak",
		hyperpay.HeaderVersion:   "1.0",
	}
	req, err := http.NewRequest(http.MethodPost, fake.URL()+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, "", err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if key != nil {
		sig, err := hyperpay.Sign(key, h, []byte(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set(hyperpay.HeaderSignature, sig)
	}
	resp, err := fake.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return 0, "", fmt.Errorf("answer is not JSON: %w", err)
	}
	return resp.StatusCode, ans.Code, nil
}

func TestFake(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	const approve = `{"auth_id":283,"card_id":"c1","auth_result":2}`
	type step struct {
		key        *rsa.PrivateKey
		path       string
		nonce      string
		body       string
		wantStatus int
		wantCode   string
	}
	tests := []struct {
		name       string
		setup      func(*hptest.Server)
		steps      []step
		wantResult int // the fake's auth_result of 283 at the end; 0 = unknown
	}{
		{"a signed decision is applied", nil, []step{
			{key, hyperpay.DecidePath, "n1", approve, 200, hyperpay.SuccessCode},
			{key, hyperpay.StatusPath, "n2", `{"auth_id":283,"card_id":"c1"}`, 200, hyperpay.SuccessCode},
		}, 2},
		{"no signature", nil, []step{{nil, hyperpay.DecidePath, "n1", approve, 401, hptest.CodeBadSignature}}, 0},
		{"another key", nil, []step{{other, hyperpay.DecidePath, "n1", approve, 401, hptest.CodeBadSignature}}, 0},
		{"a reused nonce", nil, []step{
			{key, hyperpay.StatusPath, "n1", `{"auth_id":283,"card_id":"c1"}`, 200, hptest.CodeNotFound},
			{key, hyperpay.DecidePath, "n1", approve, 401, hptest.CodeNonceReused},
		}, 0},
		{"auth_result outside 2 and 3", nil, []step{
			{key, hyperpay.DecidePath, "n1", `{"auth_id":283,"card_id":"c1","auth_result":1}`, 200, hptest.CodeBadParams},
		}, 0},
		{"auth_result as a string", nil, []step{
			{key, hyperpay.DecidePath, "n1", `{"auth_id":283,"card_id":"c1","auth_result":"2"}`, 200, hptest.CodeBadParams},
		}, 0},
		{"two injected failures, then success", func(f *hptest.Server) { f.FailNext(2, 503) }, []step{
			{key, hyperpay.DecidePath, "n1", approve, 503, hptest.CodeInjected},
			{key, hyperpay.DecidePath, "n2", approve, 503, hptest.CodeInjected},
			{key, hyperpay.DecidePath, "n3", approve, 200, hyperpay.SuccessCode},
		}, 2},
		{"an injected refusal leaves the state", func(f *hptest.Server) { f.SetAuth("283", "c1", 1); f.FailNextCode(1, "30001", "expired") }, []step{
			{key, hyperpay.DecidePath, "n1", approve, 200, "30001"},
		}, 1},
		{"a decision for another card", func(f *hptest.Server) { f.SetAuth("283", "c2", 1) }, []step{
			{key, hyperpay.DecidePath, "n1", approve, 200, hptest.CodeCardMismatch},
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := hptest.New(t, &key.PublicKey)
			if tt.setup != nil {
				tt.setup(fake)
			}
			for i, s := range tt.steps {
				status, code := post(t, fake, s.key, s.path, s.nonce, s.body)
				if status != s.wantStatus || code != s.wantCode {
					t.Fatalf("step %d: answered %d %q, want %d %q", i, status, code, s.wantStatus, s.wantCode)
				}
			}
			calls := fake.Calls()
			if len(calls) != len(tt.steps) {
				t.Fatalf("recorded %d calls, want %d", len(calls), len(tt.steps))
			}
			for i, c := range calls {
				if c.Verified != (tt.steps[i].key == key) || c.HTTPStatus != tt.steps[i].wantStatus || c.Code != tt.steps[i].wantCode {
					t.Errorf("call %d recorded as verified=%v %d %q", i, c.Verified, c.HTTPStatus, c.Code)
				}
				if c.AuthID != "283" || !c.AuthIDNumber || c.Path != tt.steps[i].path {
					t.Errorf("call %d recorded auth_id %q (number %v) on %s", i, c.AuthID, c.AuthIDNumber, c.Path)
				}
			}
			r, known := fake.AuthResult("283")
			if r != tt.wantResult || known != (tt.wantResult != 0) {
				t.Errorf("auth_result = %d (known %v), want %d", r, known, tt.wantResult)
			}
		})
	}
}

func TestHold(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	fake := hptest.New(t, &key.PublicKey)
	release := fake.Hold()
	done := make(chan error, 1)
	go func() {
		status, _, err := send(fake, key, hyperpay.DecidePath, "n1", `{"auth_id":283,"card_id":"c1","auth_result":3}`)
		if err == nil && status != 200 {
			err = fmt.Errorf("status %d after release", status)
		}
		done <- err
	}()
	waitFor(t, func() bool { return fake.Waiting() == 1 })
	if _, known := fake.AuthResult("283"); known {
		t.Fatal("a held decision was applied before release")
	}
	release()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r, _ := fake.AuthResult("283"); r != 3 || fake.Waiting() != 0 {
		t.Errorf("auth_result %d, waiting %d after release", r, fake.Waiting())
	}
}

// waitFor polls cond every 5ms for up to 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
