package deliver

import (
	"context"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/wait"
)

// slot waits for the rate limiter. It returns false (after handing the job
// back to the outbox) when the wait is a 429 pause or longer than the
// inline maximum of the job's priority, or when shutdown began. Only a
// code waits in its worker for long (MaxInlineWait); an update briefly;
// work below PriorityUpdate not at all, so it never holds a worker that a
// code could use.
//
// Workers refused by the bot's own budget wait their turn (see turn): one
// asks again each time a token is due, the others queue behind it, so a
// backlog of codes costs one budget call per token, not one per worker.
func (w *jobRun) slot(p otpbot.Priority) bool {
	t := w.job.Task
	maxWait := w.d.maxWait
	switch {
	case p.Low():
		maxWait = 0
	case p == otpbot.PriorityUpdate:
		maxWait /= 8
	}
	var waited time.Duration
	holding := false
	leave := func() {
		if holding {
			w.d.turn.leave()
			holding = false
		}
	}
	// handBack leaves the line first: the store write that hands the job
	// back must not hold up the workers behind it.
	handBack := func(at time.Time, reason string) bool {
		leave()
		w.deferTo(at, reason)
		return false
	}
	for {
		wt := w.d.limiter.Take(w.sctx, t.Target, telegram.ShareOf(p))
		switch {
		case wt.For == 0:
			leave()
			return true
		case wt.Paused:
			return handBack(w.d.now().Add(wt.For), "paused by telegram flood control")
		case waited+wt.For > maxWait:
			return handBack(w.d.now().Add(wt.For), "rate limited")
		case wt.Bot && !holding:
			start := time.Now()
			ok := w.d.turn.join(w.runCtx, maxWait-waited)
			waited += time.Since(start)
			if !ok {
				return handBack(w.d.now(), "rate limited")
			}
			holding = true
			continue // the one before may have left a token: ask at once
		case !wt.Bot:
			// The chat is what refuses now: let the others go meanwhile.
			leave()
		}
		if !wait.Sleep(w.runCtx, wt.For) {
			// Shutting down: release the job at once rather than leaving
			// it leased until the lease runs out.
			return handBack(w.d.now(), "shutdown")
		}
		waited += wt.For
	}
}

// turn is this process's queue at the bot's budget: the worker that holds
// it asks the budget again when a token is due; the others wait in line
// (a channel's blocked senders are served in order) instead of all asking
// at once. It is per process; on Redis, each process has its own line.
type turn chan struct{}

func newTurn() turn { return make(turn, 1) }

// join waits up to limit for the turn; false when it did not come or ctx
// ended.
func (q turn) join(ctx context.Context, limit time.Duration) bool {
	if limit <= 0 {
		return false
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case q <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// leave hands the turn to the next in line.
func (q turn) leave() { <-q }
