package main

import (
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
