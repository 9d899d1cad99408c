package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/templates"
	"github.com/otpbot/otpbot/webhooks"
)

// cmdServe runs the webhook server, the bot and the delivery workers until
// ctx ends (SIGINT/SIGTERM), then shuts down gracefully.
func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadFromFlags(*configFlag, getenv)
	if err != nil {
		return err
	}
	logger := commandLogger(&cfg, stderr)
	return serve(ctx, &cfg, logger)
}

// The ops chat hears of codes delivered without some display fields.
var _ webhooks.DegradedReporter = (*deliver.Ops)(nil)

// errStoppedAtStart says that ctx ended while serve was still waiting for
// the store at start: a stop, not a failure.
var errStoppedAtStart = errors.New("serve: stopped while starting")

// serve is the whole server: build the app once, run it until ctx ends or
// a part of it fails, shut it down (app.run).
func serve(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	a, err := newApp(ctx, cfg, logger)
	if errors.Is(err, errStoppedAtStart) {
		return nil
	}
	if err != nil {
		return err
	}
	return a.run(ctx)
}

// newApp builds what every part of serve shares: templates, metrics, the
// store (open, its installation secret read), ops reports, follow-ups of codes
// and the provider webhooks. The bot's parts are built later, once
// Telegram answers (app.connectBot). On an error nothing stays open.
func newApp(ctx context.Context, cfg *Config, logger *slog.Logger) (*app, error) {
	bi := buildInfo()
	logger.Info("otpbot starting", "version", bi.Version, "store", cfg.Store.Driver, "updates", cfg.Telegram.Updates)

	a := &app{cfg: cfg, log: logger, reg: newRegistry(bi)}
	var err error
	if a.keys, err = loadKeys(cfg); err != nil {
		return nil, err
	}
	if a.tmpl, err = templates.Load(templateOptions(cfg)); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if a.store, err = openStore(ctx, cfg, cfg.Store.Driver, logger); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	logger.Info("store open", "store", a.store.describe)
	// Each chat's language and time zone, for what is sent with no user
	// at hand: code messages, countdowns, follow-ups.
	a.chats = templates.NewChats(templates.ChatsOptions{Set: a.tmpl, Store: a.store, Logger: logger.With("component", "templates")})
	if a.store.redis != nil {
		warnDurability(ctx, a.store.redis, logger)
	}
	if err := a.buildHandlers(ctx); err != nil {
		a.closeStore()
		return nil, err
	}
	return a, nil
}

// buildHandlers builds the parts between the store and the outside: ops
// reports, follow-ups of codes and the provider webhooks, whose
// push identities are keyed by the store's installation secret.
func (a *app) buildHandlers(ctx context.Context) error {
	cfg, logger := a.cfg, a.log
	a.ops = deliver.NewOps(deliver.OpsOptions{
		Queue:    a.store,
		Chat:     otpbot.Target{ChatID: cfg.Telegram.OpsChat},
		Renderer: a.tmpl,
		Logger:   logger.With("component", "ops"),
	})
	idSecret, err := installationSecret(ctx, a.store, logger)
	if err != nil {
		if ctx.Err() != nil {
			return errStoppedAtStart
		}
		return fmt.Errorf("serve: %w", err)
	}
	// FollowUps answers a code message with the later events of its
	// transaction, in the chats that opted in with /replies on.
	followUps, err := bot.NewFollowUps(bot.FollowUpsOptions{
		Store:      a.store,
		Renderer:   a.chats,
		Logger:     logger.With("component", "followups"),
		Registerer: a.reg,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	a.hooks, err = webhooks.New(webhooksConfig(cfg, a.keys, idSecret), a.store, webhooks.Options{
		Logger:     logger.With("component", "webhooks"),
		Registerer: a.reg,
		Reporter:   a.ops,
		FollowUps:  followUps,
	})
	if err != nil {
		return &ConfigError{Msg: err.Error()}
	}
	return nil
}

// routeDeps are what the HTTP routes of this process are built from.
func (a *app) routeDeps() routeDeps {
	cfg := a.cfg
	deps := routeDeps{logger: a.log, providers: a.hooks, store: a.store, registry: a.reg, pprof: cfg.HTTP.Pprof,
		extra: a.extraRoutes, listener: a.listener}
	if cfg.Telegram.Updates == "webhook" {
		u, _ := url.Parse(cfg.Telegram.WebhookURL) // validated
		deps.telegramPath = u.Path
		deps.telegram = http.MaxBytesHandler(&a.updates, cfg.HTTP.MaxBodyBytes)
	}
	if a.store.bolt != nil && cfg.HTTP.AdminBackup {
		deps.backup = a.store.bolt
		deps.adminToken = adminToken(cfg.Telegram.Token)
	}
	return deps
}

// closeStore closes the store, the last thing serve does.
func (a *app) closeStore() {
	if err := a.store.Close(); err != nil {
		a.log.Error("store close failed", "err", err)
	}
}

// webhooksConfig hands the provider settings to the webhooks package as
// plain values.
func webhooksConfig(cfg *Config, keys Keys, idSecret []byte) webhooks.Config {
	u, h := cfg.Providers.UPay, cfg.Providers.HyperCard
	return webhooks.Config{
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		TrustedProxies: prefixes(cfg.HTTP.TrustedProxies),
		UPay: webhooks.UPayConfig{
			Enabled:            u.Enabled,
			Path:               u.Path,
			Token:              u.Token,
			SecretKey:          []byte(u.SecretKey),
			PrivateKey:         keys.UPayPrivate,
			RequireEncryption:  u.RequireEncryption,
			SignatureTolerance: u.SignatureTolerance,
			AllowIPs:           prefixes(u.AllowIPs),
		},
		HyperCard: webhooks.HyperCardConfig{
			Enabled:            h.Enabled,
			Path:               h.Path,
			Token:              h.Token,
			PublicKey:          keys.HyperCardPublic,
			SignatureTolerance: h.SignatureTolerance,
			AllowIPs:           prefixes(h.AllowIPs),
		},
		Codes:       codeConfig(cfg),
		IDSecret:    idSecret,
		AuthResults: validAuthResults(cfg),
	}
}

// installationSecret reads (or, on a new store, creates) the store's secret
// that keys push identities, retrying while the store cannot be reached:
// a Redis that is still starting must not stop otpbot.
func installationSecret(ctx context.Context, store otpbot.SecretStore, logger *slog.Logger) ([]byte, error) {
	backoff := 200 * time.Millisecond
	for {
		key, err := store.InstallationSecret(ctx)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, otpbot.ErrUnavailable) {
			return nil, fmt.Errorf("installation secret: %w", err)
		}
		logger.Warn("store unavailable at start, retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func codeConfig(cfg *Config) webhooks.CodeConfig {
	return webhooks.CodeConfig{TTL: cfg.Codes.TTL, TTLByEvent: cfg.Codes.TTLByEvent}
}

// prefixes parses validated CIDRs.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// newRegistry creates the metrics registry every package registers on,
// with the Go and process collectors and otpbot_build_info.
func newRegistry(bi BuildInfo) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "otpbot_build_info",
		Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{
			"version":   bi.Version,
			"revision":  bi.Revision,
			"goversion": bi.GoVersion,
		},
	})
	info.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info,
	)
	return reg
}

// instanceName names this process for leases: host, pid and a random
// suffix, so that two servers in one process (tests) differ too.
func instanceName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "otpbot"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
