package deliver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
)

// A send interrupted by a crash (Telegram showed the code; the process died
// before it recorded the message id) leaves a copy nobody could hide. The
// resend finds it just below its own id and removes it, touching neither
// the cardholder's messages nor the bot's other replies in between, not
// even one with buttons.
func TestDeliverRemovesTheCopyOfAnInterruptedSend(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	ctx := context.Background()
	ev := e.codeEvent("ev1", "C1", 5*time.Minute)
	e.push(ev)

	// The crashed process: it marked the send as started, and Telegram
	// took the message, but its answer never came back.
	msgID := otpbot.MessageKey(ev.Group, otpbot.Target{ChatID: dlChat})
	m := e.message(msgID)
	cur := m
	cur.SendStarted, cur.UpdatedAt = e.clock.Now(), m.UpdatedAt.Add(time.Millisecond)
	if err := e.store.UpdateMessage(ctx, m.UpdatedAt, cur); err != nil {
		t.Fatal(err)
	}
	text, err := e.tmpl.RenderMessage(cur, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := e.client.Send(ctx, telegram.OutMessage{Target: cur.Target, Text: text, Buttons: DefaultButtons(e.tmpl.Default(), cur), Protect: true})
	if err != nil {
		t.Fatal(err)
	}
	// Then the chat goes on: the cardholder writes, the bot answers
	// something without buttons.
	e.tg.SendCommand(dlChat, 777, "hello?")
	reply, err := e.client.Send(ctx, telegram.OutMessage{Target: cur.Target, Text: "a reply"})
	if err != nil {
		t.Fatal(err)
	}
	// And a reply with buttons of its own (a language picker): not a copy.
	picker, err := e.client.Send(ctx, telegram.OutMessage{Target: cur.Target, Text: "Choose a language",
		Buttons: [][]telegram.Button{{{Text: "English", Data: "lang:en"}}}})
	if err != nil {
		t.Fatal(err)
	}

	e.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	e.tg.WaitFor(t, func() bool {
		_, stillThere := e.tg.Message(dlChat, orphan)
		return !stillThere
	})
	e.settle()
	var codes []int
	for _, msg := range e.tg.Messages(dlChat) {
		if strings.Contains(msg.Text, dlCode) {
			codes = append(codes, msg.ID)
		}
	}
	if len(codes) != 1 || codes[0] == orphan {
		t.Fatalf("messages showing the code: %v (orphan was %d), want the resent one only", codes, orphan)
	}
	if r, ok := e.tg.Message(dlChat, reply); !ok || r.Text != "a reply" || r.Edits != 0 {
		t.Fatalf("the bot's other reply was touched: %+v (there: %v)", r, ok)
	}
	if r, ok := e.tg.Message(dlChat, picker); !ok || r.Text != "Choose a language" {
		t.Fatalf("the bot's reply with buttons was taken for the copy: %+v (there: %v)", r, ok)
	}
	if got := e.message(msgID); got.TelegramID != codes[0] || !got.SendStarted.IsZero() {
		t.Fatalf("stored message: id %d, send started %v", got.TelegramID, got.SendStarted)
	}
	if !strings.Contains(e.logs.String(), "copy of a code left by an interrupted send deleted") {
		t.Errorf("no log line for the removed copy:\n%s", e.logs.String())
	}
}

// A send that nothing interrupted probes nothing: the bracket costs one
// store write, no calls.
func TestDeliverUninterruptedSendProbesNothing(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	if n := len(e.tg.Calls("editMessageReplyMarkup")); n != 0 {
		t.Fatalf("%d probes after a send nothing interrupted", n)
	}
}

// A send the rate limiter put off made no call: the claim's send-started
// mark (the embedded store marks sends as it claims them) is put back as
// it was, so the send that follows is not taken for a resend and probes
// nothing.
func TestDeliverDeferredSendIsNoResend(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	lim := telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1, ChatBurst: 1,
		GroupPerMin: 1e8, GroupBurst: 1e6, Now: e.clock.Now})
	e.start(func(o *DelivererOptions) {
		o.Limiter = lim
		o.MaxInlineWait = time.Millisecond
	})
	e.push(e.codeEvent("a", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	// The second code finds the chat's budget spent.
	ev := e.codeEvent("b", "C1", 5*time.Minute)
	e.push(ev)
	e.tg.WaitFor(t, func() bool {
		return testutil.ToFloat64(e.d.deliveries.WithLabelValues(string(otpbot.TaskSend), "deferred")) == 1
	})
	e.settle()
	if m := e.message(otpbot.MessageKey(ev.Group, target)); !m.SendStarted.IsZero() || m.TelegramID != 0 {
		t.Fatalf("after the deferral: send started %v, telegram id %d", m.SendStarted, m.TelegramID)
	}
	e.advance(time.Second)
	e.waitMessages(dlChat, 2)
	e.settle()
	if n := len(e.tg.Calls("editMessageReplyMarkup")); n != 0 {
		t.Fatalf("%d probes after a send that was only put off", n)
	}
}
