package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/templates"
)

// connectBot connects to Telegram (retrying getMe while it is
// unreachable), then builds and starts the bot's parts: the deliverer,
// the commands and the update source. It runs as the part "bot" and
// returns once they run.
func (a *app) connectBot(ctx context.Context) error {
	cfg, logger := a.cfg, a.log
	client, err := telegram.NewClient(ctx, telegram.ClientOptions{
		Token:      cfg.Telegram.Token,
		Endpoint:   cfg.Telegram.APIEndpoint,
		Logger:     logger.With("component", "telegram"),
		Registerer: a.reg,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	logger.Info("telegram connected", "bot", client.Username())

	approvals, err := newApprovals(cfg, a.keys, a.store, logger, a.reg)
	if err != nil {
		return err
	}
	var buttons func(*templates.Locale, otpbot.Message) [][]telegram.Button
	if approvals != nil {
		buttons = approvals.Buttons
	}
	limiter := newBudget(cfg, a.store, logger)
	dopts := delivererOptions(cfg)
	dopts.Store, dopts.Client, dopts.Renderer, dopts.Limiter = a.store, client, a.chats, limiter
	if a.store.client != nil {
		// Processes sharing Redis claim each countdown step there.
		dopts.RefreshClaims = a.store
	}
	dopts.Logger, dopts.Registerer, dopts.Ops, dopts.ExtraButtons = logger.With("component", "deliver"), a.reg, a.ops, buttons
	deliverer, err := deliver.NewDeliverer(dopts)
	if err != nil {
		return err
	}
	commands, err := bot.NewCommands(bot.CommandsOptions{
		Store:      a.store,
		Client:     client,
		Templates:  a.tmpl,
		Chats:      a.chats,
		Admins:     cfg.Telegram.Admins,
		Logger:     logger.With("component", "commands"),
		Username:   client.Username,
		Registerer: a.reg,
		Approvals:  approvals,
		Budget:     limiter,
	})
	if err != nil {
		return err
	}
	a.setBot(func(b *botParts) {
		b.commands = commands
		b.deliverer = a.goPart("deliverer", deliverer.Run)
	})
	// The command menus, refreshed at every start: the configuration
	// (telegram.admins, the languages) may have changed.
	a.goPart("menu", func(ctx context.Context) error {
		if err := commands.RegisterMenu(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("command menu not set", "err", err)
		}
		return nil
	})
	return a.startUpdates(ctx, client, commands)
}

// startUpdates starts the update source telegram.updates names: the
// webhook handler (and setWebhook, retried while Telegram is unreachable),
// or the poller (after deleteWebhook).
func (a *app) startUpdates(ctx context.Context, client *telegram.Client, commands *bot.Commands) error {
	cfg, logger := a.cfg, a.log
	if cfg.Telegram.Updates == "webhook" {
		a.updates.set(telegram.NewWebhookHandler(cfg.Telegram.WebhookSecret, commands, a.store, logger.With("component", "updates"), a.reg))
		if err := setWebhook(ctx, client, cfg, logger); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		return nil
	}
	if err := client.DeleteWebhook(ctx); err != nil {
		// getUpdates answers 409 while a webhook is set; the poller
		// logs that and keeps trying, so this is only worth a warning.
		logger.Warn("deleteWebhook failed", "err", err)
	}
	poller, err := telegram.NewPoller(telegram.PollerOptions{
		Client:     client,
		Handler:    commands,
		Coord:      a.store,
		Owner:      instanceName(),
		Logger:     logger.With("component", "updates"),
		Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	a.setBot(func(b *botParts) { b.poller = a.goPart("poller", poller.Run) })
	return nil
}

// delivererOptions maps the configuration to the deliverer's settings;
// connectBot adds the dependencies.
func delivererOptions(cfg *Config) deliver.DelivererOptions {
	return deliver.DelivererOptions{
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
	return max(shutdown-deliver.DrainGrace-time.Second, shutdown/2)
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
func setWebhook(ctx context.Context, client *telegram.Client, cfg *Config, logger *slog.Logger) error {
	backoff := 500 * time.Millisecond
	for {
		err := client.SetWebhook(ctx, cfg.Telegram.WebhookURL, cfg.Telegram.WebhookSecret)
		if err == nil {
			logger.Info("telegram webhook set")
			return nil
		}
		if c := telegram.ClassOf(err); c == telegram.ClassBadRequest || c == telegram.ClassGone {
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
func limiterOptions(cfg *Config, logger *slog.Logger) telegram.LimiterOptions {
	r := cfg.Telegram.Rate
	return telegram.LimiterOptions{
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
func newBudget(cfg *Config, store *openedStore, logger *slog.Logger) telegram.Budget {
	opts := limiterOptions(cfg, logger)
	if store.client != nil {
		return telegram.NewRedisLimiter(store.client, redis.Base(cfg.Store.Redis.Prefix), opts)
	}
	return telegram.NewLimiter(opts)
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
