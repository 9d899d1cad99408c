package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot"
	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/store/redis"
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

// serve is the whole server. The HTTP side starts first, so that pushes
// are stored and acknowledged even while Telegram cannot be reached at
// start; the bot side follows once getMe succeeds.
// The ops chat hears of codes delivered without some display fields.
var _ webhooks.DegradedReporter = (*bot.Ops)(nil)

func serve(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	bi := buildInfo()
	logger.Info("otpbot starting", "version", bi.Version, "store", cfg.Store.Driver, "updates", cfg.Telegram.Updates)

	keys, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	tmpl, err := templates.New(cfg.Templates.Dir)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	reg := newRegistry(bi)

	store, err := openStore(ctx, cfg, cfg.Store.Driver, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("store close failed", "err", err)
		}
	}()
	logger.Info("store open", "store", store.describe)
	if store.redis != nil {
		warnDurability(ctx, store.redis, logger)
	}

	ops := bot.NewOps(bot.OpsOptions{
		Queue:    store,
		Chat:     otpbot.Target{ChatID: cfg.Telegram.OpsChat},
		Renderer: tmpl,
		Logger:   logger.With("component", "ops"),
	})
	idKey, err := installationKey(ctx, store, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	}
	// Threads answers a code message with the later events of its
	// transaction, in the chats that opted in with /replies on.
	threads, err := bot.NewThreads(bot.ThreadsOptions{
		Store:      store,
		Renderer:   tmpl,
		Logger:     logger.With("component", "threads"),
		Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	wh, err := webhooks.New(webhooksConfig(cfg, keys, idKey), store, webhooks.Options{
		Logger:     logger.With("component", "webhooks"),
		Registerer: reg,
		Reporter:   ops,
		Threads:    threads,
	})
	if err != nil {
		return &ConfigError{Msg: err.Error()}
	}

	// The Telegram update endpoint exists from the start but answers 503
	// until the bot is up: Telegram retries.
	var updates atomic.Pointer[http.Handler]
	deps := routeDeps{logger: logger, providers: wh, store: store, registry: reg, pprof: cfg.HTTP.Pprof}
	if cfg.Telegram.Updates == "webhook" {
		u, _ := url.Parse(cfg.Telegram.WebhookURL) // validated
		deps.telegramPath = u.Path
		deps.telegram = http.MaxBytesHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := updates.Load()
			if h == nil {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			(*h).ServeHTTP(w, r)
		}), cfg.HTTP.MaxBodyBytes)
	}
	if store.bolt != nil && cfg.HTTP.AdminBackup {
		deps.backup = store.bolt
		deps.adminToken = adminToken(cfg.Telegram.Token)
	}

	srv, err := startHTTP(ctx, cfg, deps, logger)
	if err != nil {
		return err
	}

	// From here on, everything that runs is stopped by shutdown.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	var runErr error
	var runErrOnce sync.Once
	fail := func(err error) {
		runErrOnce.Do(func() { runErr = err })
		stopRun()
	}
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				logger.Error(name+" stopped", "err", err)
				fail(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	// delivererDone is closed when the deliverer's Run returned (or when
	// the bot never started it): the store is closed only after that,
	// since the deliverer's last writes hand unfinished jobs back.
	delivererDone := make(chan struct{})
	goRun("ops", ops.Run)
	goRun("bot", func(ctx context.Context) error {
		return startBot(ctx, cfg, keys, logger, reg, store, tmpl, ops, &updates, goRun, delivererDone)
	})

	select {
	case <-runCtx.Done():
	case err := <-srv.errs:
		fail(fmt.Errorf("serve: http: %w", err))
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	stopping := time.Now()
	err = shutdown(cfg, logger, srv, &wg, runErr, stopRun)
	waitDeliverer(delivererDone, stopping.Add(drainTimeout(cfg.ShutdownTimeout)+bot.DrainGrace+time.Second), logger)
	return err
}

// waitDeliverer waits until the deliverer returned: it promises to within
// DrainTimeout + DrainGrace of the shutdown's start, inside
// shutdown_timeout, so this normally does not wait at all. The deadline
// is a backstop against a deliverer that broke that promise: a process
// that never exits would be worse than a store closed under a late write
// (which the store's transactions make harmless: an unfinished job stays
// leased and is taken over after its lease).
func waitDeliverer(done <-chan struct{}, deadline time.Time, logger *slog.Logger) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		logger.Warn("deliverer still running past its drain deadline; closing the store anyway")
	}
}

