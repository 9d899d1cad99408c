package deliver

import (
	"context"
	"errors"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
)

// failed handles a Telegram error for the job. msg is the message as it
// would have been stored (nil for a notice).
func (w *jobRun) failed(err error, msg *otpbot.Message) {
	d := w.d
	t := w.job.Task
	if errors.Is(err, context.Canceled) && w.runCtx.Err() != nil {
		// Cut off at the drain deadline of a shutdown: nothing failed,
		// and the next process (or start) takes the job at once. Whether
		// Telegram acted on the call is unknown.
		d.log.Warn("telegram call cut off by shutdown; left in the outbox", w.logAttrs()...)
		w.deferTo(d.now(), "shutdown")
		return
	}
	switch telegram.ClassOf(err) {
	case telegram.ClassMigrated:
		w.migrated(err, msg)
	case telegram.ClassRateLimited:
		// Flood control says "not now", not "this failed": wait as told
		// without counting an attempt.
		pause := d.limiter.Pause(w.sctx, t.Target, telegram.RetryAfterOf(err))
		d.log.Warn("telegram rate limited", w.logAttrs("retry_after", pause)...)
		w.deferTo(d.now().Add(pause), err.Error())
	case telegram.ClassGone:
		reason := apiDescription(err)
		d.log.Warn("telegram refused the target for good", w.logAttrs("err", err)...)
		if msg == nil {
			// An ops notice whose chat is gone: nothing to mark.
			w.complete(nil, "gone")
			return
		}
		d.broken.Inc()
		if merr := w.storeDo(func(ctx context.Context) error { return d.store.MarkBroken(ctx, t.Target, reason) }); merr != nil {
			d.log.Error("mark link broken failed", w.logAttrs("err", merr)...)
		}
		d.ops.Broken(t.Target, reason)
		msg.State = otpbot.StateFailed
		msg.UpdatedAt = d.now()
		d.forget(msg.ID)
		w.finish(msg, "gone")
	case telegram.ClassBadRequest:
		d.log.Error("telegram rejected the request", w.logAttrs("err", err)...)
		if msg != nil {
			// A notice to the ops chat is not reported there again, nor
			// a message whose plain-text retry ops heard of already.
			if !w.refused {
				d.ops.Refused(t.Target, apiDescription(err))
			}
			if t.Kind == otpbot.TaskExpire || msg.State == otpbot.StateExpired {
				msg.State = otpbot.StateExpired
			} else {
				msg.State = otpbot.StateFailed
			}
			msg.UpdatedAt = d.now()
			d.forget(msg.ID)
		}
		w.finish(msg, "failed")
	default: // retryable
		pause := w.backoff()
		d.log.Warn("telegram call failed, retrying", w.logAttrs("err", err, "retry_in", pause)...)
		if t.Attempts+1 == d.failRep {
			d.ops.Failing(t.Target, t.Attempts+1, err)
		}
		at := d.now().Add(pause)
		if w.retry(at, err.Error()) {
			d.recover.failed(t, at, err.Error())
		}
	}
}

// apiDescription is Telegram's description of a failed call, or the
// error's text.
func apiDescription(err error) string {
	var ae *telegram.APIError
	if errors.As(err, &ae) {
		return ae.Description
	}
	return err.Error()
}

// migrated follows a group that Telegram upgraded to a supergroup: the
// links of the group move to the supergroup (Telegram gives the new id
// once, in the refusal), and a send or notice is retried there at once.
// A message already in the group cannot be followed (its copy in the
// supergroup has another id): it is given up, as when a chat is gone, but
// nothing is marked broken.
func (w *jobRun) migrated(err error, msg *otpbot.Message) {
	d := w.d
	t := w.job.Task
	var ae *telegram.APIError
	errors.As(err, &ae)
	to := otpbot.Target{ChatID: ae.MigrateTo, ThreadID: t.Target.ThreadID}
	if merr := w.moveLinks(t.Target.ChatID, ae.MigrateTo); merr != nil {
		d.log.Error("moving the links of an upgraded group failed", w.logAttrs("to", to, "err", merr)...)
		w.retry(d.now().Add(w.backoff()), "move links: "+merr.Error())
		return
	}
	d.log.Warn("group upgraded to a supergroup: links moved", w.logAttrs("to", to)...)
	next := t
	next.Target, next.Due = to, d.now()
	switch {
	case msg == nil:
		// An ops notice: telegram.ops_chat names the old group.
		d.log.Warn("the ops chat was upgraded to a supergroup: set telegram.ops_chat to its new id", "ops_chat", to.ChatID)
		w.complete(nil, "migrated", next)
	case msg.TelegramID == 0:
		msg.Target, msg.UpdatedAt = to, d.now()
		w.finish(msg, "migrated", next)
	default:
		msg.State, msg.UpdatedAt = otpbot.StateFailed, d.now()
		d.forget(msg.ID)
		w.finish(msg, "gone")
	}
}

// moveLinks moves every link of chat from to chat to (same key, topic and
// creator), unbroken.
func (w *jobRun) moveLinks(from, to int64) error {
	d := w.d
	var links []otpbot.Link
	if err := w.storeDo(func(ctx context.Context) (err error) {
		links, err = d.store.LinksForChat(ctx, from)
		return err
	}); err != nil {
		return err
	}
	for _, l := range links {
		moved := l
		moved.Target.ChatID, moved.Broken, moved.BrokenReason = to, false, ""
		if err := w.storeDo(func(ctx context.Context) error { return d.store.Link(ctx, moved) }); err != nil {
			return err
		}
		if err := w.storeDo(func(ctx context.Context) error {
			_, err := d.store.Unlink(ctx, l.Key, l.Target)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}
