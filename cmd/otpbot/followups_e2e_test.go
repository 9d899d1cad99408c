package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
)

// upayConsume is the UPay CC_CONSUME that settles the purchase a 3DS_OTP
// (upayOTP with the same orderNo) was for: it shares that push's trace.
func upayConsume(orderNo, otpOrderNo, cardID string) string {
	return fmt.Sprintf(`{"event":"CC_CONSUME","trace":"TR-%[2]s","orderNo":%[1]q,"timestamp":%[4]d,`+
		`"detail":{"cardId":%[3]q,"cardNumber":"5555666677771234","orderNo":%[1]q,"customerNo":"CU-1","type":2,"status":1,`+
		`"amount":"12.50","direction":2,"merchantName":"Coffee Ltd","currency":"EUR","transactionAt":%[4]d,"transactionId":"TX-%[1]s"}}`,
		orderNo, otpOrderNo, cardID, time.Now().UnixMilli())
}

// TestEndToEndFollowUpOfACode wires the whole chain through run():
// a chat that opted in with /replies on gets the CC_CONSUME of a 3DS_OTP's
// transaction as a reply to the code message; a chat that did not gets
// nothing but the code.
func TestEndToEndFollowUpOfACode(t *testing.T) {
	fake := bottest.New(t)
	in := startServe(t, testConfig(t, t.TempDir(), fake, ""), nil)

	const optedIn, quiet = int64(7001), int64(7002)
	linkCard(t, fake, optedIn, "C7")
	linkCard(t, fake, quiet, "C7")
	fake.SendCommand(optedIn, adminID, "/replies on")
	waitUntil(t, "/replies on answered", func() bool {
		for _, m := range fake.Messages(optedIn) {
			if strings.Contains(strings.ToLower(m.Plain()), "repl") && strings.Contains(m.Plain(), "on") {
				return true
			}
		}
		return false
	})

	in.pushUPay(upayOTP("ORD-T1", "C7", "246810"))
	for _, chat := range []int64{optedIn, quiet} {
		waitUntil(t, "code message", func() bool { return len(messagesWith(fake, chat, "246810")) == 1 })
	}
	code := messagesWith(fake, optedIn, "246810")[0]
	// The fake records a message when it receives it; otpbot knows it (and
	// can answer it) once the send is stored, which its "delivered" line
	// says. A payment arriving before that gets no reply: best-effort.
	waitUntil(t, "the code message stored", func() bool {
		for _, line := range strings.Split(in.logs.String(), "\n") {
			if strings.Contains(line, "msg=delivered") && strings.Contains(line, "task=upay:ORD-T1@7001#send") {
				return true
			}
		}
		return false
	})

	in.pushUPay(upayConsume("ORD-T2", "ORD-T1", "C7"))
	var reply bottest.Message
	waitUntil(t, "a follow-up answering the code message", func() bool {
		for _, m := range fake.Messages(optedIn) {
			if m.ReplyTo == code.ID {
				reply = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(reply.Plain(), "Coffee Ltd") || !strings.Contains(reply.Plain(), "•••• 1234") {
		t.Errorf("the reply does not tell the payment (merchant, card): %q", reply.Plain())
	}
	if strings.Contains(reply.Text, "246810") || strings.Contains(reply.Text, "5555666677771234") {
		t.Errorf("the reply shows a code or the full card number: %q", reply.Text)
	}

	// The chat without opt-in has had its turn once a later command is
	// answered there; nothing in it answers its code message.
	quietCode := messagesWith(fake, quiet, "246810")[0]
	fake.SendCommand(quiet, adminID, "/links")
	waitUntil(t, "/links answered", func() bool { return len(messagesWith(fake, quiet, "C7")) >= 2 })
	for _, m := range fake.Messages(quiet) {
		if m.ReplyTo == quietCode.ID {
			t.Errorf("chat without /replies on got a reply: %q", m.Plain())
		}
	}
}
