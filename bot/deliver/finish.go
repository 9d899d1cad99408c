package deliver

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/wait"
)

// complete finishes the job, logging a lost lease (another worker owns the
// task now; its outcome wins).
func (w *jobRun) complete(msg *otpbot.Message, result string, next ...otpbot.Task) bool {
	err := w.storeDo(func(ctx context.Context) error { return w.d.store.Complete(ctx, w.job, msg, next...) })
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), result).Inc()
	if err != nil {
		w.d.log.Warn("outbox complete failed", w.logAttrs("err", err)...)
		return false
	}
	return true
}

// finish stores msg as the job left it and completes the job with next,
// in one store transaction (CompleteMessage: one commit, one round trip).
// The write is guarded
// by the version the job was claimed with, so a change made meanwhile (a
// hide, a new AUTH_3DS result) is never overwritten: on a conflict the
// Telegram facts (message id, what it shows) are merged into the newer
// version and an update task re-renders it.
//
// When the job's lease is lost (another worker took the task over while a
// call hung), what Telegram accepted is still recorded, with
// UpdateMessage alone (guarded by the version, not by the lease), and the
// completion is left to the lease's new holder.
func (w *jobRun) finish(msg *otpbot.Message, result string, next ...otpbot.Task) bool {
	if msg == nil {
		return w.complete(nil, result, next...)
	}
	d := w.d
	prev := w.job.Message.UpdatedAt
	cur := *msg
	if !cur.UpdatedAt.After(prev) {
		// Versions must differ even when the clock did not move.
		cur.UpdatedAt = prev.Add(time.Nanosecond)
	}
	var extra []otpbot.Task
	leased := true // false once CompleteMessage found the lease lost
	for attempt := 0; ; attempt++ {
		var err error
		if leased {
			// extra before next: a later task in the same slot replaces
			// an earlier one, and next is what the job decided last.
			tasks := append(slices.Clip(extra), next...)
			err = w.storeDo(func(ctx context.Context) error { return d.store.CompleteMessage(ctx, w.job, prev, cur, tasks...) })
			if err == nil {
				d.deliveries.WithLabelValues(string(w.job.Task.Kind), result).Inc()
				return true
			}
			if errors.Is(err, otpbot.ErrLeaseLost) {
				leased = false
			}
		}
		if !leased {
			err = w.storeDo(func(ctx context.Context) error { return d.store.UpdateMessage(ctx, prev, cur, extra...) })
			if err == nil {
				break
			}
		}
		if errors.Is(err, otpbot.ErrNotFound) {
			// Forgotten meanwhile (its code is gone): nothing to keep.
			return w.complete(nil, result)
		}
		if !errors.Is(err, otpbot.ErrConflict) || attempt >= 4 {
			d.log.Error("store message update failed", w.logAttrs("err", err)...)
			w.retry(d.now().Add(w.backoff()), "store: "+err.Error())
			return false
		}
		var fresh otpbot.Message
		var ok bool
		gerr := w.storeDo(func(ctx context.Context) (err error) {
			fresh, ok, err = d.store.Message(ctx, msg.ID)
			return err
		})
		if gerr != nil || !ok {
			return w.complete(nil, result)
		}
		if w.sentID != 0 && fresh.TelegramID != 0 && fresh.TelegramID != w.sentID {
			// Another worker sent this message too (one of us took the
			// job over after the other's lease ran out while its call
			// hung) and recorded its send first: ours is an extra copy
			// whose countdown nobody runs. Remove it.
			w.dropDuplicate(*msg)
			return w.complete(nil, "duplicate")
		}
		prev = fresh.UpdatedAt
		cur = w.rebase(msg, fresh)
		// What Telegram shows was rendered from the older version: let an
		// update bring it in line (it calls nothing if it already is).
		extra = []otpbot.Task{{
			ID: otpbot.TaskID(cur.ID, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: cur.ID, Target: cur.Target, Due: d.now(), Created: d.now(),
		}}
		if cur.State != otpbot.StateLive {
			next = nil
			d.forget(cur.ID)
		}
	}
	return w.complete(nil, result, next...)
}

// rebase carries what Telegram accepted for msg (its id, when it was sent,
// what it shows) into fresh, the version stored meanwhile, as a newer
// version of it.
func (w *jobRun) rebase(msg *otpbot.Message, fresh otpbot.Message) otpbot.Message {
	prev := fresh.UpdatedAt
	if fresh.TelegramID == 0 {
		fresh.TelegramID, fresh.SentAt, fresh.SendStarted = msg.TelegramID, msg.SentAt, msg.SendStarted
	}
	fresh.Rendered = msg.Rendered
	fresh.UpdatedAt = w.d.now()
	if !fresh.UpdatedAt.After(prev) {
		fresh.UpdatedAt = prev.Add(time.Nanosecond)
	}
	return fresh
}

// dropDuplicate deletes the extra copy msg of a message another worker
// sent and recorded first; if Telegram will not delete it, it is edited
// to the expired form so that no live code stays on screen unmanaged.
func (w *jobRun) dropDuplicate(msg otpbot.Message) {
	d := w.d
	ctx, cancel := context.WithTimeout(w.sctx, 10*time.Second)
	defer cancel()
	err := d.client.Delete(ctx, msg.Target, w.sentID)
	if err == nil {
		d.log.Warn("duplicate message deleted: another worker had sent it", w.logAttrs("telegram_id", w.sentID)...)
		return
	}
	msg.State = otpbot.StateExpired
	text, rerr := d.locale(ctx, msg).RenderMessage(msg, d.now())
	if rerr == nil {
		rerr = d.client.Edit(ctx, w.sentID, telegram.OutMessage{Target: msg.Target, Text: text})
	}
	if rerr != nil {
		d.log.Error("duplicate message could be neither deleted nor redacted", w.logAttrs("telegram_id", w.sentID, "err", errors.Join(err, rerr))...)
		return
	}
	d.log.Warn("duplicate message redacted (delete failed): another worker had sent it", w.logAttrs("telegram_id", w.sentID, "err", err)...)
}

// retry hands the job back to run at `at` after a failed attempt: the
// store counts it in Task.Attempts, which the backoff and the ops report
// go by. Only a failed Telegram call (or store write) is an attempt; see
// deferTo for work that merely has to wait.
func (w *jobRun) retry(at time.Time, reason string) bool {
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), "retried").Inc()
	if err := w.storeDo(func(ctx context.Context) error { return w.d.store.Retry(ctx, w.job, at, reason) }); err != nil {
		w.d.log.Warn("outbox retry failed", w.logAttrs("err", err)...)
		return false
	}
	return true
}

