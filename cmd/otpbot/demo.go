package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/gorilla/mux"

	"github.com/otpbot/otpbot/chatpage"
	"github.com/otpbot/otpbot/logs"
)

// cmdDemo runs `otpbot demo`: serve itself — the same webhooks, store,
// deliverer, commands and templates — on the embedded store in a new
// temporary directory, against an in-process fake Bot API (bot/bottest,
// with Telegram's round trip and limits) and a fake HyperCard API
// (hyperpay/hptest), with a chat page at /demo that shows what Telegram
// would. It needs no token, configuration file or network, and reads no
// OTPBOT_* variable: a real bot's settings in the environment must not
// reach the fakes, nor the demo's secrets a real bot. It prints one line,
// the page's address, and removes everything it created when ctx ends.
func cmdDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("otpbot demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the page and the webhooks: loopback only")
	level := fs.String("log-level", "warn", "log level on stderr: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLoopback(*listen); err != nil {
		return err
	}
	if _, err := logs.ParseLevel(*level); err != nil {
		return &usageError{fmt.Sprintf("otpbot demo: -log-level must be debug, info, warn or error (got %q)", *level)}
	}
	dir, err := os.MkdirTemp(getenv("TMPDIR"), "otpbot-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("demo: remove %s: %w", dir, rerr))
		}
	}()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: listen: %w", err)
	}
	defer ln.Close() // closed by serve already, unless it failed to start
	if err := checkLoopback(ln.Addr().String()); err != nil {
		return err // localhost named another address
	}
	env, err := startDemoEnv(dir, ln.Addr(), *level)
	if err != nil {
		return err
	}
	defer env.close()
	return runDemo(ctx, env, ln, commandLogger(&env.cfg, stderr), stdout)
}

// runDemo is serve with the demo's page: the app built as serve builds it,
// the demo's cards linked, the page on http.listen beside the webhooks.
func runDemo(ctx context.Context, env *demoEnv, ln net.Listener, logger *slog.Logger, stdout io.Writer) error {
	a, err := newApp(ctx, &env.cfg, logger)
	if errors.Is(err, errStoppedAtStart) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := env.seed(ctx, a.store); err != nil {
		a.closeStore()
		return err
	}
	pusher := newDemoPusher(&env.cfg, a.keys, env.hcKeyFile, env.base)
	opts := env.pageOptions(pusher)
	opts.Logger = logger.With("component", "demo")
	page, err := chatpage.New(opts)
	if err != nil {
		a.closeStore()
		return fmt.Errorf("demo: %w", err)
	}
	a.extraRoutes = func(r *mux.Router) { r.PathPrefix(chatpage.Prefix).Handler(page) }
	a.listener = ln
	pageCtx, stopPage := context.WithCancel(ctx)
	page.Start(pageCtx)
	logger.Info("demo files", "dir", env.dir)
	fmt.Fprintf(stdout, "otpbot demo: open %s%s\n", env.base, chatpage.Prefix)
	err = a.run(ctx)
	stopPage()
	<-page.Done()
	return err
}

// checkLoopback refuses a -listen address that others could reach: the
// demo's page sends pushes and acts as any of its users, to whoever opens
// it.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &usageError{fmt.Sprintf("otpbot demo: -listen %q: %v", addr, err)}
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return &usageError{fmt.Sprintf("otpbot demo: -listen %q: the demo binds loopback only (127.0.0.1, [::1] or localhost)", addr)}
	}
	return nil
}
