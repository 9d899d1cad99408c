package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/logs"
	"github.com/otpbot/otpbot/templates"
)

// checkTimeout bounds each online check: getMe retries while Telegram is
// unreachable, and check must answer rather than wait forever.
const checkTimeout = 15 * time.Second

// cmdCheck validates the configuration and, unless -offline, reaches the
// store and calls Telegram getMe. It prints one line per thing checked and
// fails (exit 2) at the first problem; what runs but is risky (secrets
// others can read, no admin) is a warning line and exit 0.
func cmdCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("check", stderr)
	offline := fs.Bool("offline", false, "check the configuration only; reach neither the store nor Telegram")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := configPath(*configFlag, getenv)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "config: %s ok (%s)\n", path, summary(&cfg))
	// Worth a warning, not a failed check: otpbot runs, the operator decides.
	for _, w := range configWarnings(path, &cfg) {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	tmpl, err := templates.Load(templateOptions(&cfg))
	if err != nil {
		return &checkError{fmt.Errorf("templates: %w", err)}
	}
	fmt.Fprintf(stdout, "templates: ok (%s; default %s, %s)%s\n", strings.Join(tmpl.Languages(), ", "), tmpl.DefaultLanguage(), tmpl.DefaultZone(),
		map[bool]string{true: " (overrides from " + cfg.Templates.Dir + ")", false: ""}[cfg.Templates.Dir != ""])
	if *offline {
		fmt.Fprintln(stdout, "store: not checked (-offline)")
		fmt.Fprintln(stdout, "telegram: not checked (-offline)")
		return nil
	}

	logger := commandLogger(&cfg, stderr)
	if err := checkStore(ctx, &cfg, stdout, warnLogger(&cfg, stderr)); err != nil {
		return &checkError{err}
	}
	tctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	client, err := telegram.NewClient(tctx, telegram.ClientOptions{Token: cfg.Telegram.Token, Endpoint: cfg.Telegram.APIEndpoint, Logger: logger})
	if err != nil {
		return &checkError{fmt.Errorf("telegram: %w", err)}
	}
	fmt.Fprintf(stdout, "telegram: ok (getMe: @%s)\n", client.Username())
	return nil
}

// checkStore opens the store and pings it. An embedded file held by a
// running serve counts as fine: that server is using it. What the store
// warns about while it opens (a store file others can read) goes to
// logger.
func checkStore(ctx context.Context, cfg *Config, stdout io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if cfg.Store.Driver == "embedded" {
		db, err := probeEmbedded(cfg.Store.Path)
		switch {
		case errors.Is(err, errStoreInUse):
			fmt.Fprintf(stdout, "store: ok (embedded %s, in use by a running otpbot serve)\n", cfg.Store.Path)
			return nil
		case err == nil:
			_ = db.Close()
		case errors.Is(err, fs.ErrNotExist):
			// serve creates the file; check only that it can, rather
			// than create it as a side effect.
			dir := filepath.Dir(cfg.Store.Path)
			f, err := os.CreateTemp(dir, ".otpbot-check-*")
			if err != nil {
				return fmt.Errorf("store: %s does not exist and cannot be created in %s: %w", cfg.Store.Path, dir, errors.Unwrap(err))
			}
			f.Close()
			os.Remove(f.Name())
			fmt.Fprintf(stdout, "store: ok (embedded %s does not exist yet; serve creates it)\n", cfg.Store.Path)
			return nil
		}
		// Anything else shows up when the store opens it below.
	}
	s, err := openStore(ctx, cfg, cfg.Store.Driver, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		return fmt.Errorf("store: %s: %w", s.describe, err)
	}
	fmt.Fprintf(stdout, "store: ok (%s)\n", s.describe)
	if s.redis != nil {
		// A Redis that may lose acknowledged pushes is worth a warning,
		// not a failed check: it runs, and the operator decides.
		rep, err := s.redis.Durability(ctx)
		if err != nil {
			fmt.Fprintf(stdout, "store durability: unknown (%v)\n", err)
			return nil
		}
		fmt.Fprintln(stdout, "store durability: "+rep.String())
		fmt.Fprintln(stdout, "store promise: "+rep.Promise())
		if p := rep.Problem(); p != "" {
			// Not a risk but a failure: every push would get 503.
			return fmt.Errorf("store: %s", p)
		}
		if w := rep.Warning(); w != "" {
			fmt.Fprintln(stdout, "warning: "+w)
		}
	}
	return nil
}

// warnLogger is check's logger for the store: its warnings are what an
// operator running check wants to see, its routine lines are noise next
// to check's own report. It logs at warn, or above when log.level says so.
func warnLogger(cfg *Config, stderr io.Writer) *slog.Logger {
	level := cfg.Log.Level
	if l, err := logs.ParseLevel(level); err != nil || l < slog.LevelWarn {
		level = "warn"
	}
	return logs.New(stderr, level, cfg.Log.Format, secretsOf(cfg)...)
}

// summary describes a valid configuration in one line, without secrets.
func summary(cfg *Config) string {
	var parts []string
	parts = append(parts, "store "+cfg.Store.Driver, "updates "+cfg.Telegram.Updates, "listen "+cfg.HTTP.Listen)
	var prov []string
	if u := cfg.Providers.UPay; u.Enabled {
		prov = append(prov, "upay "+u.Path+" by "+authList(u.Token != "", "token", u.SecretKey != "", "secret_key", u.PrivateKeyFile != "", "private_key_file", len(u.AllowIPs) > 0, "allow_ips"))
	}
	if h := cfg.Providers.HyperCard; h.Enabled {
		prov = append(prov, "hypercard "+h.Path+" by "+authList(h.Token != "", "token", h.PublicKeyFile != "", "public_key_file", len(h.AllowIPs) > 0, "allow_ips"))
	}
	if len(prov) == 0 {
		prov = append(prov, "no provider enabled")
	}
	parts = append(parts, strings.Join(prov, ", "))
	parts = append(parts, fmt.Sprintf("%d admins", len(cfg.Telegram.Admins)))
	return strings.Join(parts, "; ")
}

// authList joins the names whose flag is set: (set, name) pairs.
func authList(pairs ...any) string {
	var names []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].(bool) {
			names = append(names, pairs[i+1].(string))
		}
	}
	return strings.Join(names, "+")
}
