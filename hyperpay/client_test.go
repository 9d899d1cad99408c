package hyperpay_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/hyperpay/hptest"
)

const (
	testAPIKey = "ak_live_secret_0123"
	testCard   = "15723682800000053333"
)

// sentAt is the client's clock in these tests.
var sentAt = time.Date(2025, 8, 15, 9, 0, 0, 0, time.UTC)

// newClient returns a client of baseURL signing with key, with a fixed clock
// and counting nonces, and the log it writes (slog's handler serialises
// writes; read it once the calls have returned). edit adjusts the config.
func newClient(t *testing.T, baseURL string, key *rsa.PrivateKey, edit func(*hyperpay.ClientConfig)) (*hyperpay.Client, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	n := 0
	cfg := hyperpay.ClientConfig{
		BaseURL:    baseURL,
		APIKey:     testAPIKey,
		PrivateKey: key,
		Now:        func() time.Time { return sentAt },
		Nonce: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("nonce%05d", n)
		},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := hyperpay.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

// apiError unwraps err into an *APIError or fails the test.
func apiError(t *testing.T, err error) *hyperpay.APIError {
	t.Helper()
	var e *hyperpay.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return e
}

// assertNoSecrets checks that text shows neither the api key, nor any
// signature sent to fake, nor the full card id.
func assertNoSecrets(t *testing.T, what, text string, fake *hptest.Server) {
	t.Helper()
	if strings.Contains(text, testAPIKey) {
		t.Errorf("%s shows the api key: %s", what, text)
	}
	if strings.Contains(text, testCard) {
		t.Errorf("%s shows the full card id: %s", what, text)
	}
	for _, c := range fake.Calls() {
		if sig := c.Header.Get(hyperpay.HeaderSignature); sig != "" && strings.Contains(text, sig[:12]) {
			t.Errorf("%s shows a signature: %s", what, text)
		}
	}
}

func TestDecideSendsOneSignedCall(t *testing.T) {
	for _, bits := range []int{1024, 2048} {
		key := rsaKey(t, bits, 0)
		tests := []struct {
			name, authID string
			result       int
			wantBody     string
			wantNumber   bool
		}{
			{"numeric auth_id as a JSON number", "283", 2, `{"auth_id":283,"card_id":"` + testCard + `","auth_result":2}`, true},
			{"the other value", "284", 3, `{"auth_id":284,"card_id":"` + testCard + `","auth_result":3}`, true},
			{"a non-numeric auth_id stays a string", "a-17", 2, `{"auth_id":"a-17","card_id":"` + testCard + `","auth_result":2}`, false},
			{"a leading zero would be lost as a number", "0283", 3, `{"auth_id":"0283","card_id":"` + testCard + `","auth_result":3}`, false},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("RSA-%d/%s", bits, tt.name), func(t *testing.T) {
				fake := hptest.New(t, &key.PublicKey)
				fake.WantAPIKey(testAPIKey)
				c, logs := newClient(t, fake.URL()+"/", key, func(cfg *hyperpay.ClientConfig) { cfg.Version = "2.1" })
				if err := c.Decide(context.Background(), tt.authID, testCard, tt.result); err != nil {
					t.Fatalf("Decide: %v", err)
				}
				calls := fake.Decisions()
				if len(calls) != 1 || len(fake.Calls()) != 1 {
					t.Fatalf("fake got %d decisions, %d calls; want exactly 1", len(calls), len(fake.Calls()))
				}
				got := calls[0]
				if !got.Verified || got.HTTPStatus != 200 || got.Code != hyperpay.SuccessCode {
					t.Errorf("call verified=%v answered %d %q; want a verified call answered 200 00000", got.Verified, got.HTTPStatus, got.Code)
				}
				if string(got.Body) != tt.wantBody || got.AuthIDNumber != tt.wantNumber {
					t.Errorf("body %s (auth_id number: %v), want %s (%v)", got.Body, got.AuthIDNumber, tt.wantBody, tt.wantNumber)
				}
				if got.AuthID != tt.authID || got.CardID != testCard || got.AuthResult != tt.result {
					t.Errorf("recorded %q %q %d", got.AuthID, got.CardID, got.AuthResult)
				}
				wantHeaders := map[string]string{
					hyperpay.HeaderTimestamp: "1755248400",
					hyperpay.HeaderNonce:     "nonce00001",
					hyperpay.HeaderAPIKey:    testAPIKey,
					hyperpay.HeaderVersion:   "2.1",
					"Content-Type":           "application/json",
				}
				for k, want := range wantHeaders {
					if v := got.Header.Get(k); v != want {
						t.Errorf("header %s = %q, want %q", k, v, want)
					}
				}
				if r, ok := fake.AuthResult(tt.authID); !ok || r != tt.result {
					t.Errorf("fake's auth_result = %d, %v; want %d", r, ok, tt.result)
				}
				assertNoSecrets(t, "log", logs.String(), fake)
				if !strings.Contains(logs.String(), "3333") {
					t.Errorf("log does not name the card by its last four: %s", logs.String())
				}
			})
		}
	}
}

