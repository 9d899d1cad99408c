package bot

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// Sending a confirmed answer to HyperCard and recording it on every chat's
// message (see approve.go for the whole flow).

// decide sends the confirmed answer to HyperCard, once: under the
// request's decision lease, after checking again that nobody answered it
// meanwhile and that f is still pending (a double tap waits for the lease,
// then finds f used).
func (c *Commands) decide(ctx context.Context, q *callbackRequest, m otpbot.Message, f confirmation) (string, bool, error) {
	a := c.approvals
	lease, owner := decisionLeasePrefix+m.Group, rand.Text()
	held, err := a.store.AcquireLease(ctx, lease, owner, a.leaseTTL)
	if err != nil {
		return "", false, fmt.Errorf("decision lease: %w", err)
	}
	if !held {
		a.decisions.WithLabelValues(answerWord(f.approve), "busy").Inc()
		return answerBusy, false, nil
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.store.ReleaseLease(rctx, lease, owner); err != nil {
			a.log.Warn("decision lease not released", "auth_id", otpbot.Ref(m.Event.AuthID), "err", err)
		}
	}
	// The lease is ours: whoever held it before has finished, and may
	// have answered the request or used the confirmation.
	fresh, text, alert, ok, err := c.recheck(ctx, q, m, f)
	if err != nil || !ok {
		release()
		return text, alert, err
	}
	text, alert, keep := c.sendAnswer(ctx, q, fresh, f)
	if !keep {
		release()
	}
	return text, alert, nil
}

// recheck reads the request again under the decision lease and checks
// that the tap may still answer it with f.
func (c *Commands) recheck(ctx context.Context, q *callbackRequest, m otpbot.Message, f confirmation) (fresh otpbot.Message, text string, alert, ok bool, err error) {
	a := c.approvals
	fresh, found, err := a.store.Message(ctx, m.ID)
	if err != nil {
		return fresh, "", false, false, fmt.Errorf("message: %w", err)
	}
	if !found {
		return fresh, answerGone, false, false, nil
	}
	if text, ok, err := a.check(ctx, q, fresh); err != nil || !ok {
		return fresh, text, true, false, err
	}
	pending, err := a.pending(ctx, f)
	if err != nil {
		return fresh, "", false, false, err
	}
	if !pending {
		a.refused(fresh, q, f, argConfirm)
		return fresh, answerBroken, false, false, nil
	}
	return fresh, "", false, true, nil
}

// sendAnswer calls HyperCard with the confirmed answer to fresh, uses the
// confirmation up and records the outcome. keep is true when the decision
// lease must be kept until it runs out: HyperCard has the answer but the
// messages could not be marked decided, so no second call may start while
// they still look open.
func (c *Commands) sendAnswer(ctx context.Context, q *callbackRequest, fresh otpbot.Message, f confirmation) (text string, alert, keep bool) {
	a := c.approvals
	word := answerWord(f.approve)
	result := a.approve
	if !f.approve {
		result = a.decline
	}
	ev := fresh.Event
	card, authID := otpbot.CardID(ev.CardID), otpbot.Ref(ev.AuthID)
	// The call runs to its own bound even if the update's handling is cut
	// short: once sent, its outcome must be recorded.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	err := a.approver.Decide(callCtx, ev.AuthID, ev.CardID, result)
	cancel()
	// Used whatever HyperCard said: trying again takes a new first tap.
	a.endConfirmation(ctx, f)
	if err != nil {
		problem, answer, outcome := templates.ProblemUnreachable, answerUnreachable, "unreachable"
		if !a.retryable(err) {
			problem, answer, outcome = templates.ProblemRefused, answerAPIRefused, "refused"
		}
		a.decisions.WithLabelValues(word, outcome).Inc()
		a.log.Warn("approval answer not accepted by hypercard", "auth_id", authID, "card", card,
			"answer", word, "auth_result", result, "by", q.user, "target", fresh.Target, "err", err)
		if serr := c.showStep(ctx, q, fresh, templates.ApprovalStep{Problem: problem}, approvalKeyboard(q.loc)); serr != nil {
			a.log.Warn("approval problem not shown", "auth_id", authID, "err", serr)
		}
		return answer, true, false
	}
	a.decisions.WithLabelValues(word, "ok").Inc()

	// Recorded whatever becomes of the update's handling: HyperCard has
	// the answer, and every chat must stop offering the buttons.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer mcancel()
	if err := a.recordDecision(mctx, ev, q, f, result); err != nil {
		a.log.Error("approval answered but not in history", "auth_id", authID, "card", card,
			"answer", word, "by", q.user, "err", err)
	}
	shown, err := a.markDecided(mctx, fresh, templates.DecisionText(f.approve, userLabel(q), a.now()))
	if err != nil {
		a.log.Error("approval answered but not recorded", "auth_id", authID, "card", card,
			"answer", word, "by", q.user, "err", err)
		return answerNotDisplayed, true, true
	}
	a.log.Info("approval answered", "auth_id", authID, "card", card, "answer", word,
		"auth_result", result, "by", q.user, "target", fresh.Target, "chats", shown)
	if f.approve {
		return answerApproved, false, false
	}
	return answerDeclined, false, false
}

