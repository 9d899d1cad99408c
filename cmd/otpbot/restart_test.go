package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
)

// TestBinaryCodeRedactedOnTimeAfterAKill is issue 4's restart test: a code
// with 10 s left, the process killed (SIGKILL, no goodbye), started again —
// the code is still redacted at its expiry, by the new process, from what
// the store remembered. The test runs on the real clock (the binary has no
// other), so it checks "not before the expiry" exactly and "soon after" with
// a generous deadline.
func TestBinaryCodeRedactedOnTimeAfterAKill(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	const ttl = 10 * time.Second
	cfg := testConfig(t, dir, fake, "codes:\n  ttl: 10s\n  countdown_interval: 2s\n")
	const chat = int64(3301)

	p := startProc(t, nil, "serve", "-config", cfg)
	linkCard(t, fake, chat, "C1")
	pushed := time.Now()
	(&instance{t: t, url: p.url}).pushUPay(upayOTP("ORD-TTL", "C1", "737373"))
	waitUntil(t, "the code message", func() bool { return len(messagesWith(fake, chat, "737373")) == 1 })
	id := messagesWith(fake, chat, "737373")[0].ID

	_ = p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	startProc(t, nil, "serve", "-config", cfg)

	// Redacted by the new process: the message no longer shows the code
	// and says it expired.
	var m bottest.Message
	deadline := time.Now().Add(ttl + 30*time.Second)
	for {
		for _, msg := range fake.Messages(chat) {
			if msg.ID == id {
				m = msg
			}
		}
		if !strings.Contains(m.Text, "737373") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the code is still shown %s after the push: %q", time.Since(pushed), m.Plain())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(strings.ToLower(m.Plain()), "expired") {
		t.Errorf("the redacted message does not say the code expired: %q", m.Plain())
	}
	// Never before its time: the push was received after `pushed`, so its
	// expiry is at least pushed+ttl.
	if early := pushed.Add(ttl).Sub(m.EditedAt); early > 0 {
		t.Errorf("the code was redacted %s before it expired", early)
	}
}

// TestBinaryNoCodeOutlivesItsExpiryAfterAKillMidSend: otpbot is killed
// while Telegram, two seconds away, has already shown six codes but not yet
// answered. After the restart each code is sent again, the copies whose ids
// the dead process never learned are found and removed before the codes
// expire, and after the expiry no message in those chats shows one; no
// cardholder saw a code more than twice.
func TestBinaryNoCodeOutlivesItsExpiryAfterAKillMidSend(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	const ttl = 12 * time.Second
	cfg := testConfig(t, dir, fake, "codes:\n  ttl: 12s\n  countdown_interval: 3s\n")
	chats := []int64{3401, 3402, 3403, 3404, 3405, 3406}

	p := startProc(t, nil, "serve", "-config", cfg)
	in := &instance{t: t, url: p.url}
	for i, chat := range chats {
		linkCard(t, fake, chat, fmt.Sprintf("K%d", i))
	}
	// The chats talk meanwhile: ids between the lost copy and the resend.
	for _, chat := range chats {
		fake.SendCommand(chat, 9999, "hello")
	}
	fake.SetRoundTrip(2*time.Second, 0)
	pushed := time.Now()
	for i := range chats {
		in.pushUPay(upayOTP(fmt.Sprintf("ORD-KILL-%d", i), fmt.Sprintf("K%d", i), fmt.Sprintf("55%04d", i)))
	}
	shown := func() int {
		n := 0
		for i, chat := range chats {
			n += len(messagesWith(fake, chat, fmt.Sprintf("55%04d", i)))
		}
		return n
	}
	// Telegram has acted on the sends (half way through the round trip);
	// their answers are still on their way when the process dies.
	waitUntil(t, "Telegram to show the six codes", func() bool { return shown() == len(chats) })
	_ = p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	fake.SetRoundTrip(100*time.Millisecond, 0)
	startProc(t, nil, "serve", "-config", cfg)

	// Every code is sent again by the new process, and the lost copy goes
	// before the resend expires.
	for i, chat := range chats {
		code := fmt.Sprintf("55%04d", i)
		waitUntil(t, "each code resent, one copy left", func() bool {
			ms := messagesWith(fake, chat, code)
			return sentWith(fake, chat, code) == 2 && len(ms) == 1 && strings.Contains(ms[0].Plain(), "expires in")
		})
		if time.Since(pushed) > ttl {
			t.Fatalf("chat %d: the lost copy was still there at the code's expiry", chat)
		}
	}
	// After the expiry no message anywhere in those chats shows a code.
	waitUntil(t, "the codes' expiry", func() bool { return time.Since(pushed) > ttl+2*time.Second && shown() == 0 })
	for i, chat := range chats {
		if n := sentWith(fake, chat, fmt.Sprintf("55%04d", i)); n > 2 {
			t.Errorf("chat %d: the code was sent %d times, want at most twice", chat, n)
		}
	}
}
