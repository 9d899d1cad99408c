package webhooks

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/otpbot/otpbot"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the settings New fills in when they are zero (docs/configuration.md).
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultUPayPath           = "/webhooks/upay"
	DefaultHyperCardPath      = "/hc_sync/common"
	DefaultUPayTolerance      = 5 * time.Minute
	DefaultHyperCardTolerance = 25 * time.Hour
)

// The answers each platform takes as an acknowledgement (docs/pushes.md).
const (
	upayAck      = "SUCCESS"
	hyperCardAck = `{"code":1,"msg":"ok","data":{}}`
	// hyperCardFailCode is the code of a HyperCard non-ack: anything but 1.
	hyperCardFailCode = 0

	contentTypeJSON = "application/json; charset=utf-8"
	contentTypeText = "text/plain; charset=utf-8"
)

// Ingester is what the handler needs from the store: Ingest returns only
// once the event is durable, so the push may be acknowledged.
type Ingester interface {
	Ingest(ctx context.Context, ev otpbot.Event) (otpbot.IngestResult, error)
}

// UPayConfig configures the UPay endpoint (the configuration keys providers.upay).
// Every configured check must pass; at least one of Token and SecretKey is
// required when Enabled.
type UPayConfig struct {
	Enabled bool
	// Path is the route (DefaultUPayPath when empty).
	Path string
	// Token is a shared secret expected as ?token= or Authorization: Bearer.
	Token string
	// SecretKey verifies X-UPA-SIGN (see SignUPay).
	SecretKey []byte
	// PrivateKey decrypts {"payload":"<JWE>"} bodies (see EncryptUPay).
	PrivateKey *rsa.PrivateKey
	// RequireEncryption refuses plain JSON bodies (needs PrivateKey).
	RequireEncryption bool
	// SignatureTolerance bounds the age of X-UPA-TIMESTAMP
	// (DefaultUPayTolerance when zero).
	SignatureTolerance time.Duration
	// AllowIPs limits the client addresses; empty allows any.
	AllowIPs []netip.Prefix
}

// HyperCardConfig configures the HyperCard endpoint (the configuration
// keys providers.hypercard). Every configured check must pass; at least one of
// Token and PublicKey is required when Enabled.
type HyperCardConfig struct {
	Enabled bool
	// Path is the route (DefaultHyperCardPath when empty).
	Path string
	// Token is a shared secret expected as ?token= or Authorization: Bearer.
	Token string
	// PublicKey is HyperCard's key; it verifies the signature header.
	PublicKey *rsa.PublicKey
	// SignatureTolerance bounds the age of the timestamp header
	// (DefaultHyperCardTolerance when zero: HyperCard retries for 24h).
	SignatureTolerance time.Duration
	// AllowIPs limits the client addresses; empty allows any.
	AllowIPs []netip.Prefix
}

// Config is the webhook server's configuration.
type Config struct {
	// MaxBodyBytes caps a push body (DefaultMaxBodyBytes when zero); a
	// larger one is answered 413.
	MaxBodyBytes int64
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP are
	// believed for AllowIPs.
	TrustedProxies []netip.Prefix
	UPay           UPayConfig
	HyperCard      HyperCardConfig
	Codes          CodeConfig
	// IDSecret keys the ids of pushes that carry none (see Parser.IDSecret):
	// the store's installation secret (otpbot.SecretStore). Required, at least
	// MinIDSecretBytes, when a provider is enabled.
	IDSecret []byte
	// AuthResults says what an AUTH_3DS auth_result means (see
	// Parser.AuthResults); DefaultAuthResults when nil.
	AuthResults map[int]otpbot.AuthState
}

// Options are the handler's dependencies.
type Options struct {
	Logger     *slog.Logger          // slog.Default() when nil
	Now        func() time.Time      // time.Now when nil
	Registerer prometheus.Registerer // metrics are not registered when nil
	Reporter   Reporter              // may be nil
	FollowUps  FollowUps             // may be nil: no follow-ups of code messages
}