// markDecided records decision on the request's message in every chat it
// was shown in (every link of its card, and the tapping chat), each with an
// update task, so the deliverer edits them all and their buttons go. It
// returns how many messages it changed.
func (a *Approvals) markDecided(ctx context.Context, m otpbot.Message, decision string) (int, error) {
	targets := []otpbot.Target{m.Target}
	if key, ok := m.Event.RouteKey(); ok {
		links, err := a.store.LinksForKey(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("links of card: %w", err)
		}
		for _, l := range links {
			if l.Target != m.Target {
				targets = append(targets, l.Target)
			}
		}
	}
	n := 0
	var errs []error
	for _, t := range targets {
		changed, err := a.change(ctx, otpbot.MessageKey(m.Group, t), func(cur *otpbot.Message) bool {
			// A failed message was never shown; an answered one keeps
			// its answer. An expired one is overwritten: HyperCard
			// accepted the answer, which is what the chat must see.
			if cur.State == otpbot.StateFailed || cur.Decision != "" {
				return false
			}
			cur.State, cur.Decision = otpbot.StateDecided, decision
			return true
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", t, err))
		}
		if changed {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// repair has the deliverer render m again (its Rendered hash cleared, so
// the edit is not skipped): after a tap on a request that is finished, the
// keyboard on screen may be a stale one.
func (a *Approvals) repair(ctx context.Context, m otpbot.Message) {
	_, err := a.change(ctx, m.ID, func(cur *otpbot.Message) bool {
		if cur.TelegramID == 0 || cur.Rendered == "" || cur.State == otpbot.StateFailed {
			return false
		}
		cur.Rendered = ""
		return true
	})
	if err != nil {
		a.log.Warn("approval message not re-rendered", "message", otpbot.Ref(m.ID), "err", err)
	}
}

// change applies edit to the stored message id and queues an update task
// with it, retrying when the deliverer changed the message meanwhile.
// edit returns false to leave the message alone.
func (a *Approvals) change(ctx context.Context, id string, edit func(*otpbot.Message) bool) (bool, error) {
	for attempt := 0; ; attempt++ {
		cur, ok, err := a.store.Message(ctx, id)
		if err != nil {
			return false, fmt.Errorf("message: %w", err)
		}
		if !ok || !edit(&cur) {
			return false, nil
		}
		now := a.now()
		prev := cur.UpdatedAt
		cur.UpdatedAt = now
		if !now.After(prev) {
			// The version must change even when the clock did not move.
			cur.UpdatedAt = prev.Add(time.Nanosecond)
		}
		if cur.State.Final() {
			cur.Event = cur.Event.Redacted()
		}
		task := otpbot.Task{
			ID: otpbot.TaskID(cur.ID, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: cur.ID, Target: cur.Target, Due: now, Created: now,
		}
		err = a.store.UpdateMessage(ctx, prev, cur, task)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, otpbot.ErrNotFound) {
			return false, nil
		}
		if !errors.Is(err, otpbot.ErrConflict) || attempt >= 4 {
			return false, fmt.Errorf("update message: %w", err)
		}
	}
}
