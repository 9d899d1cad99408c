package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/otpbot/otpbot/bot"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/templates"
	"github.com/otpbot/otpbot/webhooks"
)

// app is one `otpbot serve` process: what its parts share, built once by
// newApp, and the parts that run until shutdown.
//
// The HTTP side starts first, so that pushes are stored and acknowledged
// even while Telegram cannot be reached at start; the bot's parts follow
// once getMe succeeds (connectBot). shutdown stops them all, in order.
type app struct {
	cfg   *Config
	log   *slog.Logger
	keys  Keys
	tmpl  *templates.Set
	chats *templates.Chats
	reg   *prometheus.Registry
	store *openedStore
	ops   *deliver.Ops
	hooks *webhooks.Handler
	// updates serves Telegram's webhook updates (telegram.updates:
	// webhook): its route exists from the start, its handler once the bot
	// is up.
	updates lateHandler
	// extraRoutes and listener are set by `otpbot demo` before run: its
	// chat page on http.listen, and that address already open (to refuse
	// a non-loopback one and learn its port). serve leaves them nil.
	extraRoutes func(*mux.Router)
	listener    net.Listener

	// group runs every part; its context ends at the first failure.
	group *errgroup.Group
	// base is what the parts' contexts derive from: ctx's values without
	// its cancellation, since shutdown stops the parts one at a time.
	base context.Context
	// stopping ends when shutdown begins: an error a part returns after
	// that is how it stopped, not a failure.
	stopping  context.Context
	beginStop context.CancelFunc
	http      *httpServers
	// opsRun and connect run from the start; the bot's parts are set by
	// connect, under mu, as Telegram answers.
	opsRun, connect *part
	mu              sync.Mutex
	bot             botParts
}

// botParts are the parts connectBot starts; nil until it does.
type botParts struct {
	deliverer, poller *part
	commands          *bot.Commands
}

// run serves until ctx ends or a part fails, then shuts down. It returns
// the first part's failure, or nil when ctx ended first.
func (a *app) run(ctx context.Context) error {
	group, failed := errgroup.WithContext(ctx)
	a.group = group
	a.base = context.WithoutCancel(ctx)
	a.stopping, a.beginStop = context.WithCancel(a.base)
	defer a.beginStop()

	srv, err := startHTTP(a.base, a.cfg, a.routeDeps(), a.log, a.group)
	if err != nil {
		a.closeStore()
		return err
	}
	a.http = srv
	a.opsRun = a.goPart("ops", a.ops.Run)
	a.connect = a.goPart("bot", a.connectBot)

	<-failed.Done()
	a.shutdown()
	return failure(ctx, failed)
}

// failure is why run stops: the first part's error, or nil when ctx
// ended before any part failed (errgroup cancels its context with the
// error as cause; ctx's own end leaves ctx's cause there).
func failure(ctx, failed context.Context) error {
	cause := context.Cause(failed)
	if ctx.Err() != nil && cause == context.Cause(ctx) {
		return nil
	}
	return cause
}

// part is a long-running part of the process, under a context of its own
// so that shutdown stops each in its turn.
type part struct {
	stop context.CancelFunc
	// done is closed when the part returned.
	done chan struct{}
}

// goPart starts f in the group. An error f returns before shutdown began
// is logged as "NAME stopped" and stops the process.
func (a *app) goPart(name string, f func(context.Context) error) *part {
	ctx, stop := context.WithCancel(a.base)
	p := &part{stop: stop, done: make(chan struct{})}
	a.group.Go(func() error {
		defer close(p.done)
		defer stop()
		if err := f(ctx); err != nil && a.stopping.Err() == nil {
			a.log.Error(name+" stopped", "err", err)
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	return p
}

// botParts returns what connectBot has started so far.
func (a *app) botParts() botParts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bot
}

// setBot records what connectBot started, for shutdown.
func (a *app) setBot(f func(*botParts)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.bot)
}

// lateHandler answers 503 until its handler is set: Telegram retries an
// update it could not deliver, so none is lost while getMe still fails.
type lateHandler struct {
	h atomic.Pointer[http.Handler]
}

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := l.h.Load()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}