// deferredPrefix starts the LastError of a task that was put off without
// a failed call (rate limits, flood control, shutdown).
const deferredPrefix = "deferred: "

// deferTo hands the job back to run at `at` without counting an attempt:
// the rate limiter, Telegram's flood control or a shutdown put it off, and
// nothing failed. Queue.Retry always counts an attempt, so the unchanged
// task is enqueued again through Complete instead (same ID, same Created;
// Complete removes the task before it enqueues the new one). Attempts
// then counts real failures only, which keeps the backoff and the
// "keeps failing" ops report honest.
func (w *jobRun) deferTo(at time.Time, reason string) {
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), "deferred").Inc()
	t := w.job.Task
	t.Due = at
	t.LastError = deferredPrefix + reason
	if w.unmark(t) {
		return
	}
	if err := w.storeDo(func(ctx context.Context) error { return w.d.store.Complete(ctx, w.job, nil, t) }); err != nil {
		w.d.log.Warn("outbox deferral failed", w.logAttrs("err", err)...)
	}
}

// unmark hands the job back as t, in one write with its message's
// send-started mark put back as it was before the claim marked it
// (otpbot.SendMarker), when the claim marked it and no call was made: the
// next attempt is then not taken for a resend (which would probe the chat
// for a copy that does not exist). It returns false when there is nothing
// to put back, or the message changed meanwhile: the deferral then leaves
// the mark, which costs only those probes.
func (w *jobRun) unmark(t otpbot.Task) bool {
	if w.claimMark.IsZero() || w.called || w.job.Message == nil {
		return false
	}
	prev := w.job.Message.UpdatedAt
	m := *w.job.Message
	m.UpdatedAt = w.d.now()
	if !m.UpdatedAt.After(prev) {
		m.UpdatedAt = prev.Add(time.Nanosecond)
	}
	err := w.storeDo(func(ctx context.Context) error { return w.d.store.CompleteMessage(ctx, w.job, prev, m, t) })
	switch {
	case err == nil:
		return true
	case errors.Is(err, otpbot.ErrConflict), errors.Is(err, otpbot.ErrNotFound):
		return false
	}
	w.d.log.Warn("outbox deferral failed", w.logAttrs("err", err)...)
	return true
}

// backoff is the wait before attempt n+1 of a failing call: exponential
// from one second, capped, with jitter. Task.Attempts counts failed calls
// only (deferrals do not touch it).
func (w *jobRun) backoff() time.Duration {
	n := min(w.job.Task.Attempts, 16)
	limit := w.d.maxBack
	if !w.job.Task.Priority.Low() {
		limit = min(limit, urgentMaxBackoff)
	}
	return wait.Jitter(min(time.Second<<n, limit))
}
