package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
)

// How the Deliverer notices that Telegram is back.
const (
	// probeEvery is how often, while work waits on a backoff and no call
	// has succeeded, Telegram is asked whether it is back (getMe).
	probeEvery = time.Second
	// urgentMaxBackoff caps the wait between retries of a code or an
	// update: even after a restart, when nothing in memory remembers the
	// outage, a code is not held back much longer than Telegram was away.
	urgentMaxBackoff = 5 * time.Second
)

// prober is the part of the Client that tells whether Telegram answers.
type prober interface {
	Probe(ctx context.Context) error
}

// recovery remembers the tasks this process put on a backoff after a
// failed call (5xx, timeout, dropped connection), so that the first call
// that succeeds afterwards (or a probe) makes all of them due at once:
// when Telegram comes back, what waited goes out within a second, paced by
// the rate budget, instead of each task sleeping out its own backoff.
type recovery struct {
	mu      sync.Mutex
	waiting map[string]otpbot.Task // task id → the task as Retry left it
}

// failed records that t, which failed its call, is due again at `at`.
func (r *recovery) failed(t otpbot.Task, at time.Time, reason string) {
	t.Due, t.LastError = at, reason
	t.Attempts++
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = map[string]otpbot.Task{}
	}
	r.waiting[t.ID] = t
}

// pending reports whether tasks wait on a backoff.
func (r *recovery) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiting) > 0
}

// take returns the waiting tasks and forgets them.
func (r *recovery) take() []otpbot.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otpbot.Task
	for _, t := range r.waiting {
		out = append(out, t)
	}
	r.waiting = nil
	return out
}

// forget drops a task that ran again (its backoff ended, or it was taken
// over).
func (r *recovery) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, id)
}

// telegramAnswered is called after every call that Telegram answered
// (successfully, or with "not modified"): if tasks wait on a backoff, they
// are due now. The store write runs in the background on ctx.
func (d *Deliverer) telegramAnswered(ctx context.Context) {
	if !d.recover.pending() {
		return
	}
	tasks := d.recover.take()
	now := d.now()
	for i := range tasks {
		tasks[i].Due = now
	}
	go func() {
		// Enqueue replaces each waiting task (same id) with its due
		// time moved to now; the wake-up it signals starts the claim.
		if err := d.store.Enqueue(ctx, tasks...); err != nil {
			d.log.Warn("outbox: waiting work not brought forward after Telegram came back", "tasks", len(tasks), "err", err)
			return
		}
		d.log.Info("telegram answers again: waiting work is due now", "tasks", len(tasks))
		d.Poke()
	}()
}

// probeLoop asks Telegram every probeEvery whether it is back while tasks
// wait on a backoff, until ctx ends. A probe that gets an answer brings
// them forward (telegramAnswered); it takes its slot from the budget like
// any call.
func (d *Deliverer) probeLoop(ctx context.Context, storeCtx context.Context) {
	p, ok := d.client.(prober)
	if !ok {
		return
	}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.recover.pending() || d.limiter.Take(ctx, otpbot.Target{}, telegram.Spare).For > 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeEvery)
		err := p.Probe(pctx)
		cancel()
		if c := telegram.ClassOf(err); c != telegram.ClassRetryable && c != telegram.ClassRateLimited {
			d.telegramAnswered(storeCtx)
		}
	}
}

// watched is the Deliverer's Sender: every call Telegram answers tells the
// Deliverer that Telegram is up (see telegramAnswered).
type watched struct {
	Sender
	d *Deliverer
}

func (s watched) answered(err error) {
	if c := telegram.ClassOf(err); c != telegram.ClassRetryable && c != telegram.ClassRateLimited {
		s.d.telegramAnswered(s.d.storeCtx)
	}
}

func (s watched) Send(ctx context.Context, m telegram.OutMessage) (int, error) {
	id, err := s.Sender.Send(ctx, m)
	s.answered(err)
	return id, err
}

func (s watched) Edit(ctx context.Context, messageID int, m telegram.OutMessage) error {
	err := s.Sender.Edit(ctx, messageID, m)
	s.answered(err)
	return err
}

func (s watched) Delete(ctx context.Context, target otpbot.Target, messageID int) error {
	err := s.Sender.Delete(ctx, target, messageID)
	s.answered(err)
	return err
}

// Probe asks Telegram whether it answers, when the Sender can.
func (s watched) Probe(ctx context.Context) error {
	p, ok := s.Sender.(prober)
	if !ok {
		return nil
	}
	return p.Probe(ctx)
}

// ClearButtons removes a message's keyboard, when the Sender can (see
// Client.ClearButtons); false otherwise.
func (s watched) ClearButtons(ctx context.Context, target otpbot.Target, messageID int) (bool, string, error) {
	c, ok := s.Sender.(buttonClearer)
	if !ok {
		return false, "", nil
	}
	changed, text, err := c.ClearButtons(ctx, target, messageID)
	s.answered(err)
	return changed, text, err
}