func TestDecideFailures(t *testing.T) {
	key, wrong := rsaKey(t, 1024, 0), rsaKey(t, 1024, 1)
	tests := []struct {
		name          string
		signWith      *rsa.PrivateKey
		setup         func(*hptest.Server)
		wantStatus    int
		wantCode      string
		wantRetryable bool
		wantDecided   bool // the decision nevertheless reached the fake
	}{
		{"HTTP 503", key, func(f *hptest.Server) { f.FailNext(1, 503) }, 503, hptest.CodeInjected, true, false},
		{"HTTP 500", key, func(f *hptest.Server) { f.FailNext(1, 500) }, 500, hptest.CodeInjected, true, false},
		{"HTTP 429", key, func(f *hptest.Server) { f.FailNext(1, 429) }, 429, hptest.CodeInjected, true, false},
		{"signed with the wrong key", wrong, nil, 401, hptest.CodeBadSignature, false, false},
		{"another api key expected", key, func(f *hptest.Server) { f.WantAPIKey("ak_other") }, 401, hptest.CodeBadHeader, false, false},
		{"HTTP 400", key, func(f *hptest.Server) { f.FailNext(1, 400) }, 400, hptest.CodeInjected, false, false},
		{"refused with a code", key, func(f *hptest.Server) { f.FailNextCode(1, "30001", "auth expired") }, 200, "30001", false, false},
		{"auth_id belongs to another card", key, func(f *hptest.Server) { f.SetAuth("283", "99990000", 1) }, 200, hptest.CodeCardMismatch, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := hptest.New(t, &key.PublicKey)
			if tt.setup != nil {
				tt.setup(fake)
			}
			c, logs := newClient(t, fake.URL(), tt.signWith, nil)
			err := c.Decide(context.Background(), "283", testCard, 2)
			if err == nil {
				t.Fatal("Decide succeeded")
			}
			e := apiError(t, err)
			if e.HTTPStatus != tt.wantStatus || e.Code != tt.wantCode || e.Retryable != tt.wantRetryable || hyperpay.Retryable(err) != tt.wantRetryable {
				t.Errorf("got %+v (Retryable %v); want HTTP %d code %s retryable %v", e, hyperpay.Retryable(err), tt.wantStatus, tt.wantCode, tt.wantRetryable)
			}
			word := map[bool]string{true: "retryable", false: "final"}[tt.wantRetryable]
			if !strings.Contains(err.Error(), word) || !strings.Contains(err.Error(), fmt.Sprint(tt.wantStatus)) {
				t.Errorf("error %q does not say HTTP %d and %s", err, tt.wantStatus, word)
			}
			if len(fake.Decisions()) != 1 {
				t.Errorf("fake got %d decisions, want 1: the client never retries on its own", len(fake.Decisions()))
			}
			if r, _ := fake.AuthResult("283"); (r == 2) != tt.wantDecided {
				t.Errorf("fake's auth_result = %d after a failure", r)
			}
			assertNoSecrets(t, "error", err.Error(), fake)
			assertNoSecrets(t, "log", logs.String(), fake)
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the failure was not logged as a warning: %s", logs.String())
			}
		})
	}
}

func TestRetryAfter5xxSucceeds(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	fake := hptest.New(t, &key.PublicKey)
	fake.FailNext(1, http.StatusBadGateway)
	c, _ := newClient(t, fake.URL(), key, nil)
	if err := c.Decide(context.Background(), "283", testCard, 3); !hyperpay.Retryable(err) {
		t.Fatalf("first tap: %v, want a retryable error", err)
	}
	if err := c.Decide(context.Background(), "283", testCard, 3); err != nil {
		t.Fatalf("second tap: %v", err)
	}
	calls := fake.Decisions()
	if len(calls) != 2 || calls[0].Header.Get(hyperpay.HeaderNonce) == calls[1].Header.Get(hyperpay.HeaderNonce) {
		t.Fatalf("want 2 calls with fresh nonces, got %d", len(calls))
	}
	if r, _ := fake.AuthResult("283"); r != 3 {
		t.Errorf("auth_result = %d, want 3", r)
	}
}

