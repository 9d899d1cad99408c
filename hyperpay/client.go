package hyperpay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The 3-D Secure approval endpoints (docs/hypercard.md#approval-api),
// relative to ClientConfig.BaseURL.
const (
	DecidePath = "/openapi/card/3ds/transaction/auth"
	StatusPath = "/openapi/card/3ds/transaction/auth/status"
)

// SuccessCode is the code of a successful API answer ({"code":"00000",...}).
// HyperCard's pushes are acknowledged with code 1 instead; that is the
// other direction and not this code.
const SuccessCode = "00000"

// Defaults for the optional ClientConfig fields.
const (
	// DefaultVersion is the version header. HyperCard's documents do not
	// publish the value its API expects; "1.0" is what integrations report
	// (unverified, docs/hypercard.md#unverified; hence ClientConfig.Version).
	DefaultVersion = "1.0"
	// DefaultTimeout bounds one call, answer included. A cardholder is
	// waiting on a tap, and HyperCard's approval window is short.
	DefaultTimeout = 10 * time.Second
)

// maxAnswerBytes caps how much of an answer is read: HyperCard's answers
// are a few hundred bytes, and a misbehaving proxy must not fill memory.
const maxAnswerBytes = 64 << 10

// ErrInvalidArgument is wrapped by the errors of Decide and Status when
// their arguments cannot make a valid request; nothing was sent.
var ErrInvalidArgument = errors.New("invalid argument")

// ValidResult reports whether HyperCard accepts result as an auth_result in
// a decision: its document allows only 2 and 3. Which of the two approves
// and which declines is not documented (docs/hypercard.md#approval-api),
// so the caller takes both values from configuration
// (providers.hypercard.api.approve_result and decline_result); this package
// never assumes either meaning.
func ValidResult(result int) bool { return result == 2 || result == 3 }

// ClientConfig configures a Client. BaseURL, APIKey and PrivateKey are
// required; the rest have defaults.
type ClientConfig struct {
	// BaseURL is HyperCard's API root, e.g. "https://api.example.com"; a
	// path prefix is kept and a trailing slash ignored.
	BaseURL string
	// APIKey is the merchant's api-key header. It is signed, sent, and never
	// logged or put in an error.
	APIKey string
	// PrivateKey is the merchant's RSA key whose public half is registered
	// on HyperCard's merchant platform (1024-bit there; any size works).
	PrivateKey *rsa.PrivateKey
	// Version is the version header; DefaultVersion when empty.
	Version string
	// Timeout bounds each call; DefaultTimeout when zero. It applies on top
	// of the caller's context and of HTTPClient's own timeout.
	Timeout time.Duration
	// HTTPClient sends the requests. When nil, a client that does not
	// follow redirects is used: an API that redirects is misconfigured, and
	// following would resend the signed headers to wherever it points.
	HTTPClient *http.Client
	// Now is the clock for the timestamp header; time.Now when nil.
	Now func() time.Time
	// Nonce returns the nonce header of one request; when nil, 10 random
	// characters from crypto/rand, as HyperCard's signature document asks.
	Nonce func() string
	// Logger receives one line per call (operation, auth_id, last four of
	// the card id, HTTP status, HyperCard's code, retryable, duration) —
	// never the api key, the signature or a full card id. Discarded when nil.
	Logger *slog.Logger
}

// Client calls HyperCard's 3-D Secure approval API with signed requests. It
// is safe for concurrent use. It makes exactly one HTTP request per call and
// never retries on its own: whether to try again is the caller's decision
// (otpbot retries only on the cardholder's next tap), guided by
// Retryable(err).
type Client struct {
	base       string
	apiKey     string
	key        *rsa.PrivateKey
	version    string
	timeout    time.Duration
	httpClient *http.Client
	now        func() time.Time
	nonce      func() string
	log        *slog.Logger
}

// NewClient checks cfg and returns a Client. Its errors name the field
// that is wrong (BaseURL, APIKey, PrivateKey) and never quote a secret.
func NewClient(cfg ClientConfig) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	switch {
	case base == "":
		return nil, errors.New("hyperpay: BaseURL is required")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, errors.New("hyperpay: BaseURL must be an http(s) URL with a host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("hyperpay: BaseURL must not have a query or fragment")
	case cfg.APIKey == "":
		return nil, errors.New("hyperpay: APIKey is required")
	case cfg.PrivateKey == nil:
		return nil, errors.New("hyperpay: PrivateKey is required")
	case cfg.Timeout < 0:
		return nil, errors.New("hyperpay: Timeout must not be negative")
	}
	if err := cfg.PrivateKey.Validate(); err != nil {
		return nil, fmt.Errorf("hyperpay: PrivateKey: %w", err)
	}
	c := &Client{
		base: base, apiKey: cfg.APIKey, key: cfg.PrivateKey,
		version: cfg.Version, timeout: cfg.Timeout, httpClient: cfg.HTTPClient,
		now: cfg.Now, nonce: cfg.Nonce, log: cfg.Logger,
	}
	if c.version == "" {
		c.version = DefaultVersion
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.nonce == nil {
		c.nonce = randomNonce
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// randomNonce returns 10 characters of crypto/rand (Base32: A-Z, 2-7),
// 50 bits, as the nonce HyperCard's document asks for.
func randomNonce() string { return rand.Text()[:10] }

// Decide answers HyperCard's AUTH_3DS approval request authID for card
// cardID with result: POST DecidePath, body
// {"auth_id":283,"card_id":"...","auth_result":2}, signed. auth_id is sent
// as a JSON number when it is a plain decimal (as HyperCard's push carries
// it), else as a string.
//
// result must be 2 or 3 (ValidResult); which means approve and which
// decline is configuration, not known from HyperCard's documents.
//
// It returns nil only when HyperCard answered HTTP 200 with code "00000".
// Any other outcome is an *APIError; see Retryable. After a retryable error
// (timeout, network, 5xx) the decision may nevertheless have reached
// HyperCard: Status tells, and a later AUTH_3DS push carries the final
// auth_result either way.
func (c *Client) Decide(ctx context.Context, authID, cardID string, result int) error {
	if !ValidResult(result) {
		return fmt.Errorf("hyperpay decide: auth_result %d is not 2 or 3: %w", result, ErrInvalidArgument)
	}
	_, err := c.call(ctx, "decide", DecidePath, authID, cardID, result)
	return err
}

// Status returns the current auth_result of HyperCard's approval request
// authID for card cardID: POST StatusPath with auth_id and card_id, signed.
// The answer's data.auth_result is read (a top-level auth_result too, since
// the answer's layout is not published), as a number or a numeric string.
// Errors are as for Decide.
func (c *Client) Status(ctx context.Context, authID, cardID string) (int, error) {
	data, err := c.call(ctx, "status", StatusPath, authID, cardID, 0)
	if err != nil {
		return 0, err
	}
	if n, ok := data.authResult(); ok {
		return n, nil
	}
	return 0, &APIError{Op: "status", HTTPStatus: http.StatusOK, Code: SuccessCode,
		Err: errors.New("the answer carries no auth_result")}
}

// call sends one signed request and reads the answer. result 0 leaves
// auth_result out of the body (the status request).
func (c *Client) call(ctx context.Context, op, path, authID, cardID string, result int) (answer, error) {
	if authID == "" || cardID == "" {
		return answer{}, fmt.Errorf("hyperpay %s: auth_id and card_id are required: %w", op, ErrInvalidArgument)
	}
	body, err := requestBody(authID, cardID, result)
	if err != nil {
		return answer{}, fmt.Errorf("hyperpay %s: %w", op, err)
	}
	headers := map[string]string{
		HeaderTimestamp: strconv.FormatInt(c.now().Unix(), 10),
		HeaderNonce:     c.nonce(),
		HeaderAPIKey:    c.apiKey,
		HeaderVersion:   c.version,
	}
	sig, err := Sign(c.key, headers, body)
	if err != nil {
		return answer{}, fmt.Errorf("hyperpay %s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("hyperpay %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(HeaderSignature, sig)

	start := time.Now()
	ans, apiErr := c.do(req, op)
	if apiErr != nil {
		// HyperCard's msg is free text: make sure it cannot carry our secrets.
		apiErr.Msg = redact(apiErr.Msg, c.apiKey, sig)
	}
	c.logCall(ctx, op, authID, cardID, result, apiErr, time.Since(start))
	if apiErr != nil {
		return answer{}, apiErr
	}
	return ans, nil
}

// do sends req and turns the answer into the data of a success or an
// *APIError.
func (c *Client) do(req *http.Request, op string) (answer, *APIError) {
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return answer{}, &APIError{Op: op, Retryable: true, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		// The status line arrived but the body did not: the connection broke.
		return answer{}, &APIError{Op: op, HTTPStatus: resp.StatusCode, Retryable: true, Err: unwrapURLError(err)}
	}
	var ans answer
	jsonErr := json.Unmarshal(raw, &ans)
	e := &APIError{Op: op, HTTPStatus: resp.StatusCode, Code: ans.code(), Msg: cleanMsg(ans.Msg)}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		e.Retryable = true
		return answer{}, e
	case resp.StatusCode != http.StatusOK:
		return answer{}, e
	case jsonErr != nil:
		e.Err = errors.New("the answer is not HyperCard's JSON")
		return answer{}, e
	case e.Code != SuccessCode:
		return answer{}, e
	}
	return ans, nil
}

// requestBody renders the JSON body in the documented field order.
func requestBody(authID, cardID string, result int) ([]byte, error) {
	id, err := json.Marshal(authID)
	if err != nil {
		return nil, err
	}
	if isDecimal(authID) {
		id = []byte(authID)
	}
	body := struct {
		AuthID     json.RawMessage `json:"auth_id"`
		CardID     string          `json:"card_id"`
		AuthResult int             `json:"auth_result,omitempty"`
	}{id, cardID, result}
	return json.Marshal(body)
}

// isDecimal reports whether s is a JSON-valid non-negative integer that an
// int64 holds (no sign, no leading zero), so that sending it as a number
// neither changes its text nor loses precision at the other end.
func isDecimal(s string) bool {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// answer is HyperCard's API envelope: {"code":"00000","msg":"ok","data":...}.
// code arrives as a string or a number.
type answer struct {
	Code       json.RawMessage `json:"code"`
	Msg        string          `json:"msg"`
	Data       json.RawMessage `json:"data"`
	AuthResult json.RawMessage `json:"auth_result"`
}

// code renders the answer's code: a string as is; the number 0 as
// SuccessCode (a JSON number cannot keep "00000"'s zeros); another number
// as its literal.
func (a answer) code() string {
	raw := bytes.TrimSpace(a.Code)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if f, err := n.Float64(); err == nil && f == 0 {
		return SuccessCode
	}
	return n.String()
}

// authResult finds the auth_result of a status answer.
func (a answer) authResult() (int, bool) {
	var data struct {
		AuthResult json.RawMessage `json:"auth_result"`
	}
	if json.Unmarshal(a.Data, &data) == nil {
		if n, ok := jsonInt(data.AuthResult); ok {
			return n, true
		}
	}
	return jsonInt(a.AuthResult)
}

// jsonInt reads a JSON integer written as a number or a numeric string.
func jsonInt(raw json.RawMessage) (int, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 1 && raw[0] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	n, err := strconv.Atoi(string(raw))
	return n, err == nil
}

// cleanMsg keeps HyperCard's message printable and short: it ends up in
// logs and, through the caller, possibly in front of a user.
func cleanMsg(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return strings.TrimSpace(s)
}

// redact removes secrets from s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// unwrapURLError drops the *url.Error layer, whose text repeats the method
// and URL; what remains says what failed (timeout, refused, reset).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// logCall writes the one line per call that ops read when a cardholder
// says "the button did not work".
func (c *Client) logCall(ctx context.Context, op, authID, cardID string, result int, e *APIError, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("op", op),
		slog.String("auth_id", authID),
		slog.String("card", maskCard(cardID)),
		slog.Duration("took", took),
	}
	if result != 0 {
		attrs = append(attrs, slog.Int("auth_result", result))
	}
	if e == nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "hypercard api call succeeded", attrs...)
		return
	}
	attrs = append(attrs, slog.Int("http_status", e.HTTPStatus), slog.String("code", e.Code),
		slog.Bool("retryable", e.Retryable), slog.String("err", e.Error()))
	c.log.LogAttrs(ctx, slog.LevelWarn, "hypercard api call failed", attrs...)
}

// maskCard shows only the last four characters of a card id.
func maskCard(id string) string {
	if len(id) <= 4 {
		return "••••"
	}
	return "•••• " + id[len(id)-4:]
}

// APIError is a failed call: no answer (network, timeout), an HTTP status
// other than 200, or a HyperCard code other than "00000". Its text says
// which, and whether trying again may help; it never holds the api key, the
// signature or the card id.
type APIError struct {
	// Op is "decide" or "status".
	Op string
	// HTTPStatus is the answer's status, 0 when none arrived.
	HTTPStatus int
	// Code and Msg are HyperCard's, when the answer carried them.
	Code, Msg string
	// Retryable is true when the same call may succeed later: no answer,
	// a timeout, HTTP 5xx, 429 or 408. It is false for a refusal (other 4xx,
	// another code, an unreadable 200), which repeating will not change.
	Retryable bool
	// Err is the cause when there is one beyond the status and code
	// (a network error, context.DeadlineExceeded).
	Err error
}

// Error describes the failure, e.g.
// "hyperpay decide: HTTP 503, code 50000 (system busy) (retryable)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("hyperpay " + e.Op + ": ")
	parts := []string{}
	if e.HTTPStatus != 0 {
		parts = append(parts, "HTTP "+strconv.Itoa(e.HTTPStatus))
	} else {
		parts = append(parts, "no answer")
	}
	if e.Code != "" {
		c := "code " + e.Code
		if e.Msg != "" {
			c += " (" + e.Msg + ")"
		}
		parts = append(parts, c)
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	b.WriteString(strings.Join(parts, ", "))
	if e.Retryable {
		b.WriteString(" (retryable)")
	} else {
		b.WriteString(" (final)")
	}
	return b.String()
}

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded)
// works.
func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether err is an *APIError that may succeed when the
// same call is made again. Invalid arguments and refusals are not.
func Retryable(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Retryable
}
