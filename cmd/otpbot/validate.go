package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/otpbot/otpbot/logs"
	"github.com/otpbot/otpbot/templates"
)

// validateConfig checks everything that can be checked without the network
// (this is `otpbot check -offline`) and returns the first problem, naming
// its key. Key files are read and parsed here so that a broken key stops
// the start rather than the first push.
func validateConfig(cfg *Config) error {
	checks := []func(*Config) error{
		validateLog, validateTelegram, validateHTTP, validateStore,
		validateProviders, validateCodes, validateRest,
	}
	for _, check := range checks {
		if err := check(cfg); err != nil {
			return err
		}
	}
	return nil
}

func validateLog(cfg *Config) error {
	if _, err := logs.ParseLevel(cfg.Log.Level); err != nil {
		return cfgErr("log.level", "must be debug, info, warn or error (got %q)", cfg.Log.Level)
	}
	if !logs.ValidFormat(cfg.Log.Format) {
		return cfgErr("log.format", "must be text or json (got %q)", cfg.Log.Format)
	}
	return nil
}

func validateTelegram(cfg *Config) error {
	t := cfg.Telegram
	if strings.TrimSpace(t.Token) == "" {
		return cfgErr("telegram.token", "is required")
	}
	if strings.ContainsAny(t.Token, " \t\r\n/") {
		// Never echo the token: say only what is wrong with it.
		return cfgErr("telegram.token", "is malformed (it contains whitespace or '/')")
	}
	if t.APIEndpoint != "" {
		if strings.Count(t.APIEndpoint, "%s") != 2 {
			return cfgErr("telegram.api_endpoint", "must contain two %%s (token, method), e.g. http://host:port/bot%%s/%%s")
		}
		if u, err := url.Parse(strings.ReplaceAll(t.APIEndpoint, "%s", "x")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgErr("telegram.api_endpoint", "must be an http(s) URL")
		}
	}
	switch t.Updates {
	case "polling":
	case "webhook":
		if t.WebhookURL == "" {
			return cfgErr("telegram.webhook_url", "is required when telegram.updates is webhook")
		}
		u, err := url.Parse(t.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgErr("telegram.webhook_url", "must be an absolute http(s) URL")
		}
		if u.Path == "" || u.Path == "/" {
			return cfgErr("telegram.webhook_url", "must have a path (otpbot serves Telegram updates there)")
		}
		if t.WebhookSecret == "" {
			return cfgErr("telegram.webhook_secret", "is required when telegram.updates is webhook")
		}
		if !validSecretToken(t.WebhookSecret) {
			return cfgErr("telegram.webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
		}
	default:
		return cfgErr("telegram.updates", "must be polling or webhook (got %q)", t.Updates)
	}
	for key, x := range map[string]float64{
		"telegram.rate.global_per_second":   t.Rate.GlobalPerSecond,
		"telegram.rate.per_chat_per_second": t.Rate.PerChatPerSecond,
		"telegram.rate.group_per_minute":    t.Rate.GroupPerMinute,
	} {
		if x <= 0 {
			return cfgErr(key, "must be positive")
		}
	}
	if t.Rate.PerChatBurst < 1 {
		return cfgErr("telegram.rate.per_chat_burst", "must be at least 1 (got %d)", t.Rate.PerChatBurst)
	}
	return positive("telegram.rate.max_retry_after", t.Rate.MaxRetryAfter)
}

// validSecretToken follows setWebhook's rule for secret_token.
func validSecretToken(s string) bool {
	if len(s) < 1 || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validateHTTP(cfg *Config) error {
	h := cfg.HTTP
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return cfgErr("http.listen", "must be host:port (got %q)", h.Listen)
	}
	if h.AdminListen != "" {
		if _, _, err := net.SplitHostPort(h.AdminListen); err != nil {
			return cfgErr("http.admin_listen", "must be host:port or empty (got %q)", h.AdminListen)
		}
		if _, port, _ := net.SplitHostPort(h.AdminListen); h.AdminListen == h.Listen && port != "0" {
			return cfgErr("http.admin_listen", "must differ from http.listen (got %q for both)", h.Listen)
		}
	}
	if h.MaxBodyBytes <= 0 {
		return cfgErr("http.max_body_bytes", "must be positive")
	}
	if err := validCIDRs("http.trusted_proxies", h.TrustedProxies); err != nil {
		return err
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": h.ReadHeaderTimeout,
		"http.read_timeout":        h.ReadTimeout,
		"http.write_timeout":       h.WriteTimeout,
		"http.idle_timeout":        h.IdleTimeout,
	} {
		if err := positive(key, d); err != nil {
			return err
		}
	}
	return nil
}

func validateStore(cfg *Config) error {
	s := cfg.Store
	switch s.Driver {
	case "embedded":
		if strings.TrimSpace(s.Path) == "" {
			return cfgErr("store.path", "is required when store.driver is embedded")
		}
	case "redis":
		return validateRedis(&cfg.Store.Redis)
	default:
		return cfgErr("store.driver", "must be embedded or redis (got %q)", s.Driver)
	}
	return nil
}

func validateProviders(cfg *Config) error {
	u, h := cfg.Providers.UPay, cfg.Providers.HyperCard
	paths := map[string]string{}
	if u.Enabled {
		if err := validPath("providers.upay.path", u.Path); err != nil {
			return err
		}
		paths[u.Path] = "providers.upay.path"
		if u.Token == "" && u.SecretKey == "" {
			return cfgErr("providers.upay", "is enabled but has no authentication: set providers.upay.token or providers.upay.secret_key (or disable it)")
		}
		if u.RequireEncryption && u.PrivateKeyFile == "" {
			return cfgErr("providers.upay.private_key_file", "is required when providers.upay.require_encryption is true")
		}
		if err := positive("providers.upay.signature_tolerance", u.SignatureTolerance); err != nil {
			return err
		}
		if err := validCIDRs("providers.upay.allow_ips", u.AllowIPs); err != nil {
			return err
		}
	}
	if h.Enabled {
		if err := validPath("providers.hypercard.path", h.Path); err != nil {
			return err
		}
		if other, dup := paths[h.Path]; dup {
			return cfgErr("providers.hypercard.path", "is the same as %s", other)
		}
		paths[h.Path] = "providers.hypercard.path"
		if h.Token == "" && h.PublicKeyFile == "" {
			return cfgErr("providers.hypercard", "is enabled but has no authentication: set providers.hypercard.token or providers.hypercard.public_key_file (or disable it)")
		}
		if err := positive("providers.hypercard.signature_tolerance", h.SignatureTolerance); err != nil {
			return err
		}
		if err := validCIDRs("providers.hypercard.allow_ips", h.AllowIPs); err != nil {
			return err
		}
		if err := validateHyperCardAPI(h.API); err != nil {
			return err
		}
		if err := validateAuthResults(cfg); err != nil {
			return err
		}
	}
	if cfg.Telegram.Updates == "webhook" {
		if u, err := url.Parse(cfg.Telegram.WebhookURL); err == nil {
			if other, dup := paths[u.Path]; dup {
				return cfgErr("telegram.webhook_url", "has the same path as %s", other)
			}
		}
	}
	if _, err := loadKeys(cfg); err != nil {
		return err
	}
	return nil
}

// validateHyperCardAPI checks providers.hypercard.api when it is in use.
func validateHyperCardAPI(a HyperCardAPI) error {
	if a.BaseURL == "" {
		return nil
	}
	u, err := url.Parse(a.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return cfgErr("providers.hypercard.api.base_url", "must be an http(s) URL with a host and no query")
	}
	if a.APIKey == "" {
		return cfgErr("providers.hypercard.api.api_key", "is required when providers.hypercard.api.base_url is set")
	}
	if a.PrivateKeyFile == "" {
		return cfgErr("providers.hypercard.api.private_key_file", "is required when providers.hypercard.api.base_url is set")
	}
	for key, r := range map[string]int{"providers.hypercard.api.approve_result": a.ApproveResult, "providers.hypercard.api.decline_result": a.DeclineResult} {
		if r != 2 && r != 3 {
			return cfgErr(key, "must be 2 or 3 (got %d)", r)
		}
	}
	if a.ApproveResult == a.DeclineResult {
		return cfgErr("providers.hypercard.api.decline_result", "must differ from providers.hypercard.api.approve_result")
	}
	return positive("providers.hypercard.api.timeout", a.Timeout)
}

func validateCodes(cfg *Config) error {
	c := cfg.Codes
	if err := positive("codes.ttl", c.TTL); err != nil {
		return err
	}
	for name, d := range c.TTLByEvent {
		if d <= 0 {
			return cfgErr("codes.ttl_by_event", "%s must be positive", name)
		}
	}
	return positive("codes.countdown_interval", c.CountdownInterval)
}

func validateRest(cfg *Config) error {
	if cfg.History.PerKey <= 0 {
		return cfgErr("history.per_key", "must be positive")
	}
	if err := positive("history.retention", cfg.History.Retention); err != nil {
		return err
	}
	if cfg.Delivery.Workers < 0 {
		return cfgErr("delivery.workers", "must be 0 (sized to the rate) or positive")
	}
	if err := positive("delivery.lease", cfg.Delivery.Lease); err != nil {
		return err
	}
	if r, w := cfg.Delivery.Reserve, workers(cfg); r < 0 || (r > 0 && r >= w) {
		return cfgErr("delivery.reserve", "must be 0 (automatic) or fewer than delivery.workers (%d) (got %d)", w, r)
	}
	if err := positive("delivery.refresh_timeout", cfg.Delivery.RefreshTimeout); err != nil {
		return err
	}
	if err := positive("dedupe_window", cfg.DedupeWindow); err != nil {
		return err
	}
	// A replayed signed request must still be inside the dedupe window when
	// its signature is still accepted, or it would be delivered again.
	tolerances := []struct {
		key     string
		enabled bool
		d       time.Duration
	}{
		{"providers.upay.signature_tolerance", cfg.Providers.UPay.Enabled, cfg.Providers.UPay.SignatureTolerance},
		{"providers.hypercard.signature_tolerance", cfg.Providers.HyperCard.Enabled, cfg.Providers.HyperCard.SignatureTolerance},
	}
	for _, t := range tolerances {
		if t.enabled && cfg.DedupeWindow <= t.d {
			return cfgErr("dedupe_window", "(%s) must exceed %s (%s), so that a replayed request is only ever a repeat", cfg.DedupeWindow, t.key, t.d)
		}
	}
	if err := positive("shutdown_timeout", cfg.ShutdownTimeout); err != nil {
		return err
	}
	return validateTemplates(cfg)
}

// validateTemplates checks the templates section (render needs it too):
// the folder, the default language among the languages available, the
// time zone.
func validateTemplates(cfg *Config) error {
	t := cfg.Templates
	if t.Dir != "" {
		st, err := os.Stat(t.Dir)
		if err != nil || !st.IsDir() {
			return cfgErr("templates.dir", "is not a readable folder (%q)", t.Dir)
		}
	}
	if err := templates.CheckDefaultLanguage(t.Dir, t.DefaultLanguage); errors.Is(err, templates.ErrDefaultLanguage) {
		return cfgErr("templates.default_language", "%q has no templates: use en, ru, zh, es, pt-BR, tr, or add a folder of its templates to templates.dir", t.DefaultLanguage)
	} else if err != nil {
		return cfgErr("templates.dir", "%v", err)
	}
	if _, err := templates.LoadZone(t.TimeZone); err != nil {
		return cfgErr("templates.timezone", "is not an IANA time zone such as Europe/Madrid (%q)", t.TimeZone)
	}
	return nil
}

// templateOptions are the templates the configuration asks for.
func templateOptions(cfg *Config) templates.Options {
	h := cfg.Providers.HyperCard
	return templates.Options{Dir: cfg.Templates.Dir, DefaultLanguage: cfg.Templates.DefaultLanguage,
		TimeZone: cfg.Templates.TimeZone, Answers: h.Enabled && h.API.BaseURL != ""}
}

func positive(key string, d time.Duration) error {
	if d <= 0 {
		return cfgErr(key, "must be a positive duration (got %s)", d)
	}
	return nil
}

func validPath(key, p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# ") {
		return cfgErr(key, "must be a URL path starting with / (got %q)", p)
	}
	return nil
}