func TestDecideWithoutAnswer(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	t.Run("timeout while HyperCard holds the request", func(t *testing.T) {
		fake := hptest.New(t, &key.PublicKey)
		release := fake.Hold()
		defer release()
		c, _ := newClient(t, fake.URL(), key, func(cfg *hyperpay.ClientConfig) { cfg.Timeout = 50 * time.Millisecond })
		err := c.Decide(context.Background(), "283", testCard, 2)
		if !hyperpay.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a retryable deadline error", err)
		}
		if e := apiError(t, err); e.HTTPStatus != 0 || !strings.Contains(err.Error(), "no answer") {
			t.Errorf("got %q (HTTP %d), want no answer", err, e.HTTPStatus)
		}
		// The decision went out: HyperCard applies it although we gave up.
		release()
		waitFor(t, "the held decision to be applied", func() bool { r, _ := fake.AuthResult("283"); return r == 2 })
	})
	t.Run("caller's context cancelled", func(t *testing.T) {
		fake := hptest.New(t, &key.PublicKey)
		release := fake.Hold()
		defer release()
		c, _ := newClient(t, fake.URL(), key, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitFor(t, "the request to arrive", func() bool { return fake.Waiting() == 1 })
			cancel()
		}()
		err := c.Decide(ctx, "283", testCard, 2)
		if !hyperpay.Retryable(err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want a retryable cancellation", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, _ := newClient(t, url, key, nil)
		err := c.Decide(context.Background(), "283", testCard, 2)
		if e := apiError(t, err); !e.Retryable || e.HTTPStatus != 0 || e.Err == nil {
			t.Fatalf("got %+v, want a retryable network error", e)
		}
		if strings.Contains(err.Error(), hyperpay.DecidePath) {
			t.Errorf("error repeats the URL: %v", err)
		}
	})
}

// waitFor polls cond every 5ms for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatus(t *testing.T) {
	key := rsaKey(t, 2048, 0)
	fake := hptest.New(t, &key.PublicKey)
	fake.SetAuth("283", testCard, 1)
	c, _ := newClient(t, fake.URL(), key, nil)
	ctx := context.Background()

	if r, err := c.Status(ctx, "283", testCard); err != nil || r != 1 {
		t.Fatalf("Status before a decision = %d, %v; want 1", r, err)
	}
	if err := c.Decide(ctx, "283", testCard, 3); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Status(ctx, "283", testCard); err != nil || r != 3 {
		t.Fatalf("Status after declining with 3 = %d, %v; want 3", r, err)
	}
	calls := fake.Calls()
	if len(calls) != 3 || calls[2].Path != hyperpay.StatusPath || !calls[2].Verified {
		t.Fatalf("calls %+v, want the third to be a verified status call", calls)
	}
	if want := `{"auth_id":283,"card_id":"` + testCard + `"}`; string(calls[2].Body) != want {
		t.Errorf("status body %s, want %s", calls[2].Body, want)
	}
	if len(fake.Decisions()) != 1 {
		t.Errorf("Status calls counted as decisions")
	}

	_, err := c.Status(ctx, "999", testCard)
	if e := apiError(t, err); e.Retryable || e.Code != hptest.CodeNotFound {
		t.Errorf("unknown auth: %+v, want the final not-found code", e)
	}
	fake.FailNext(1, 504)
	if _, err := c.Status(ctx, "283", testCard); !hyperpay.Retryable(err) {
		t.Errorf("504: %v, want retryable", err)
	}
}

// TestAnswers covers answer shapes a real HyperCard (or a proxy in front of
// it) may produce, which the fake does not.
func TestAnswers(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	tests := []struct {
		name          string
		status        int
		body          string
		wantErr       bool
		wantRetryable bool
		wantResult    int
	}{
		{"code as a string", 200, `{"code":"00000","msg":"ok","data":{"auth_result":2}}`, false, false, 2},
		{"code as a number", 200, `{"code":0,"msg":"ok","data":{"auth_result":"3"}}`, false, false, 3},
		{"auth_result at the top level", 200, `{"code":"00000","auth_result":2}`, false, false, 2},
		{"success without auth_result", 200, `{"code":"00000","msg":"ok","data":{}}`, true, false, 0},
		{"another numeric code", 200, `{"code":1,"msg":"ok"}`, true, false, 0},
		{"no code", 200, `{"msg":"ok"}`, true, false, 0},
		{"HTML from a proxy", 200, `<html>hello</html>`, true, false, 0},
		{"HTML 502 from a proxy", 502, `<html>bad gateway</html>`, true, true, 0},
		{"a redirect is not followed", 302, ``, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
					return
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c, _ := newClient(t, srv.URL, key, nil)
			got, err := c.Status(context.Background(), "283", testCard)
			if (err != nil) != tt.wantErr || hyperpay.Retryable(err) != tt.wantRetryable || got != tt.wantResult {
				t.Errorf("Status = %d, %v (retryable %v); want %d, error %v, retryable %v",
					got, err, hyperpay.Retryable(err), tt.wantResult, tt.wantErr, tt.wantRetryable)
			}
		})
	}
}

