// Package hptest is a fake HyperCard merchant API for tests: an httptest
// server with the two 3-D Secure endpoints (hyperpay.DecidePath and
// hyperpay.StatusPath) that verifies every request's signature with the
// merchant's public key, records every call, keeps the current auth_result
// of each approval request, and fails on demand.
//
// Answers follow HyperCard's envelope: {"code":"00000","msg":"ok"} on
// success (with "data" for the status endpoint); a request whose signature
// does not verify gets HTTP 401 with code CodeBadSignature; a malformed or
// inconsistent request gets HTTP 200 with another code, as business errors
// are reported by the code.
package hptest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/otpbot/otpbot/hyperpay"
)

// Codes the fake answers besides hyperpay.SuccessCode. HyperCard's real
// error codes are not published; tests should assert on the HTTP status,
// the code being other than "00000", or these constants.
const (
	CodeBadSignature = "10001" // signature missing or does not verify (HTTP 401)
	CodeBadHeader    = "10002" // a signed header missing or malformed (HTTP 401)
	CodeNonceReused  = "10003" // a nonce seen before (HTTP 401)
	CodeBadParams    = "20001" // body not JSON, field missing, auth_result not 2 or 3
	CodeCardMismatch = "20002" // card_id differs from the one auth_id belongs to
	CodeNotFound     = "20004" // status of an auth_id the fake does not know
	CodeInjected     = "99999" // a failure asked for with FailNext
)

// Call is one request the fake received, whatever it answered.
type Call struct {
	// Path is hyperpay.DecidePath or hyperpay.StatusPath (or whatever else
	// was requested).
	Path string
	// AuthID is auth_id as sent: a number's literal or a string's value.
	// AuthIDNumber is true when it was a JSON number.
	AuthID       string
	AuthIDNumber bool
	// CardID is card_id as sent.
	CardID string
	// AuthResult is auth_result as sent; 0 when absent (status calls).
	AuthResult int
	// Header holds the request headers (timestamp, nonce, api-key,
	// version, signature, ...).
	Header http.Header
	// Body is the request body as received.
	Body []byte
	// Verified is true when the signature verified with the public key.
	Verified bool
	// HTTPStatus and Code are what the fake answered.
	HTTPStatus int
	Code       string
}

// failure is one injected answer.
type failure struct {
	status    int
	code, msg string
}

// auth is the fake's record of one approval request.
type auth struct {
	cardID string
	result int
}

// Server is the fake HyperCard API. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server
	pub *rsa.PublicKey

	mu      sync.Mutex
	apiKey  string
	calls   []Call
	fails   []failure
	auths   map[string]*auth
	nonces  map[string]bool
	hold    chan struct{}
	holding bool
}

// New starts a fake HyperCard API that accepts requests signed by the
// private half of pub. It is closed when the test ends.
func New(t testing.TB, pub *rsa.PublicKey) *Server {
	t.Helper()
	if pub == nil {
		t.Fatal("hptest.New: nil public key")
	}
	s := newServer(pub)
	t.Cleanup(s.Close)
	return s
}

// newServer starts the fake on a loopback port.
func newServer(pub *rsa.PublicKey) *Server {
	s := &Server{pub: pub, auths: map[string]*auth{}, nonces: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases held requests and stops the server. Idempotent.
func (s *Server) Close() {
	s.release()
	s.srv.Close()
}

// URL is the base URL to configure as hyperpay.ClientConfig.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Client returns an *http.Client that reaches the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// WantAPIKey makes the fake refuse (HTTP 401, CodeBadHeader) requests whose
// api-key header is not key. By default any non-empty api-key is accepted.
func (s *Server) WantAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// FailNext makes the next n requests, to either endpoint, answer HTTP
// status (e.g. 503) with {"code":CodeInjected,...} after they are recorded,
// without changing any auth_result. A failure injected this way happens
// whatever the signature, like a broken gateway in front of HyperCard.
func (s *Server) FailNext(n, status int) {
	s.failNext(n, failure{status: status, code: CodeInjected, msg: fmt.Sprintf("injected HTTP %d", status)})
}

// FailNextCode makes the next n requests answer HTTP 200 with code (not
// "00000") and msg, like a refusal by HyperCard, without changing any
// auth_result.
func (s *Server) FailNextCode(n int, code, msg string) {
	s.failNext(n, failure{status: http.StatusOK, code: code, msg: msg})
}

func (s *Server) failNext(n int, f failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fails = append(s.fails, f)
	}
}

// Hold makes requests that arrive from now on wait, unanswered, until the
// returned release is called or the client gives up. It lets a test line up
// concurrent taps or run a client into its timeout. A request whose client
// gave up is still processed, as a real server would: a decision that timed
// out at the client may have been applied. Calling release more than once
// is harmless.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		s.hold, s.holding = make(chan struct{}), true
	}
	return s.release
}

func (s *Server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holding {
		close(s.hold)
		s.holding = false
	}
}

// Waiting returns how many received requests are being held by Hold.
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.HTTPStatus == 0 {
			n++
		}
	}
	return n
}

// SetAuth records an approval request the way HyperCard knows it after
// pushing AUTH_3DS: auth_id, the card it belongs to and its current
// auth_result. Without it, the first decision for an auth_id creates it.
func (s *Server) SetAuth(authID, cardID string, result int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auths[authID] = &auth{cardID: cardID, result: result}
}

