package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
)

// buttonData returns the callback data of m's button whose data starts
// with prefix, or "".
func buttonData(m bottest.Message, prefix string) string {
	for _, row := range m.Buttons {
		for _, b := range row {
			if strings.HasPrefix(b.Data, prefix) {
				return b.Data
			}
		}
	}
	return ""
}

// firstTap has user tap button (CallbackApprove or CallbackDecline) under
// the message and returns the callback data of the confirm and cancel
// buttons the confirmation step shows.
func (e *approvalEnv) firstTap(chat, user int64, id int, button string) (confirm, cancel string) {
	e.t.Helper()
	want := en(answerAskApprove)
	if button == telegram.CallbackDecline {
		want = en(answerAskDecline)
	}
	if got := e.pressAndWait(chat, user, id, button); got != want {
		e.t.Fatalf("first tap on %s answered %q, want %q", button, got, want)
	}
	// The step is shown before the tap is answered.
	m, _ := e.tg.Message(chat, id)
	confirm, cancel = buttonData(m, button+":confirm:"), buttonData(m, button+":cancel:")
	if confirm == "" || cancel == "" {
		e.t.Fatalf("confirmation step without its buttons: %+v", m.Buttons)
	}
	return confirm, cancel
}

// answer has user tap button and confirm it, and returns the answer to
// the confirming tap.
func (e *approvalEnv) answer(chat, user int64, id int, button string) string {
	e.t.Helper()
	confirm, _ := e.firstTap(chat, user, id, button)
	return e.pressAndWait(chat, user, id, confirm)
}

// TestApprovalConfirmationIsBound: the confirming tap works only for the
// user who made the first tap, in that direction, with the nonce of a
// first tap still pending. Anything else is told the button no longer
// works, and HyperCard is not called.
func TestApprovalConfirmationIsBound(t *testing.T) {
	other := allowed // a second user on the allowed list
	tests := []struct {
		name string
		// forge returns the callback data the forger (user) presses in
		// chat A, after member's first tap whose buttons are given.
		forge func(e *approvalEnv, in bottest.Message, confirm, cancel string) (user int64, data string)
	}{
		{"another allowed user presses the confirmation", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return other, confirm
		}},
		{"another allowed user forges the opposite confirmation", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return other, telegram.CallbackDecline + strings.TrimPrefix(confirm, telegram.CallbackApprove)
		}},
		{"confirmation without any first tap", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return other, telegram.CallbackDecline + ":confirm"
		}},
		{"confirmation with a made-up nonce", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return member, telegram.CallbackApprove + ":confirm:AAAAAAAAAAAAAAAAAAAAAAAAAA"
		}},
		{"direction swapped by the user who tapped", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return member, telegram.CallbackDecline + strings.TrimPrefix(confirm, telegram.CallbackApprove)
		}},
		{"nonce expired", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			e.clock.Advance(DefaultConfirmTTL + time.Second)
			return member, confirm
		}},
		{"nonce cancelled", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			if got := e.pressAndWait(chatA, member, in.ID, cancel); got != en(answerCancelled) {
				e.t.Fatalf("cancel answered %q", got)
			}
			return member, confirm
		}},
		{"nonce of an earlier first tap that was used", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			// HyperCard fails the call: the confirmation is used all the same.
			e.hc.FailNext(1, 503)
			if got := e.pressAndWait(chatA, member, in.ID, confirm); got != en(answerUnreachable) {
				e.t.Fatalf("failed call answered %q", got)
			}
			return member, confirm
		}},
		{"another user cancels", func(e *approvalEnv, in bottest.Message, confirm, cancel string) (int64, string) {
			return other, cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newApprovalEnv(t, approvalConfig{allowed: []int64{member, other}})
			e.link(cardKey(authCard), chat(chatA))
			ev := e.pushAuth("400", 1, 10*time.Minute)
			in := e.request(chatA, ev)
			confirm, cancel := e.firstTap(chatA, member, in.ID, telegram.CallbackApprove)
			user, data := tt.forge(e, in, confirm, cancel)
			calls := len(e.decisions())
			if got := e.pressAndWait(chatA, user, in.ID, data); got != en(answerBroken) {
				t.Errorf("%d pressing %q answered %q, want %q", user, data, got, en(answerBroken))
			}
			if n := len(e.decisions()); n != calls {
				t.Fatalf("%d HyperCard calls after the forged tap, want %d", n, calls)
			}
			if st := e.stored(ev.Group, chatA); st.State != otpbot.StateLive || st.Decision != "" {
				t.Errorf("the request changed: %s %q", st.State, st.Decision)
			}
			if got := e.reply(chatA, member, "/history"); strings.Contains(got, DecisionEvent) {
				t.Errorf("history records a decision nobody made:\n%s", got)
			}
		})
	}
}

// TestApprovalDecisionInHistory: the legitimate two taps make exactly one
// call, and /history tells who answered, how and when (never a code).
func TestApprovalDecisionInHistory(t *testing.T) {
	for _, button := range []string{telegram.CallbackApprove, telegram.CallbackDecline} {
		t.Run(button, func(t *testing.T) {
			e := newApprovalEnv(t, approvalConfig{allowed: []int64{member, allowed}})
			e.link(cardKey(authCard), chat(chatA))
			ev := e.pushAuth("410", 1, 10*time.Minute)
			in := e.request(chatA, ev)

			// Another allowed user's first tap does not disturb member's.
			mine, _ := e.firstTap(chatA, member, in.ID, button)
			e.firstTap(chatA, allowed, in.ID, telegram.CallbackApprove)
			e.clock.Advance(time.Minute)
			got := e.pressAndWait(chatA, member, in.ID, mine)
			want, word, result := en(answerApproved), "approved", 2
			if button == telegram.CallbackDecline {
				want, word, result = en(answerDeclined), "declined", 3
			}
			if got != want {
				t.Fatalf("confirmation answered %q, want %q", got, want)
			}
			calls := e.decisions()
			if len(calls) != 1 || calls[0].AuthResult != result || !calls[0].Verified {
				t.Fatalf("HyperCard calls: %+v, want one with auth_result %d", calls, result)
			}
			// A double tap on the used confirmation calls nothing more.
			e.pressAndWait(chatA, member, in.ID, mine)
			if n := len(e.decisions()); n != 1 {
				t.Errorf("%d calls after a double tap", n)
			}

			hist := e.reply(chatA, member, "/history")
			mustContain(t, hist, "2025-06-01 12:01", "Purchase answered", "•••• 3333", "Shop 410",
				word+" by @user9003 (id 9003)")
			mustNotContain(t, hist, authCard)
			entries, err := e.store.History(e.ctx, cardKey(authCard), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 2 || entries[0].Event.Name != DecisionEvent || entries[0].Event.Code != "" {
				t.Errorf("history entries: %+v", entries)
			}
		})
	}
}
