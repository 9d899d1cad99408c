package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// message sends or edits a code or approval message, in stages: what the
// message should show now (current), what that looks like (render),
// whether the budget lets the call go (admit), the call itself (call), and
// recording what Telegram accepted (record).
func (w *jobRun) message() {
	d := w.d
	msg, ok := w.current()
	if !ok {
		return
	}
	now := d.now()
	out, hash, ok := w.render(&msg, now)
	if !ok {
		return
	}
	next := expiryTask(msg)
	if msg.TelegramID != 0 && hash == msg.Rendered {
		// The cardholder already sees exactly this: no call.
		d.track(msg)
		d.countdown.schedule(msg.ID, d.nextStep(msg, now), hash)
		if msg.State != w.job.Message.State {
			msg.UpdatedAt = now
			w.finish(&msg, "skipped", next...)
		} else {
			w.complete(nil, "skipped", next...)
		}
		return
	}
	if !w.admit(msg, next, now) {
		return
	}
	inDoubt := msg.TelegramID == 0 && !msg.SendStarted.IsZero()
	if msg.TelegramID == 0 && !w.markSendStarted(&msg) {
		return
	}
	start := d.now()
	result := "edited"
	if msg.TelegramID == 0 {
		result = "sent"
	}
	hash, err := w.call(&msg, out, hash)
	if err != nil && telegram.ClassOf(err) != telegram.ClassNotModified {
		w.failed(err, &msg)
		return
	}
	w.record(msg, hash, result, start, inDoubt, next)
}

// current is the message as the job must show it, or false when the job is
// done without a call (no message, a failed one, a tick left over for a
// final message, an update for a message not sent yet).
func (w *jobRun) current() (otpbot.Message, bool) {
	t := w.job.Task
	if w.job.Message == nil {
		w.d.log.Info("outbox task without its message dropped", w.logAttrs()...)
		w.complete(nil, "skipped")
		return otpbot.Message{}, false
	}
	msg := *w.job.Message
	switch {
	case msg.State == otpbot.StateFailed:
		w.complete(nil, "skipped")
		return msg, false
	case msg.State == otpbot.StateLive && (t.Kind == otpbot.TaskExpire || msg.Event.Expired(w.d.now())):
		// Expired while it waited, or its expiry tick: show the expired
		// form. A code that expired before it was ever sent is still sent,
		// in that form, so the cardholder learns why no code came; it is
		// never sent as live.
		msg.State = otpbot.StateExpired
	}
	if msg.TelegramID == 0 && t.Kind != otpbot.TaskSend {
		// Not sent yet: the send, pending or in flight (in another worker
		// or process), renders the latest version, and when its store
		// write finds a newer version than it rendered it queues an update
		// then. Sending here could put a second message in the chat.
		w.complete(nil, "skipped")
		return msg, false
	}
	if msg.State != otpbot.StateLive && t.Kind == otpbot.TaskRefresh && msg.Rendered != "" && msg.State == w.job.Message.State {
		// A tick left over for a message that is final already.
		w.complete(nil, "skipped")
		return msg, false
	}
	return msg, true
}

// render is what msg looks like at now, with its buttons while live, and
// the hash of that; false (the job failed) when the template failed.
func (w *jobRun) render(msg *otpbot.Message, now time.Time) (telegram.OutMessage, string, bool) {
	d := w.d
	loc := d.locale(w.sctx, *msg)
	text, err := loc.RenderMessage(*msg, now)
	if err != nil {
		d.log.Error("render failed", w.logAttrs("err", err)...)
		if msg.State == otpbot.StateLive {
			msg.State = otpbot.StateFailed
		}
		msg.UpdatedAt = now
		d.forget(msg.ID)
		w.finish(msg, "failed")
		return telegram.OutMessage{}, "", false
	}
	out := telegram.OutMessage{Target: msg.Target, Text: text}
	if msg.State == otpbot.StateLive {
		out.Buttons = d.buttons(loc, *msg)
		out.Protect = true
	}
	return out, d.renderHash(out), true
}