func TestMsgCannotLeakSecrets(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A careless gateway that echoes what it was sent.
		fmt.Fprintf(w, `{"code":"40000","msg":"bad api-key %s with signature %s\n"}`,
			r.Header.Get(hyperpay.HeaderAPIKey), r.Header.Get(hyperpay.HeaderSignature))
	}))
	defer srv.Close()
	c, logs := newClient(t, srv.URL, key, nil)
	err := c.Decide(context.Background(), "283", testCard, 2)
	if err == nil || strings.Contains(err.Error(), testAPIKey) || strings.Contains(logs.String(), testAPIKey) {
		t.Fatalf("error %v / log %s shows the api key", err, logs.String())
	}
	if !strings.Contains(err.Error(), "[redacted]") || strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("error %q: want the echoed secrets redacted and control characters gone", err)
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	fake := hptest.New(t, &key.PublicKey)
	c, _ := newClient(t, fake.URL(), key, nil)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"auth_result 1", func() error { return c.Decide(ctx, "283", testCard, 1) }},
		{"auth_result 0", func() error { return c.Decide(ctx, "283", testCard, 0) }},
		{"no auth_id", func() error { return c.Decide(ctx, "", testCard, 2) }},
		{"no card_id", func() error { return c.Decide(ctx, "283", "", 2) }},
		{"status without auth_id", func() error { _, err := c.Status(ctx, "", testCard); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, hyperpay.ErrInvalidArgument) || hyperpay.Retryable(err) {
				t.Errorf("got %v, want a final ErrInvalidArgument", err)
			}
		})
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("fake got %d calls", n)
	}
}

func TestDefaultNoncesAreFreshUnderConcurrency(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	fake := hptest.New(t, &key.PublicKey)
	c, _ := newClient(t, fake.URL(), key, func(cfg *hyperpay.ClientConfig) { cfg.Nonce, cfg.Now = nil, nil })
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.Decide(context.Background(), fmt.Sprint(1000+i), testCard, 2) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err) // a reused nonce is refused by the fake
		}
	}
	for _, call := range fake.Calls() {
		nonce, ts := call.Header.Get(hyperpay.HeaderNonce), call.Header.Get(hyperpay.HeaderTimestamp)
		if len(nonce) != 10 || len(ts) != 10 {
			t.Errorf("nonce %q, timestamp %q: want 10 characters and Unix seconds", nonce, ts)
		}
	}
}

func TestNewClientChecksConfig(t *testing.T) {
	key := rsaKey(t, 1024, 0)
	ok := hyperpay.ClientConfig{BaseURL: "https://api.example.com/v1/", APIKey: testAPIKey, PrivateKey: key}
	tests := []struct {
		name    string
		edit    func(*hyperpay.ClientConfig)
		wantErr string
	}{
		{"complete", func(*hyperpay.ClientConfig) {}, ""},
		{"no base URL", func(c *hyperpay.ClientConfig) { c.BaseURL = "" }, "BaseURL"},
		{"base URL without scheme", func(c *hyperpay.ClientConfig) { c.BaseURL = "api.example.com" }, "BaseURL"},
		{"base URL with a query", func(c *hyperpay.ClientConfig) { c.BaseURL = "https://api.example.com/?x=1" }, "BaseURL"},
		{"no api key", func(c *hyperpay.ClientConfig) { c.APIKey = "" }, "APIKey"},
		{"no private key", func(c *hyperpay.ClientConfig) { c.PrivateKey = nil }, "PrivateKey"},
		{"broken private key", func(c *hyperpay.ClientConfig) { c.PrivateKey = &rsa.PrivateKey{PublicKey: key.PublicKey} }, "PrivateKey"},
		{"negative timeout", func(c *hyperpay.ClientConfig) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := hyperpay.NewClient(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error naming %s", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testAPIKey) {
				t.Errorf("error shows the api key")
			}
		})
	}
}