// shutdown stops accepting requests, lets in-flight requests and Telegram
// calls finish, and gives up after shutdown_timeout: what was not sent
// stays in the outbox for the next start.
func shutdown(cfg *Config, logger *slog.Logger, srv *httpServers, wg *sync.WaitGroup, runErr error, stopRun context.CancelFunc) error {
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	stopRun()
	httpErr := srv.Shutdown(sctx)
	if httpErr != nil {
		logger.Warn("http shutdown incomplete", "err", httpErr)
		srv.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		logger.Warn("shutdown timeout: leaving unfinished work in the outbox")
	}
	logger.Info("stopped")
	return runErr
}

// startBot connects to Telegram (retrying getMe while it is unreachable)
// and starts the deliverer and the update source. delivererDone is closed
// when the deliverer's Run returns, or at once when startBot returns
// without having started it.
func startBot(ctx context.Context, cfg *Config, keys Keys, logger *slog.Logger, reg prometheus.Registerer,
	store *openedStore, tmpl *templates.Set, ops *bot.Ops, updates *atomic.Pointer[http.Handler],
	goRun func(string, func(context.Context) error), delivererDone chan<- struct{}) error {
	started := false
	defer func() {
		if !started {
			close(delivererDone)
		}
	}()
	client, err := bot.NewClient(ctx, bot.ClientOptions{
		Token:      cfg.Telegram.Token,
		Endpoint:   cfg.Telegram.APIEndpoint,
		Logger:     logger.With("component", "telegram"),
		Registerer: reg,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	logger.Info("telegram connected", "bot", client.Username())

	approvals, err := newApprovals(cfg, keys, store, logger, reg)
	if err != nil {
		return err
	}
	var buttons func(otpbot.Message) [][]bot.Button
	if approvals != nil {
		buttons = approvals.Buttons
	}
	limiter := newBudget(cfg, store, logger)
	dopts := delivererOptions(cfg)
	dopts.Store, dopts.Client, dopts.Renderer, dopts.Limiter = store, client, tmpl, limiter
	dopts.Logger, dopts.Registerer, dopts.Ops, dopts.Buttons = logger.With("component", "deliver"), reg, ops, buttons
	deliverer, err := bot.NewDeliverer(dopts)
	if err != nil {
		return err
	}
	commands, err := bot.NewCommands(bot.CommandsOptions{
		Store:      store,
		Client:     client,
		Templates:  tmpl,
		Admins:     cfg.Telegram.Admins,
		Logger:     logger.With("component", "commands"),
		Username:   client.Username,
		Registerer: reg,
		Approvals:  approvals,
		Budget:     limiter,
	})
	if err != nil {
		return err
	}
	goRun("replies", func(ctx context.Context) error {
		// At shutdown the replies already queued get as long as the
		// deliverer's calls.
		<-ctx.Done()
		drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout(cfg.ShutdownTimeout))
		defer cancel()
		commands.Close(drain)
		return nil
	})
	started = true
	goRun("deliverer", func(ctx context.Context) error {
		defer close(delivererDone)
		return deliverer.Run(ctx)
	})

	switch cfg.Telegram.Updates {
	case "webhook":
		h := bot.NewWebhookHandler(cfg.Telegram.WebhookSecret, commands, store, logger.With("component", "updates"), reg)
		updates.Store(&h)
		if err := setWebhook(ctx, client, cfg, logger); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	default:
		if err := client.DeleteWebhook(ctx); err != nil {
			// getUpdates answers 409 while a webhook is set; the poller
			// logs that and keeps trying, so this is only worth a warning.
			logger.Warn("deleteWebhook failed", "err", err)
		}
		poller, err := bot.NewPoller(bot.PollerOptions{
			Client:     client,
			Handler:    commands,
			Coord:      store,
			Owner:      instanceName(),
			Logger:     logger.With("component", "updates"),
			Registerer: reg,
		})
		if err != nil {
			return err
		}
		goRun("poller", poller.Run)
	}
	return nil
}

// delivererOptions maps the configuration to the deliverer's settings;
// startBot adds the dependencies.
func delivererOptions(cfg *Config) bot.DelivererOptions {
	return bot.DelivererOptions{
		CountdownInterval: cfg.Codes.CountdownInterval,
		Workers:           workers(cfg),
		Lease:             cfg.Delivery.Lease,
		Reserve:           cfg.Delivery.Reserve,
		RefreshTimeout:    cfg.Delivery.RefreshTimeout,
		DrainTimeout:      drainTimeout(cfg.ShutdownTimeout),
	}
}

// drainTimeout is how long the deliverer's Telegram calls may go on once
// shutdown began: shutdown_timeout less DrainGrace (the store writes that
// hand the cut-off jobs back to the outbox) and a second of margin, or half
// of shutdown_timeout when it is too short for that. A call cut off there
// leaves its job due at once, so the next start sends it without waiting
// for the lease to run out.
func drainTimeout(shutdown time.Duration) time.Duration {
	return max(shutdown-bot.DrainGrace-time.Second, shutdown/2)
}

// newApprovals builds the answering of HyperCard approval requests when
// providers.hypercard.api is configured; nil otherwise (requests are then
// shown without buttons).
func newApprovals(cfg *Config, keys Keys, store *openedStore, logger *slog.Logger, reg prometheus.Registerer) (*bot.Approvals, error) {
	h := cfg.Providers.HyperCard
	if !h.Enabled || h.API.BaseURL == "" {
		return nil, nil
	}
	client, err := hyperpay.NewClient(hyperpay.ClientConfig{
		BaseURL:    h.API.BaseURL,
		APIKey:     h.API.APIKey,
		PrivateKey: keys.HyperCardAPI,
		Version:    h.API.Version,
		Timeout:    h.API.Timeout,
		Logger:     logger.With("component", "hyperpay"),
	})
	if err != nil {
		return nil, &ConfigError{Key: "providers.hypercard.api", Msg: err.Error()}
	}
	return bot.NewApprovals(bot.ApprovalOptions{
		Approver:      client,
		Store:         store,
		ApproveResult: h.API.ApproveResult,
		DeclineResult: h.API.DeclineResult,
		Timeout:       h.API.Timeout,
		AllowedUsers:  h.API.AllowedUsers,
		Retryable:     hyperpay.Retryable,
		Logger:        logger.With("component", "approvals"),
		Registerer:    reg,
	})
}

// setWebhook registers the webhook URL with Telegram, retrying while
// Telegram is unreachable. Neither the URL (its path is a secret) nor the
// secret is logged.
func setWebhook(ctx context.Context, client *bot.Client, cfg *Config, logger *slog.Logger) error {
	backoff := 500 * time.Millisecond
	for {
		err := client.SetWebhook(ctx, cfg.Telegram.WebhookURL, cfg.Telegram.WebhookSecret)
		if err == nil {
			logger.Info("telegram webhook set")
			return nil
		}
		if c := bot.ClassOf(err); c == bot.ClassBadRequest || c == bot.ClassGone {
			return fmt.Errorf("setWebhook: %w", err)
		}
		logger.Warn("setWebhook failed, retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// limiterOptions maps telegram.rate to the rate budget. The rates are
// sustained exactly; the global burst (a sixth of the rate) is what goes at
// once after a quiet spell, well within what Telegram tolerates.
func limiterOptions(cfg *Config, logger *slog.Logger) bot.LimiterOptions {
	r := cfg.Telegram.Rate
	return bot.LimiterOptions{
		GlobalPerSec:  r.GlobalPerSecond,
		GlobalBurst:   max(1, int(r.GlobalPerSecond/6)),
		ChatPerSec:    r.PerChatPerSecond,
		ChatBurst:     r.PerChatBurst,
		GroupPerMin:   r.GroupPerMinute,
		MaxRetryAfter: r.MaxRetryAfter,
		Logger:        logger.With("component", "limiter"),
	}
}

// newBudget is the bot's one rate budget: in Redis when the store is, so
// that every process on it keeps to the bot's limits together; in this
// process otherwise.
func newBudget(cfg *Config, store *openedStore, logger *slog.Logger) bot.Budget {
	opts := limiterOptions(cfg, logger)
	if store.client != nil {
		return bot.NewRedisLimiter(store.client, redis.Base(cfg.Store.Redis.Prefix), opts)
	}
	return bot.NewLimiter(opts)
}

// workers is delivery.workers, or, when 0, two seconds' worth of the global
// rate (at least 8): enough calls in flight to keep the full rate while
// each takes a round trip to Telegram of up to two seconds.
func workers(cfg *Config) int {
	if w := cfg.Delivery.Workers; w > 0 {
		return w
	}
	return max(8, int(math.Ceil(2*cfg.Telegram.Rate.GlobalPerSecond)))
}

// webhooksConfig hands the provider settings to the webhooks package as
// plain values.
func webhooksConfig(cfg *Config, keys Keys, idKey []byte) webhooks.Config {
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
		IDKey:       idKey,
		AuthResults: validAuthResults(cfg),
	}
}

// installationKey reads (or, on a new store, creates) the store's secret
// that keys push identities, retrying while the store cannot be reached:
// a Redis that is still starting must not stop otpbot.
func installationKey(ctx context.Context, store otpbot.KeyStore, logger *slog.Logger) ([]byte, error) {
	backoff := 200 * time.Millisecond
	for {
		key, err := store.InstallationKey(ctx)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, otpbot.ErrUnavailable) {
			return nil, fmt.Errorf("installation key: %w", err)
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
