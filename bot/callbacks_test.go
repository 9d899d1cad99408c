package bot

import (
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
)

// pressAndWait presses a button and returns the text the bot answered the
// callback with.
func (e *env) pressAndWait(chat, user int64, messageID int, data string) string {
	e.t.Helper()
	id := e.tg.PressButton(chat, user, messageID, data)
	var answer string
	e.tg.WaitFor(e.t, func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if c.Params["callback_query_id"] == id {
				answer = c.Params["text"]
				return true
			}
		}
		return false
	})
	return answer
}

func hasButton(m bottest.Message, data string) bool {
	for _, row := range m.Buttons {
		for _, b := range row {
			if b.Data == data {
				return true
			}
		}
	}
	return false
}

func TestHideButton(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-4321"), chat(chatA))
	e.link(cardKey("CARD-4321"), chat(chatB))
	ev := e.push("h1", "CARD-4321", "765432", 5*time.Minute)
	inA, inB := e.codeMessage(chatA, ev), e.codeMessage(chatB, ev)
	for _, m := range []bottest.Message{inA, inB} {
		mustContain(t, m.Text, "<code>765432</code>")
		if !hasButton(m, telegram.CallbackHide) {
			t.Fatalf("code message without a hide button: %+v", m.Buttons)
		}
	}

	// A press that claims chat A's message from chat B finds nothing: only
	// the chat holding a message can hide it. (Telegram message ids are per
	// chat; chat B holds no message with this id besides its own.)
	foreign := inA.ID + 1000
	if got := e.pressAndWait(chatB, stranger, foreign, telegram.CallbackHide); got != en(answerGone) {
		t.Errorf("press on a message chat B does not hold: answered %q", got)
	}

	if got := e.pressAndWait(chatA, member, inA.ID, telegram.CallbackHide); got != en(answerHidden) {
		t.Errorf("hide answered %q", got)
	}
	msgA, ok, err := e.store.Message(e.ctx, otpbot.MessageKey("h1", chat(chatA)))
	if err != nil || !ok {
		t.Fatalf("message of chat A: %v %v", ok, err)
	}
	if msgA.State != otpbot.StateHidden || msgA.Event.Code != "" {
		t.Errorf("after hide: state %s, code kept %v", msgA.State, msgA.Event.Code != "")
	}

	e.tg.WaitFor(t, func() bool {
		m, _ := e.tg.Message(chatA, inA.ID)
		return m.Edits > 0
	})
	hidden, _ := e.tg.Message(chatA, inA.ID)
	mustContain(t, hidden.Text, "code hidden", "Shop h1")
	mustNotContain(t, hidden.Text, "765432")
	if len(hidden.Buttons) != 0 {
		t.Errorf("the hidden message keeps its buttons: %+v", hidden.Buttons)
	}

	// Chat B still sees its code: hiding is per chat.
	stillB, _ := e.tg.Message(chatB, inB.ID)
	mustContain(t, stillB.Text, "<code>765432</code>")
	msgB, _, _ := e.store.Message(e.ctx, otpbot.MessageKey("h1", chat(chatB)))
	if msgB.State != otpbot.StateLive || msgB.Event.Code != "765432" {
		t.Errorf("chat B's message changed: %s", msgB.State)
	}

	// A second press on the hidden message changes nothing.
	if got := e.pressAndWait(chatA, member, inA.ID, telegram.CallbackHide); got != en(answerAlready) {
		t.Errorf("second hide answered %q", got)
	}
}

func TestUnknownButton(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-4321"), chat(chatA))
	ev := e.push("u1", "CARD-4321", "111222", 5*time.Minute)
	m := e.codeMessage(chatA, ev)
	for _, data := range []string{"", "nope", "ap:1:2"} {
		if got := e.pressAndWait(chatA, admin, m.ID, data); got != en(answerBroken) {
			t.Errorf("button %q answered %q", data, got)
		}
	}
	after, _ := e.tg.Message(chatA, m.ID)
	if after.Edits != 0 {
		t.Error("an unknown button changed the message")
	}
}
