package deliver

import (
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// When Telegram comes back after an outage, the work that waited on a
// backoff is due at once: with the clock standing still its backoff never
// ends, so only the recovery (a probe, or any call that succeeds) can send
// it.
func TestDeliverSendsWaitingWorkWhenTelegramIsBack(t *testing.T) {
	e := newDlEnv(t)
	for i, chat := range []int64{dlChat, dlChat + 1, dlChat + 2} {
		e.link("C"+string(rune('1'+i)), otpbot.Target{ChatID: chat})
	}
	e.tg.SetDown(502)
	e.start()
	for i := range 3 {
		e.push(e.codeEvent("ev"+string(rune('1'+i)), "C"+string(rune('1'+i)), 5*time.Minute))
	}
	e.tg.WaitFor(t, func() bool {
		return e.calls("sendMessage", dlChat) >= 1 && e.calls("sendMessage", dlChat+1) >= 1 && e.calls("sendMessage", dlChat+2) >= 1
	})
	e.settle()
	e.tg.SetUp()
	for _, chat := range []int64{dlChat, dlChat + 1, dlChat + 2} {
		m := e.waitMessages(chat, 1)[0]
		if !strings.Contains(m.Text, dlCode) {
			t.Fatalf("chat %d: %q", chat, m.Text)
		}
	}
	if got := len(e.tg.Calls("getMe")); got < 2 {
		t.Errorf("getMe called %d times: the recovery was not noticed by a probe", got)
	}
	if !strings.Contains(e.logs.String(), "telegram answers again: waiting work is due now") {
		t.Errorf("no log line says the waiting work was brought forward:\n%s", e.logs.String())
	}
}