// Handler serves the providers' webhook endpoints.
type Handler struct {
	cfg       Config
	ing       Ingester
	log       *slog.Logger
	now       func() time.Time
	rep       Reporter
	degraded  DegradedReporter // rep, when it implements it
	throttle  throttle         // of the reports to degraded
	followUps FollowUps
	parser    Parser
	metrics   *metrics
	providers []*provider
}

// provider is one platform's endpoint: how it authenticates, parses and
// answers.
type provider struct {
	name  otpbot.Provider
	path  string
	token string
	allow []netip.Prefix
	// verify runs the signature checks on the body and returns the push to
	// parse (decrypted, for UPay) and what a verified signature says of
	// it (zero when the provider signs nothing here).
	verify func(r *http.Request, body []byte, now time.Time) ([]byte, signature, error)
	parse  func(p Parser, body []byte, rq request) (parsed, error)
	// tolerance is the provider's signature_tolerance.
	tolerance time.Duration
	// ack and fail write the platform's acknowledgement and a non-ack.
	ack  func(w http.ResponseWriter)
	fail func(w http.ResponseWriter, status int, msg string)
}

// New validates cfg and builds the handler. It fails when an enabled
// provider has no authentication method, naming the provider, and when a
// provider is enabled without an IDSecret.
func New(cfg Config, ing Ingester, opts Options) (*Handler, error) {
	if ing == nil {
		return nil, errors.New("webhooks: no ingester")
	}
	if (cfg.UPay.Enabled || cfg.HyperCard.Enabled) && len(cfg.IDSecret) < MinIDSecretBytes {
		return nil, fmt.Errorf("webhooks: IDSecret (the store's installation secret) must be at least %d bytes, got %d",
			MinIDSecretBytes, len(cfg.IDSecret))
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	// Own copies: the caller changing its config later must not race with
	// requests in flight.
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	cfg.UPay.AllowIPs = slices.Clone(cfg.UPay.AllowIPs)
	cfg.UPay.SecretKey = slices.Clone(cfg.UPay.SecretKey)
	cfg.HyperCard.AllowIPs = slices.Clone(cfg.HyperCard.AllowIPs)
	cfg.Codes.TTLByEvent = maps.Clone(cfg.Codes.TTLByEvent)
	cfg.IDSecret = slices.Clone(cfg.IDSecret)
	cfg.AuthResults = maps.Clone(cfg.AuthResults)
	h := &Handler{cfg: cfg, ing: ing, log: opts.Logger, now: opts.Now, rep: opts.Reporter, followUps: opts.FollowUps,
		parser: Parser{IDSecret: cfg.IDSecret, Codes: cfg.Codes, AuthResults: cfg.AuthResults}}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.degraded, _ = h.rep.(DegradedReporter)
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.UPay.Enabled {
		p, err := newUPay(&h.cfg.UPay)
		if err != nil {
			return nil, err
		}
		h.providers = append(h.providers, p)
	}
	if cfg.HyperCard.Enabled {
		p, err := newHyperCard(&h.cfg.HyperCard)
		if err != nil {
			return nil, err
		}
		if cfg.UPay.Enabled && p.path == h.cfg.UPay.Path {
			return nil, fmt.Errorf("providers.hypercard.path: %q is also providers.upay.path", p.path)
		}
		h.providers = append(h.providers, p)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	return h, nil
}

// checkPath fills in a default path and checks that it is a path.
func checkPath(key string, path *string, def string) error {
	if *path == "" {
		*path = def
	}
	if !strings.HasPrefix(*path, "/") {
		return fmt.Errorf("%s: %q must start with /", key, *path)
	}
	return nil
}

func newUPay(c *UPayConfig) (*provider, error) {
	if c.Token == "" && len(c.SecretKey) == 0 {
		return nil, errors.New("providers.upay: no authentication configured (token, secret_key)")
	}
	if c.RequireEncryption && c.PrivateKey == nil {
		return nil, errors.New("providers.upay.require_encryption: needs private_key_file")
	}
	if err := checkPath("providers.upay.path", &c.Path, DefaultUPayPath); err != nil {
		return nil, err
	}
	if c.SignatureTolerance <= 0 {
		c.SignatureTolerance = DefaultUPayTolerance
	}
	return &provider{
		name: otpbot.ProviderUPay, path: c.Path, token: c.Token, allow: c.AllowIPs, tolerance: c.SignatureTolerance,
		verify: func(r *http.Request, body []byte, now time.Time) ([]byte, signature, error) {
			plain, encrypted, err := c.openUPay(body)
			if err != nil {
				return nil, signature{}, err
			}
			var sig signature
			if len(c.SecretKey) > 0 {
				if sig, err = c.checkUPaySignature(r, body, plain, encrypted, now); err != nil {
					return nil, signature{}, err
				}
			}
			return plain, sig, nil
		},
		parse: Parser.parseUPay,
		ack: func(w http.ResponseWriter) {
			writeBody(w, http.StatusOK, contentTypeText, upayAck)
		},
		fail: func(w http.ResponseWriter, status int, msg string) {
			writeBody(w, status, contentTypeText, "FAIL: "+msg)
		},
	}, nil
}

func newHyperCard(c *HyperCardConfig) (*provider, error) {
	if c.Token == "" && c.PublicKey == nil {
		return nil, errors.New("providers.hypercard: no authentication configured (token, public_key_file)")
	}
	if err := checkPath("providers.hypercard.path", &c.Path, DefaultHyperCardPath); err != nil {
		return nil, err
	}
	if c.SignatureTolerance <= 0 {
		c.SignatureTolerance = DefaultHyperCardTolerance
	}
	return &provider{
		name: otpbot.ProviderHyperCard, path: c.Path, token: c.Token, allow: c.AllowIPs, tolerance: c.SignatureTolerance,
		verify: func(r *http.Request, body []byte, now time.Time) ([]byte, signature, error) {
			var sig signature
			if c.PublicKey != nil {
				var err error
				if sig, err = c.checkHyperCardSignature(r, body, now); err != nil {
					return nil, signature{}, err
				}
			}
			return body, sig, nil
		},
		parse: Parser.parseHyperCard,
		ack: func(w http.ResponseWriter) {
			writeBody(w, http.StatusOK, contentTypeJSON, hyperCardAck)
		},
		fail: func(w http.ResponseWriter, status int, msg string) {
			writeBody(w, status, contentTypeJSON,
				fmt.Sprintf(`{"code":%d,"msg":%q,"data":{}}`, hyperCardFailCode, msg))
		},
	}, nil
}

func writeBody(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Register adds a POST route for each enabled provider's path.
func (h *Handler) Register(r *mux.Router) {
	for _, p := range h.providers {
		r.Handle(p.path, h.serve(p)).Methods(http.MethodPost)
	}
}

// Errors a push can end in besides errUnauthorized and ErrMalformed.
var (
	errTooLarge    = errors.New("body too large")
	errUnavailable = errors.New("store unavailable")
)

// status maps the error a push ended in to its HTTP status, the outcome
// label of otpbot_pushes_total and the short message of the non-ack body.
// It is the one place that does so.
func status(err error) (code int, outcome, msg string) {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, "unauthorized", "unauthorized"
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large", "body too large"
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest, "malformed", "malformed push"
	default: // the store failed: answer so that the platform retries
		return http.StatusServiceUnavailable, "unavailable", "temporarily unavailable, retry"
	}
}

// push is what one request became, for its log line and metrics.
type push struct {
	ev     otpbot.Event
	parsed bool
	// known: the event name is one the parser knows (else the metrics
	// label it "unknown", whatever became of it).
	known bool
	// degraded names the fields a code or approval request was delivered
	// without (see verdict).
	degraded []string
	res      otpbot.IngestResult
	client   netip.Addr
}

// serve adapts handle (which returns an error) to HTTP: the error becomes
// the status and a non-ack body, success the platform's acknowledgement.
func (h *Handler) serve(p *provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var ps push
		err := h.handle(w, r, p, &ps)
		code, outcome := http.StatusOK, successOutcome(ps.res)
		if err != nil {
			var msg string
			code, outcome, msg = status(err)
			p.fail(w, code, msg)
		} else {
			p.ack(w)
		}
		event := "unknown"
		if ps.parsed && ps.known {
			event = ps.ev.Name
		}
		h.metrics.pushes.WithLabelValues(string(p.name), event, outcome).Inc()
		h.logPush(r.Context(), p, &ps, code, outcome, time.Since(start), err)
	})
}

