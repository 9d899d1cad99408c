package deliver

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/wait"
)

// orphanWindow is how many message ids below a resent code's own are
// probed for the copy an earlier, interrupted send left (see
// removeOrphans). Telegram numbers a chat's messages one after another, so
// the copy is among the last few unless the chat got more messages than
// this between the crash and the resend.
const orphanWindow = 12

// A code copy that nobody can hide: Telegram has shown a sent message, but
// the process died before its answer (the message id) was recorded. The
// send is retried after the restart, and the first copy, whose id is
// unknown, would keep its code on screen forever. Telegram has no
// idempotency key, so otpbot brackets every send instead:
//
//  1. before the call, the message is marked SendStarted, durably;
//  2. when the id is recorded, the mark is cleared in the same write;
//  3. a send that finds the mark set (the earlier attempt's outcome is
//     unknown) looks, once its own copy is sent and recorded, for the
//     earlier copy just below its own id: it clears the inline keyboard of
//     each id the chat holds no record of. Only a message of the bot's
//     with a keyboard changes — a cardholder's message cannot be edited by
//     the bot, and a reply without buttons is "not modified" — and every
//     live code message of the bot has buttons, so a change found whose
//     text (Telegram returns it) shows the code is the lost copy: it is
//     deleted (or, past Telegram's 48 hours, edited to the expired form).
//     Another reply of the bot's with buttons (a language picker) only
//     loses its buttons.
//
// A store whose Claim marks sends (otpbot.SendMarker: the embedded store)
// writes step 1 in the claim's own commit; on the others it is one store
// write before each send (a fraction of a millisecond on Redis). After a
// crash it costs a dozen probe calls at most in the chats whose sends were
// interrupted.

// buttonClearer is the part of the Client that probes for a lost copy.
type buttonClearer interface {
	ClearButtons(ctx context.Context, target otpbot.Target, messageID int) (changed bool, text string, err error)
}

// markSendStarted records, before a send, that it is about to be called
// (step 1 above), unless the claim did. It returns false when the job must not send now: the
// message changed meanwhile (the job is deferred, to run on the new
// version) or is gone (the job is done).
func (w *jobRun) markSendStarted(msg *otpbot.Message) bool {
	d := w.d
	if !w.claimMark.IsZero() {
		// The claim stored the mark (otpbot.SendMarker).
		msg.SendStarted = w.claimMark
		return true
	}
	prev := w.job.Message.UpdatedAt
	cur := *msg
	cur.SendStarted = d.now()
	cur.UpdatedAt = cur.SendStarted
	if !cur.UpdatedAt.After(prev) {
		cur.UpdatedAt = prev.Add(time.Nanosecond)
	}
	err := w.storeDo(func(ctx context.Context) error { return d.store.UpdateMessage(ctx, prev, cur) })
	switch {
	case err == nil:
		w.job.Message.UpdatedAt = cur.UpdatedAt
		*msg = cur
		return true
	case errors.Is(err, otpbot.ErrNotFound):
		w.complete(nil, "skipped")
	case errors.Is(err, otpbot.ErrConflict):
		w.deferTo(d.now(), "message changed before its send")
	default:
		d.log.Error("store: send not marked as started", w.logAttrs("err", err)...)
		w.retry(d.now().Add(w.backoff()), "store: "+err.Error())
	}
	return false
}

// removeOrphans finds and removes the copy of msg that an interrupted
// earlier send left in the chat (step 3 above); msg is the message as
// just recorded with its own TelegramID.
func (w *jobRun) removeOrphans(msg otpbot.Message) {
	d := w.d
	p, ok := d.client.(buttonClearer)
	if !ok {
		return
	}
	known := map[int]bool{}
	if msgs, err := d.store.MessagesForChat(w.sctx, msg.Target.ChatID); err == nil {
		for _, m := range msgs {
			known[m.TelegramID] = true
		}
	}
	found := 0
	for id := msg.TelegramID - 1; id > 0 && id >= msg.TelegramID-orphanWindow; id-- {
		if known[id] {
			continue
		}
		if !w.waitBudget(msg.Target, telegram.Spare) {
			return
		}
		changed, text, err := p.ClearButtons(w.ctx, msg.Target, id)
		if err != nil {
			d.log.Warn("probe for an interrupted send's copy failed", w.logAttrs("probe_id", id, "err", err)...)
			return
		}
		if !changed {
			continue
		}
		if !showsCode(text, msg.Event.Code) {
			// Another message of the bot's with buttons (a command's
			// reply, a picker): it loses its buttons but stays.
			d.log.Warn("probe cleared the buttons of a message that is not the code's copy", w.logAttrs("probe_id", id)...)
			continue
		}
		found++
		w.dropCopy(msg, id)
	}
	if found == 0 {
		d.log.Info("interrupted send left no copy in the chat", w.logAttrs()...)
	}
}

// showsCode reports whether text, a message as Telegram returns it, shows
// code: the copy of a code message always does, whatever separators a
// template puts between its characters. A message without a code (an
// approval request) has nothing to compare, and counts.
func showsCode(text, code string) bool {
	if code == "" {
		return true
	}
	alnum := func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				return r
			}
			return -1
		}, s)
	}
	return strings.Contains(alnum(text), alnum(code))
}

// dropCopy deletes the copy id of msg, or edits it to the expired form
// when Telegram will not delete it.
func (w *jobRun) dropCopy(msg otpbot.Message, id int) {
	d := w.d
	err := d.client.Delete(w.ctx, msg.Target, id)
	if err == nil {
		d.log.Warn("copy of a code left by an interrupted send deleted", w.logAttrs("telegram_id", id)...)
		return
	}
	msg.State = otpbot.StateExpired
	text, rerr := d.locale(w.sctx, msg).RenderMessage(msg, d.now())
	if rerr == nil {
		rerr = d.client.Edit(w.ctx, id, telegram.OutMessage{Target: msg.Target, Text: text})
	}
	if rerr != nil {
		d.log.Error("copy of a code left by an interrupted send could be neither deleted nor redacted", w.logAttrs("telegram_id", id, "err", errors.Join(err, rerr))...)
		return
	}
	d.log.Warn("copy of a code left by an interrupted send redacted (delete failed)", w.logAttrs("telegram_id", id, "err", err)...)
}

// waitBudget waits for a slot in the rate budget for work that is not a
// job of the outbox (and so cannot be handed back to it); false when
// shutdown began or the budget stayed shut for a minute.
func (w *jobRun) waitBudget(target otpbot.Target, share telegram.Share) bool {
	deadline := w.d.now().Add(time.Minute)
	for w.d.now().Before(deadline) {
		pause := w.d.limiter.Take(w.sctx, target, share).For
		if pause == 0 {
			return true
		}
		if !wait.Sleep(w.runCtx, pause) {
			return false
		}
	}
	return false
}
