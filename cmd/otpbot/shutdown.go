package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/otpbot/otpbot/bot/deliver"
)

// shutdown stops the process: each part once nothing that feeds it runs
// any more, all within shutdown_timeout. What is not sent by then stays
// in the outbox for the next start.
//
//  0. The bot's start (getMe and setWebhook retries) ends, so that nothing
//     new starts; the deliverer is told to stop at once, because its drain
//     is the long wait and shutdown_timeout is sized around it
//     (drainTimeout): from now on it claims nothing, and its calls in
//     flight go on while the rest stops.
//  1. HTTP stops accepting; requests in flight finish: their pushes are
//     stored, their Telegram updates handled.
//  2. The poller, the other source of updates, stops: after it no command
//     queues a reply.
//  3. The deliverer has drained: calls cut off at its DrainTimeout, then
//     its store writes hand the unfinished jobs back (DrainGrace).
//  4. The command replies already queued are sent, until the same drain
//     deadline (Commands.Close).
//  5. Ops flushes: its last report, with what the parts above recorded,
//     goes to the outbox.
//  6. The store closes, once nothing that writes to it runs.
func (a *app) shutdown() {
	a.beginStop()
	start := time.Now()
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	w := &stopWait{deadline: start.Add(a.cfg.ShutdownTimeout), log: a.log}
	drainDeadline := start.Add(drainTimeout(a.cfg.ShutdownTimeout))

	a.connect.stop()
	w.wait(a.connect.done)
	parts := a.botParts()
	if parts.deliverer != nil {
		parts.deliverer.stop()
	}

	sctx, cancel := context.WithDeadline(context.Background(), w.deadline)
	defer cancel()
	if err := a.http.Shutdown(sctx); err != nil {
		a.log.Warn("http shutdown incomplete", "err", err)
		a.http.Close()
	}
	if parts.poller != nil {
		parts.poller.stop()
		w.wait(parts.poller.done)
	}
	if parts.deliverer != nil {
		w.waitDeliverer(parts.deliverer.done, drainDeadline.Add(deliver.DrainGrace+time.Second))
	}
	if parts.commands != nil {
		rctx, cancel := context.WithDeadline(context.Background(), drainDeadline)
		parts.commands.Close(rctx)
		cancel()
	}
	a.opsRun.stop()
	w.wait(a.opsRun.done)
	w.waitGroup(a.group)
	a.log.Info("stopped")
	a.closeStore()
}

// stopWait waits for the parts within the shutdown deadline, and says
// once when it gave up on one.
type stopWait struct {
	deadline time.Time
	log      *slog.Logger
	late     bool
}

// wait waits until done is closed or the deadline passed.
func (w *stopWait) wait(done <-chan struct{}) bool {
	return w.until(done, w.deadline)
}

func (w *stopWait) until(done <-chan struct{}, deadline time.Time) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		if !w.late {
			w.late = true
			w.log.Warn("shutdown timeout: leaving unfinished work in the outbox")
		}
		return false
	}
}

// waitDeliverer waits until the deliverer returned: it promises to within
// DrainTimeout + DrainGrace of the shutdown's start, inside
// shutdown_timeout, so this normally does not wait past the deadline. The
// backstop (that promise and a second) is against a deliverer that broke
// it: a process that never exits would be worse than a store closed under
// a late write (which the store's transactions make harmless: an
// unfinished job stays leased and is taken over after its lease).
func (w *stopWait) waitDeliverer(done <-chan struct{}, backstop time.Time) {
	if w.until(done, w.deadline) || w.until(done, backstop) {
		return
	}
	w.log.Warn("deliverer still running past its drain deadline; closing the store anyway")
}

// waitGroup waits for whatever else the group runs (the HTTP servers'
// loops, which return once Shutdown or Close did).
func (w *stopWait) waitGroup(g interface{ Wait() error }) {
	done := make(chan struct{})
	go func() {
		_ = g.Wait()
		close(done)
	}()
	w.wait(done)
}
