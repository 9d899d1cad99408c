package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/bolt"
)

// hcCard is a HyperCard card id (HyperCard's ids are long digit strings);
// its last four are 1234 like the UPay card's number.
const hcCard = "15723682800000051234"

// TestEndToEndCodesReachTheLinkedChat is the walking skeleton: an admin
// links cards, one code of each provider arrives once in that chat, masked;
// a stranger cannot link; an unlinked card's push sends nothing and is in
// history; a push sent three times is one message.
func TestEndToEndCodesReachTheLinkedChat(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	in := startServe(t, testConfig(t, dir, fake, ""), nil)

	const chat = int64(5001)
	linkCard(t, fake, chat, "C1")
	linkCard(t, fake, chat, hcCard)

	// A stranger may not link, and learns nothing.
	const strangerChat = int64(5002)
	fake.SendCommand(strangerChat, strangerID, "/link card C1")
	waitUntil(t, "refusal", func() bool { return len(fake.Messages(strangerChat)) == 1 })
	if got := fake.Messages(strangerChat)[0].Plain(); strings.Contains(got, "Linked") || strings.Contains(got, "1234") {
		t.Errorf("stranger's /link answered %q", got)
	}

	in.pushUPay(upayOTP("ORD-1", "C1", "654321"))
	in.pushHyperCard(hcOTP(hcCard, "888666"))
	for _, code := range []string{"654321", "888666"} {
		waitUntil(t, "code "+code, func() bool { return len(messagesWith(fake, chat, code)) == 1 })
		m := messagesWith(fake, chat, code)[0]
		if !strings.Contains(m.Plain(), "•••• 1234") {
			t.Errorf("code message lacks •••• 1234: %q", m.Plain())
		}
		if !strings.Contains(m.Text, "<code>"+code+"</code>") {
			t.Errorf("code is not in <code> (one-tap copy): %q", m.Text)
		}
		for _, full := range []string{"5555666677771234", hcCard} {
			if strings.Contains(m.Text, full) {
				t.Errorf("message shows the full number %s: %q", full, m.Text)
			}
		}
	}

	// The same push three times: acknowledged each time, one message.
	dup := upayOTP("ORD-DUP", "C1", "111222")
	for range 3 {
		in.pushUPay(dup)
	}
	waitUntil(t, "duplicate's message", func() bool { return sentWith(fake, chat, "111222") >= 1 })

	// A push for a card nobody linked: nothing is sent, history has it.
	in.pushUPay(upayOTP("ORD-LOST", "C-UNLINKED", "999000"))
	// An admin asks for that card's history; the reply proves the push was
	// recorded (and, being later than the push, that the bot had its turn).
	fake.SendCommand(chat, adminID, "/history C-UNLINKED")
	waitUntil(t, "history reply", func() bool { return strings.Contains(historyReply(fake, chat), "not delivered") })
	if h := historyReply(fake, chat); strings.Contains(h, "999000") {
		t.Errorf("history shows a code: %q", h)
	}
	// By now every delivery queued before the history command is out.
	waitUntil(t, "quiet outbox", func() bool { return sentWith(fake, chat, "111222") == 1 })
	if n := sentWith(fake, chat, "111222"); n != 1 {
		t.Errorf("a push sent three times produced %d messages", n)
	}
	if n := sentWith(fake, chat, "999000"); n != 0 {
		t.Errorf("an unlinked card's code was sent %d times", n)
	}
	for _, c := range fake.Calls("sendMessage") {
		if strings.Contains(c.Params["text"], "999000") {
			t.Errorf("unlinked code sent to chat %s", c.Params["chat_id"])
		}
	}
	if n := sentWith(fake, chat, "654321") + sentWith(fake, chat, "888666"); n != 2 {
		t.Errorf("codes were sent %d times, want 2", n)
	}
	if err := in.stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}

	// The store file holds the unlinked push in its history.
	s, err := bolt.Open(dir+"/otpbot.db", otpbot.StoreOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hist, err := s.History(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C-UNLINKED"}, 10)
	if err != nil || len(hist) != 1 || hist[0].Outcome != otpbot.OutcomeUnrouted || hist[0].Event.Code != "" {
		t.Errorf("history of the unlinked card = %+v, %v; want one unrouted entry without its code", hist, err)
	}
	if strings.Contains(in.logs.String(), testToken) || strings.Contains(in.logs.String(), "654321") {
		t.Errorf("logs leak the token or a code")
	}
}

// historyReply returns the text of the bot's /history answer in chat.
func historyReply(fake *bottest.Server, chat int64) string {
	for _, m := range fake.Messages(chat) {
		p := m.Plain()
		if strings.HasPrefix(p, "History of") {
			return p
		}
	}
	return ""
}

// TestEndToEndDeliveryAfterOutageAndRestart: a push accepted while
// Telegram answers 502 is delivered once Telegram recovers, also when the
// process is stopped during the outage and started again on the same file.
func TestEndToEndDeliveryAfterOutageAndRestart(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, nil)
	const chat = int64(6001)
	linkCard(t, fake, chat, "C1")

	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-OUT-1", "C1", "424242"))
	// The deliverer tried and failed at least once.
	waitUntil(t, "a failed send", func() bool {
		for _, c := range fake.Calls("sendMessage") {
			if c.Code == 502 {
				return true
			}
		}
		return false
	})
	fake.SetUp()
	waitUntil(t, "delivery after recovery", func() bool { return sentWith(fake, chat, "424242") == 1 })

	// Down again, a push accepted, the process stopped before it could send.
	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-OUT-2", "C1", "535353"))
	if err := in.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := sentWith(fake, chat, "535353"); n != 0 {
		t.Fatalf("sent during the outage: %d", n)
	}
	fake.SetUp()
	startServe(t, cfg, nil)
	waitUntil(t, "delivery after restart", func() bool { return sentWith(fake, chat, "535353") == 1 })
	if n := sentWith(fake, chat, "424242"); n != 1 {
		t.Errorf("the first code was sent %d times after the restart", n)
	}
}

var _ = fmt.Sprint
var _ = time.Second