// AuthResult returns the current auth_result of authID, and whether the
// fake knows authID.
func (s *Server) AuthResult(authID string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.auths[authID]
	if !ok {
		return 0, false
	}
	return a.result, true
}

// Calls returns every request received so far, in order of arrival. A call
// still held by Hold has HTTPStatus 0.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneCalls(s.calls, "")
}

// Decisions returns the requests to the decision endpoint
// (hyperpay.DecidePath), whatever they were answered: "exactly one API call"
// is len(Decisions()) == 1.
func (s *Server) Decisions() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneCalls(s.calls, hyperpay.DecidePath)
}

func cloneCalls(calls []Call, path string) []Call {
	out := []Call{}
	for _, c := range calls {
		if path != "" && c.Path != path {
			continue
		}
		c.Header = c.Header.Clone()
		c.Body = append([]byte(nil), c.Body...)
		out = append(out, c)
	}
	return out
}

// request is the body of both endpoints.
type request struct {
	AuthID     json.RawMessage `json:"auth_id"`
	CardID     json.RawMessage `json:"card_id"`
	AuthResult json.RawMessage `json:"auth_result"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	c := Call{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var req request
	parsed := json.Unmarshal(body, &req) == nil
	if parsed {
		c.AuthID, c.AuthIDNumber = scalar(req.AuthID)
		c.CardID, _ = scalar(req.CardID)
		if v, isNum := scalar(req.AuthResult); isNum {
			c.AuthResult, _ = strconv.Atoi(v)
		}
	}

	s.mu.Lock()
	i := len(s.calls)
	s.calls = append(s.calls, c)
	hold, holding := s.hold, s.holding
	s.mu.Unlock()
	if holding {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}

	c.Verified = s.verified(r, body)
	s.mu.Lock()
	status, code, msg, data := s.answer(r, c, req, parsed)
	s.calls[i].Verified, s.calls[i].HTTPStatus, s.calls[i].Code = c.Verified, status, code
	s.mu.Unlock()

	ans := map[string]any{"code": code, "msg": msg}
	if data != nil {
		ans["data"] = data
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ans)
}

// verified reports whether the request's signature header verifies, with
// the public key, over its signed headers and body.
func (s *Server) verified(r *http.Request, body []byte) bool {
	sig := r.Header.Get(hyperpay.HeaderSignature)
	if sig == "" {
		return false
	}
	h := map[string]string{}
	for _, name := range hyperpay.SignedHeaders() {
		h[name] = r.Header.Get(name)
	}
	return hyperpay.Verify(s.pub, h, body, sig) == nil
}

// answer decides what the fake answers and applies a decision. Called with
// s.mu held.
func (s *Server) answer(r *http.Request, c Call, req request, parsed bool) (status int, code, msg string, data any) {
	if len(s.fails) > 0 {
		f := s.fails[0]
		s.fails = s.fails[1:]
		return f.status, f.code, f.msg, nil
	}
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, CodeBadParams, "method not allowed", nil
	}
	if !c.Verified {
		return http.StatusUnauthorized, CodeBadSignature, "signature verification failed", nil
	}
	if code, msg := s.checkHeaders(r); code != "" {
		return http.StatusUnauthorized, code, msg, nil
	}
	if !parsed || c.AuthID == "" || c.CardID == "" {
		return http.StatusOK, CodeBadParams, "auth_id and card_id are required", nil
	}
	a := s.auths[c.AuthID]
	if a != nil && a.cardID != c.CardID {
		return http.StatusOK, CodeCardMismatch, "card_id does not match auth_id", nil
	}
	switch r.URL.Path {
	case hyperpay.DecidePath:
		if !hyperpay.ValidResult(c.AuthResult) {
			return http.StatusOK, CodeBadParams, "auth_result must be 2 or 3", nil
		}
		if a == nil {
			a = &auth{cardID: c.CardID}
			s.auths[c.AuthID] = a
		}
		a.result = c.AuthResult
		return http.StatusOK, hyperpay.SuccessCode, "ok", nil
	case hyperpay.StatusPath:
		if a == nil {
			return http.StatusOK, CodeNotFound, "auth not found", nil
		}
		return http.StatusOK, hyperpay.SuccessCode, "ok", map[string]any{
			"auth_id": json.RawMessage(req.AuthID), "card_id": c.CardID, "auth_result": a.result,
		}
	}
	return http.StatusNotFound, CodeBadParams, "no such endpoint", nil
}

// checkHeaders refuses a request whose signed headers are missing or
// malformed, or whose nonce was used before. Called with s.mu held.
func (s *Server) checkHeaders(r *http.Request) (code, msg string) {
	for _, name := range hyperpay.SignedHeaders() {
		if r.Header.Get(name) == "" {
			return CodeBadHeader, name + " header missing"
		}
	}
	ts := r.Header.Get(hyperpay.HeaderTimestamp)
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || len(ts) != 10 {
		return CodeBadHeader, "timestamp must be Unix seconds"
	}
	if s.apiKey != "" && r.Header.Get(hyperpay.HeaderAPIKey) != s.apiKey {
		return CodeBadHeader, "unknown api-key"
	}
	nonce := r.Header.Get(hyperpay.HeaderNonce)
	if s.nonces[nonce] {
		return CodeNonceReused, "nonce reused"
	}
	s.nonces[nonce] = true
	return "", ""
}

// scalar renders a JSON string or number; isNumber is true for a number.
func scalar(raw json.RawMessage) (v string, isNumber bool) {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return t, false
}