// validCIDRs accepts CIDRs and, as an operator would expect, single
// addresses (a host route).
func validCIDRs(key string, list []string) error {
	for _, s := range list {
		if _, err := parsePrefix(s); err != nil {
			return cfgErr(key, "has %q, which is not a CIDR (e.g. 203.0.113.0/24) or an IP address", s)
		}
	}
	return nil
}

// parsePrefix parses a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse %q: %w", s, err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Keys are the parsed key files of the providers.
type Keys struct {
	// UPayPrivate decrypts JWE-encrypted UPay bodies; nil when not set.
	UPayPrivate *rsa.PrivateKey
	// HyperCardPublic verifies HyperCard's signatures; nil when not set.
	HyperCardPublic *rsa.PublicKey
	// HyperCardAPI signs requests to HyperCard's API; nil when not set.
	HyperCardAPI *rsa.PrivateKey
}

// loadKeys reads and parses the key files of the enabled providers.
func loadKeys(cfg *Config) (Keys, error) {
	var k Keys
	if u := cfg.Providers.UPay; u.Enabled && u.PrivateKeyFile != "" {
		key, err := readPrivateKey(u.PrivateKeyFile)
		if err != nil {
			return Keys{}, cfgErr("providers.upay.private_key_file", "%v", err)
		}
		k.UPayPrivate = key
	}
	if h := cfg.Providers.HyperCard; h.Enabled && h.PublicKeyFile != "" {
		key, err := readPublicKey(h.PublicKeyFile)
		if err != nil {
			return Keys{}, cfgErr("providers.hypercard.public_key_file", "%v", err)
		}
		k.HyperCardPublic = key
	}
	if a := cfg.Providers.HyperCard.API; cfg.Providers.HyperCard.Enabled && a.BaseURL != "" && a.PrivateKeyFile != "" {
		key, err := readPrivateKey(a.PrivateKeyFile)
		if err != nil {
			return Keys{}, cfgErr("providers.hypercard.api.private_key_file", "%v", err)
		}
		k.HyperCardAPI = key
	}
	return k, nil
}

