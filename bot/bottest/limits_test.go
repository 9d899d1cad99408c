package bottest_test

import (
	"strconv"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
)

// sendAll sends one message to each chat in turn and returns the 429s, in
// order; any other failure fails the test.
func sendAll(t *testing.T, b *tgbotapi.BotAPI, chats ...int64) []*tgbotapi.Error {
	t.Helper()
	var out []*tgbotapi.Error
	for _, c := range chats {
		_, err := b.Send(tgbotapi.NewMessage(c, "hi"))
		if err == nil {
			continue
		}
		te := apiErr(t, err)
		if te.Code != 429 {
			t.Fatalf("send to %d: %+v", c, te)
		}
		out = append(out, te)
	}
	return out
}

// The buckets allow their burst at once, then answer 429 with
// retry_after, and keep refusing that scope only. The rates are slow
// enough that no token comes back during the test however slow the
// machine is.
func TestLimitsAllowABurstThen429(t *testing.T) {
	t.Run("chat", func(t *testing.T) {
		s := bottest.New(t, bottest.WithTelegramLimits(bottest.Limits{ChatPerSec: 0.01, ChatBurst: 3}))
		b := newBot(t, s)
		if got := sendAll(t, b, 1, 1, 1); len(got) != 0 {
			t.Fatalf("burst of 3 refused: %+v", got[0])
		}
		got := sendAll(t, b, 1, 1)
		if len(got) != 2 || got[0].RetryAfter < 50 || got[0].RetryAfter > 100 || got[0].Message != "Too Many Requests: retry after "+strconv.Itoa(got[0].RetryAfter) {
			t.Fatalf("after the burst: %+v", got)
		}
		if got := sendAll(t, b, 2); len(got) != 0 {
			t.Fatalf("another chat refused: %+v", got[0])
		}
		if n := len(s.Messages(1)); n != 3 || s.Count429() != 2 {
			t.Fatalf("%d messages, %d 429s", n, s.Count429())
		}
	})
	t.Run("global", func(t *testing.T) {
		s := bottest.New(t, bottest.WithTelegramLimits(bottest.Limits{GlobalPerSec: 0.01, GlobalBurst: 4}))
		b := newBot(t, s)
		got := sendAll(t, b, 1, 2, 3, 4, 5, 6)
		if len(got) != 2 || got[0].RetryAfter < 50 || s.MessageCount() != 4 {
			t.Fatalf("429s %+v, %d messages", got, s.MessageCount())
		}
	})
	t.Run("edits, deletes and callback answers count", func(t *testing.T) {
		s := bottest.New(t, bottest.WithTelegramLimits(bottest.Limits{GlobalPerSec: 0.01, GlobalBurst: 5, ChatPerSec: 0.01, ChatBurst: 3}))
		b := newBot(t, s)
		m, err := b.Send(tgbotapi.NewMessage(1, "a"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Send(tgbotapi.NewEditMessageText(1, m.MessageID, "b")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Request(tgbotapi.NewDeleteMessage(1, m.MessageID)); err != nil {
			t.Fatal(err)
		}
		if got := sendAll(t, b, 1); len(got) != 1 {
			t.Fatal("a 4th counted call in chat 1 was accepted")
		}
		// The callback answer takes the global budget's 4th token, but no
		// chat's: chat 2 then takes the 5th and the global budget is spent.
		if _, err := b.Request(tgbotapi.NewCallback("cb1", "")); err != nil {
			t.Fatal(err)
		}
		if got := sendAll(t, b, 2, 3); len(got) != 1 {
			t.Fatalf("global budget: %d 429s, want 1", len(got))
		}
	})
}

// 20 a minute in a group (a negative chat id), with a burst of 3; private
// chats are not bound by it. Bounds follow from the time the sends took.
func TestLimitsGroupPerMinute(t *testing.T) {
	s := bottest.New(t, bottest.WithTelegramLimits(bottest.Limits{GroupPerMin: 20, GroupBurst: 3}))
	b := newBot(t, s)
	chats := []int64{-100, -100, -100, -100, -100, -100, -100, -100, -100, -100}
	start := time.Now()
	got := sendAll(t, b, chats...)
	took := time.Since(start)
	accepted := len(chats) - len(got)
	// A token every 3s: at most 3 + one per 3s elapsed (+1 for the edge).
	if limit := 3 + int(took/(3*time.Second)) + 1; accepted < 3 || accepted > limit {
		t.Fatalf("%d of 10 accepted in %s, want 3..%d", accepted, took, limit)
	}
	if len(got) == 0 || got[0].RetryAfter < 1 || got[0].RetryAfter > 3 {
		t.Fatalf("429s %+v", got)
	}
	if got := sendAll(t, b, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5); len(got) != 0 {
		t.Fatalf("private chat refused: %+v", got[0])
	}
}

// RealLimits is Telegram's, and WithLimits still means "per second,
// with a second's worth at once".
func TestRealLimitsAndWithLimits(t *testing.T) {
	want := bottest.Limits{GlobalPerSec: 30, GlobalBurst: 30, ChatPerSec: 1, ChatBurst: 3, GroupPerMin: 20, GroupBurst: 3}
	if got := bottest.RealLimits(); got != want {
		t.Fatalf("RealLimits = %+v", got)
	}
	s := bottest.New(t, bottest.WithLimits(0, 2))
	b := newBot(t, s)
	start := time.Now()
	got := sendAll(t, b, 1, 1, 1, 1)
	// 2 at once, then one more per half second elapsed.
	if accepted, limit := 4-len(got), 2+int(time.Since(start)/(500*time.Millisecond))+1; accepted < 2 || accepted > limit {
		t.Fatalf("WithLimits(0, 2): %d of 4 sends accepted, want 2..%d", accepted, limit)
	}
	if len(got) > 0 && got[0].RetryAfter != 1 {
		t.Fatalf("retry_after %d, want 1", got[0].RetryAfter)
	}
	s.SetLimits(0, 0)
	if got := sendAll(t, b, 1, 1, 1); len(got) != 0 {
		t.Fatal("SetLimits(0, 0) still limits")
	}
}

// MaxCallsPerWindow counts the accepted calls that count against the
// limits, from every client together; 429s and other methods are not in
// it, and ForgetCalls starts it anew.
func TestMaxCallsPerWindow(t *testing.T) {
	s := bottest.New(t, bottest.WithTelegramLimits(bottest.Limits{ChatPerSec: 0.01, ChatBurst: 2}))
	a, b := newBot(t, s), newBot(t, s) // two processes of one bot
	// The 3rd send to chat 1 is a 429.
	sendAll(t, a, 1, 1, 1)
	sendAll(t, b, 2)
	if _, err := b.Request(tgbotapi.NewCallback("cb1", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Request(tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "start", Description: "start"})); err != nil {
		t.Fatal(err)
	}
	if got := s.MaxCallsPerWindow(time.Hour); got != 4 || s.CountedCalls() != 4 {
		t.Fatalf("MaxCallsPerWindow(1h) = %d, CountedCalls = %d, want 4", got, s.CountedCalls())
	}
	if got := s.MaxCallsPerWindow(time.Nanosecond); got < 1 || got > 4 {
		t.Fatalf("MaxCallsPerWindow(1ns) = %d", got)
	}
	s.ForgetCalls()
	if got := s.MaxCallsPerWindow(time.Hour); got != 0 {
		t.Fatalf("after ForgetCalls: %d", got)
	}
}
