package deliver

import (
	"context"
	"errors"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/wait"
)

// work runs one job. ctx is Run's context: it ends the wait for the rate
// limiter at once. The Telegram call runs on callBase and the store
// writes on storeBase, which outlive ctx so that shutdown lets them
// finish, until Run's drain deadline cuts them off. The call is bounded by
// callBudget: a refresh's short timeout, and never past three quarters of
// the lease.
func (d *Deliverer) work(ctx, callBase, storeBase context.Context, job otpbot.Job) {
	callCtx, cancel := context.WithTimeout(callBase, d.callBudget(job, d.now()))
	defer cancel()
	storeCtx, cancelStore := context.WithTimeout(storeBase, d.storeBudget(job, d.now()))
	defer cancelStore()
	claimMark := d.claimMarkOf(job)
	if id := job.Task.MessageID; id != "" {
		// One job per message at a time in this process, so a refresh and
		// a hide never race each other's edits.
		unlock, waited := d.locks.lock(id)
		defer unlock()
		if waited && job.Message != nil {
			// The message changed while we waited: work on what is stored.
			fresh, ok, err := d.store.Message(storeCtx, id)
			switch {
			case err != nil:
				d.log.Warn("reload message failed", "message", otpbot.Ref(id), "err", err)
			case !ok:
				job.Message = nil
			default:
				if !claimMark.IsZero() && fresh.SendStarted.Equal(claimMark) {
					// Our own claim's mark: what counts is the one before.
					fresh.SendStarted = job.Message.SendStarted
				}
				job.Message = &fresh
			}
		}
	}
	d.recover.forget(job.Task.ID)
	w := &jobRun{d: d, job: job, ctx: callCtx, sctx: storeCtx, runCtx: ctx, claimMark: claimMark}
	if ctx.Err() != nil {
		// Shutdown began while this job waited for its message's lock:
		// start no new Telegram call, leave it to the next process.
		w.deferTo(d.now(), "shutdown")
		return
	}
	switch job.Task.Kind {
	case otpbot.TaskNotice:
		w.notice()
	case otpbot.TaskDelete:
		w.deleteMessage()
	case otpbot.TaskSend, otpbot.TaskUpdate, otpbot.TaskRefresh, otpbot.TaskExpire:
		w.message()
	default:
		d.log.Error("outbox task of unknown kind dropped", "task", otpbot.Ref(job.Task.ID), "kind", job.Task.Kind)
		w.complete(nil, "failed")
	}
}

// jobRun is one job being worked on.
type jobRun struct {
	d   *Deliverer
	job otpbot.Job
	ctx context.Context // for Telegram: survives shutdown, cut at callBudget
	// sctx is for the store writes, above all those that record what
	// Telegram accepted: a context of their own, not the call's (which a
	// slow call may have all but used up), lasting until shortly before
	// the lease ends.
	sctx   context.Context
	runCtx context.Context // the Run context: ends waits at shutdown
	// sentID is the Telegram message id this job's send created, 0 when
	// it sent nothing.
	sentID int
	// refused is set once ops were told Telegram refused this message.
	refused bool
	// claimMark is the send-started mark the claim stored for this job's
	// send (otpbot.SendMarker); zero when the claim marked nothing.
	claimMark time.Time
	// called is set once a Telegram call for the message was made: its
	// mark stays, whatever the outcome.
	called bool
}

// storeBudget is how long the store writes of job may go on if it starts
// at now: until shortly before its lease ends, and at least a few seconds
// (recording a send that Telegram accepted is worth a write after the
// lease: it is guarded by the message's version, not by the lease).
func (d *Deliverer) storeBudget(job otpbot.Job, now time.Time) time.Duration {
	return max(job.LeaseUntil.Sub(now)-d.lease/20, 3*time.Second)
}

// storeDo runs a store operation, retrying with a short backoff while the
// store is unavailable (a Redis failover, a dropped connection) until the
// store context ends. A write lost after Telegram accepted a send would
// make the job run again and send the code a second time.
func (w *jobRun) storeDo(op func(ctx context.Context) error) error {
	backoff := 25 * time.Millisecond
	for {
		// Before the write: the wake-up it may send must find it counted.
		w.d.ownWrites.Add(1)
		err := op(w.sctx)
		if err == nil || !errors.Is(err, otpbot.ErrUnavailable) {
			return err
		}
		if !wait.Sleep(w.sctx, wait.Jitter(backoff)) {
			return err
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

func (w *jobRun) logAttrs(extra ...any) []any {
	t := w.job.Task
	attrs := []any{"task", otpbot.Ref(t.ID), "kind", t.Kind, "priority", int(t.Priority), "target", t.Target, "attempts", t.Attempts}
	if m := w.job.Message; m != nil {
		attrs = append(attrs, "message", otpbot.Ref(m.ID), "event", m.Event.Name, "provider", string(m.Event.Provider))
		if m.Event.CardLast4 != "" {
			attrs = append(attrs, "card", otpbot.CardNumber(m.Event.CardLast4))
		}
	}
	return append(attrs, extra...)
}

// claimMarkOf is the send-started mark job's claim stored (on a store that
// marks sends as it claims them, otpbot.SendMarker), or zero: a job handed
// back without a call puts the earlier mark back (jobRun.unmark).
func (d *Deliverer) claimMarkOf(job otpbot.Job) time.Time {
	if d.claimMarks && job.Message != nil && job.Task.Kind == otpbot.TaskSend && job.Message.TelegramID == 0 &&
		job.Message.State != otpbot.StateFailed {
		return job.Message.UpdatedAt
	}
	return time.Time{}
}