func readPEM(path string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", errors.Unwrap(err))
	}
	block, _ := pem.Decode(data)
	if block == nil {
		// HyperCard's merchant platform shows keys as bare Base64; accept
		// that too by wrapping it.
		block, _ = pem.Decode([]byte("-----BEGIN PUBLIC KEY-----\n" + strings.TrimSpace(string(data)) + "\n-----END PUBLIC KEY-----\n"))
		if block == nil {
			return nil, fmt.Errorf("is not PEM (%s)", path)
		}
	}
	return block, nil
}

// readPrivateKey parses an RSA private key in PKCS#1 or PKCS#8 PEM.
func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not an RSA private key in PEM (PKCS#1 or PKCS#8) (%s)", path)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("holds a %T, not an RSA private key (%s)", parsed, path)
	}
	return key, nil
}

// readPublicKey parses an RSA public key in PKIX or PKCS#1 PEM, or a
// certificate carrying one.
func readPublicKey(path string) (*rsa.PublicKey, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if key, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return key, nil
	}
	var parsed any
	if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
		parsed = cert.PublicKey
	} else if parsed, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return nil, fmt.Errorf("is not an RSA public key in PEM (PKIX, PKCS#1 or a certificate) (%s)", path)
	}
	key, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("holds a %T, not an RSA public key (%s)", parsed, path)
	}
	return key, nil
}

// secretsOf lists the configured secrets, for the log redactor.
func secretsOf(cfg *Config) []string {
	s := []string{
		cfg.Telegram.Token, cfg.Telegram.WebhookSecret, cfg.Store.Redis.Password, cfg.Store.Redis.Sentinel.Password,
		cfg.Providers.UPay.Token, cfg.Providers.UPay.SecretKey, cfg.Providers.HyperCard.Token,
		cfg.Providers.HyperCard.API.APIKey,
	}
	// The webhook path is a secret too (docs/contract.md#http-endpoints).
	if cfg.Telegram.WebhookURL != "" {
		if u, err := url.Parse(cfg.Telegram.WebhookURL); err == nil && len(u.Path) > 1 {
			s = append(s, u.Path)
		}
	}
	return s
}