// successOutcome names what became of an acknowledged push.
func successOutcome(res otpbot.IngestResult) string {
	switch {
	case res.Duplicate:
		return "duplicate"
	case res.Outcome == "":
		return string(otpbot.OutcomeRecorded)
	}
	return string(res.Outcome)
}

// handle authenticates, reads, parses and ingests one push. Authentication
// comes first: the address and the token before the body is read, the
// signatures before anything of it is parsed.
func (h *Handler) handle(w http.ResponseWriter, r *http.Request, p *provider, ps *push) error {
	now := h.now()
	ps.client = clientAddr(r, h.cfg.TrustedProxies)
	if err := checkAddr(p.allow, ps.client); err != nil {
		return err
	}
	if p.token != "" {
		if err := checkToken(r, p.token); err != nil {
			return err
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: over %d bytes", errTooLarge, tooLarge.Limit)
		}
		return fmt.Errorf("%w: read body: %v", ErrMalformed, err)
	}
	plain, sig, err := p.verify(r, body, now)
	if err != nil {
		return err
	}
	rq := request{received: now, signedAt: sig.at, nonce: sig.nonce, tolerance: p.tolerance}
	parsed, err := p.parse(h.parser, plain, rq)
	if err != nil {
		return err
	}
	ps.ev, ps.parsed, ps.known, ps.degraded = parsed.ev, true, parsed.known, parsed.degraded

	started := time.Now()
	res, err := h.ing.Ingest(r.Context(), ps.ev)
	h.metrics.ingest.WithLabelValues(string(p.name)).Observe(time.Since(started).Seconds())
	if err != nil {
		return fmt.Errorf("%w: ingest: %w", errUnavailable, err)
	}
	ps.res = res
	h.tell(r.Context(), p, ps, now)
	return nil
}

// logPush writes the one log line of a push: never its code, token,
// signature or full card number.
func (h *Handler) logPush(ctx context.Context, p *provider, ps *push, code int, outcome string, took time.Duration, err error) {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("provider", string(p.name)))
	if ps.parsed {
		attrs = append(attrs, slog.String("event", ps.ev.Name), slog.Any("id", otpbot.Ref(ps.ev.ID)))
		if ps.ev.CardLast4 != "" {
			attrs = append(attrs, slog.Any("card", otpbot.CardNumber(ps.ev.CardLast4)))
		}
		if ps.ev.Kind == otpbot.KindRejected {
			attrs = append(attrs, slog.String("reason", ps.ev.Reason))
		}
		if len(ps.degraded) > 0 && ps.ev.Kind.Pushed() {
			attrs = append(attrs, slog.String("degraded", strings.Join(ps.degraded, ",")))
		}
	}
	attrs = append(attrs, slog.String("outcome", outcome), slog.Int("status", code), slog.Duration("duration", took))
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("client", ps.client.String()), slog.String("error", err.Error()))
		level = slog.LevelWarn
		if code >= 500 {
			level = slog.LevelError
		}
	}
	h.log.LogAttrs(ctx, level, "push", attrs...)
}
