package deliver

import "github.com/otpbot/otpbot/bot/telegram"

// deleteMessage carries out a TaskDelete: the message (a /codes reply)
// must not outlive the codes it shows. Telegram will not delete a message
// older than 48 hours in most chats; that one is edited to a text without
// the codes instead (codes_gone). A message that is gone already counts as
// deleted.
func (w *jobRun) deleteMessage() {
	d := w.d
	t := w.job.Task
	if t.TelegramID == 0 {
		w.complete(nil, "skipped")
		return
	}
	if !w.slot(t.Priority) {
		return
	}
	result := "deleted"
	err := d.client.Delete(w.ctx, t.Target, t.TelegramID)
	if telegram.CannotDelete(err) {
		result = "edited"
		var text string
		if text, err = d.render.Locale(w.sctx, t.Target.ChatID).Render("codes_gone", nil); err == nil {
			err = d.client.Edit(w.ctx, t.TelegramID, telegram.OutMessage{Target: t.Target, Text: text})
		}
	}
	if err != nil && telegram.ClassOf(err) != telegram.ClassNotModified {
		w.failed(err, nil)
		return
	}
	d.latency.WithLabelValues(string(t.Kind)).Observe(d.now().Sub(t.Created).Seconds())
	d.log.Info("message with codes removed", w.logAttrs("result", result)...)
	w.complete(nil, result)
}

// notice sends Task.Text as a new message: an ops notice, or a reply to a
// code message (Task.ReplyTo, see FollowUps; the Client sends it without
// the reply when that message is gone).
func (w *jobRun) notice() {
	t := w.job.Task
	if !w.slot(t.Priority) {
		return
	}
	_, err := w.d.client.Send(w.ctx, telegram.OutMessage{Target: t.Target, Text: t.Text, ReplyTo: t.ReplyTo})
	if err != nil {
		w.failed(err, nil)
		return
	}
	w.d.latency.WithLabelValues(string(t.Kind)).Observe(w.d.now().Sub(t.Created).Seconds())
	// A notice with a reply-to answers a cardholder's code message (a
	// follow-up); the others are ops reports.
	msg := "ops notice delivered"
	if t.ReplyTo != 0 {
		msg = "follow-up delivered"
	}
	w.d.log.Info(msg, w.logAttrs()...)
	w.complete(nil, "sent")
}