// admit takes the call's slot from the rate budget, or hands the job back
// and returns false. A countdown refresh still in the outbox (the
// countdown lives in memory now; one queued by an earlier version) never
// waits for one: without budget to spare it leaves the countdown to the
// in-memory schedule.
func (w *jobRun) admit(msg otpbot.Message, next []otpbot.Task, now time.Time) bool {
	d := w.d
	t := w.job.Task
	if t.Kind != otpbot.TaskRefresh || msg.State != otpbot.StateLive {
		prio := t.Priority
		if t.Kind == otpbot.TaskRefresh {
			// A refresh that finds its code expired is the expiry edit:
			// it gets an update's share of the limits, never skipped.
			prio = otpbot.PriorityUpdate
		}
		return w.slot(prio)
	}
	if d.limiter.Take(w.sctx, t.Target, telegram.ShareOf(t.Priority)).For == 0 {
		return true
	}
	d.track(msg)
	d.countdown.schedule(msg.ID, d.nextStep(msg, now), "")
	w.complete(nil, "skipped", next...)
	return false
}

// call sends msg (or edits it, once it has an id) as out and returns the
// hash of what Telegram accepted. When Telegram refuses the message itself
// (HTML it cannot parse, a button it rejects) ops hear of it and it is
// tried once more as plain text without buttons, so that the code still
// arrives (or, for the expiry edit, still goes).
func (w *jobRun) call(msg *otpbot.Message, out telegram.OutMessage, hash string) (string, error) {
	d := w.d
	w.called = true
	do := func(out telegram.OutMessage) error {
		if msg.TelegramID != 0 {
			return d.client.Edit(w.ctx, msg.TelegramID, out)
		}
		id, err := d.client.Send(w.ctx, out)
		if err == nil {
			msg.TelegramID, msg.SentAt, msg.SendStarted = id, d.now(), time.Time{}
			w.sentID = id
		}
		return err
	}
	err := do(out)
	if telegram.ClassOf(err) != telegram.ClassBadRequest {
		return hash, err
	}
	d.log.Error("telegram rejected the message; trying plain text", w.logAttrs("err", err)...)
	d.ops.Refused(w.job.Task.Target, apiDescription(err))
	w.refused = true
	out = telegram.OutMessage{Target: out.Target, Text: templates.PlainText(out.Text), Protect: out.Protect, Plain: true}
	return d.renderHash(out), do(out)
}

// record stores what Telegram accepted and the next countdown step, logs
// the delivery, and, after a send an earlier interrupted one preceded,
// removes the copy that one left (orphans.go).
func (w *jobRun) record(msg otpbot.Message, hash, result string, start time.Time, inDoubt bool, next []otpbot.Task) {
	d := w.d
	t := w.job.Task
	done := d.now()
	msg.Rendered, msg.UpdatedAt = hash, done
	// A send's latency counts from the push's acknowledgement, through
	// every retry and deferral since; other work from its task's creation.
	since := t.Created
	if t.Kind == otpbot.TaskSend && !msg.Event.ReceivedAt.IsZero() {
		since = msg.Event.ReceivedAt
	}
	d.latency.WithLabelValues(string(t.Kind)).Observe(done.Sub(since).Seconds())
	if msg.State == otpbot.StateLive {
		d.track(msg)
		d.countdown.schedule(msg.ID, d.nextStep(msg, done), hash)
	} else {
		d.forget(msg.ID)
	}
	if !w.finish(&msg, result, next...) {
		return
	}
	d.log.Info("delivered", w.logAttrs("state", string(msg.State), "telegram_id", msg.TelegramID,
		"result", result, "call_ms", done.Sub(start).Milliseconds(), "latency_ms", done.Sub(since).Milliseconds())...)
	if inDoubt && result == "sent" {
		w.removeOrphans(msg)
	}
}

// renderHash identifies what the cardholder sees: text, keyboard and
// protection. It is stored with the message (Message.Rendered), also
// after the code itself has left the store (a live message past its
// expiry, until the expiry edit), and the text it hashes shows the code:
// a plain hash would give the code away to anyone who renders the stored
// message with each of the million 6-digit codes. So it is keyed, with
// the Deliverer's own random key, never stored. After a restart, or when
// another process on the same Redis refreshes a message this one
// rendered, the hashes differ and the first edit that would change
// nothing is made once more (Telegram answers "not modified", which
// counts as done): only that skip is lost, never an edit.
func (d *Deliverer) renderHash(m telegram.OutMessage) string {
	h := hmac.New(sha256.New, d.renderKey)
	h.Write([]byte(m.Text))
	for _, row := range m.Buttons {
		h.Write([]byte{0})
		for _, b := range row {
			fmt.Fprintf(h, "\x01%s\x02%s\x02%s\x02%s", b.Text, b.Data, b.URL, b.CopyText)
		}
	}
	if m.Protect {
		h.Write([]byte{1})
	}
	if m.Plain {
		h.Write([]byte{2})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
