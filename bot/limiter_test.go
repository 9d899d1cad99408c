package bot

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

func TestLimiterTake(t *testing.T) {
	private := otpbot.Target{ChatID: 1}
	other := otpbot.Target{ChatID: 2}
	group := otpbot.Target{ChatID: -100}
	type step struct {
		advance time.Duration
		target  otpbot.Target
		prio    otpbot.Priority
		wantOK  bool
	}
	tests := []struct {
		name  string
		opts  LimiterOptions
		steps []step
	}{
		{
			name: "one a second per chat",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100},
			steps: []step{
				{0, private, otpbot.PriorityCode, true},
				{0, private, otpbot.PriorityCode, false},
				{0, other, otpbot.PriorityCode, true},
				{999 * time.Millisecond, private, otpbot.PriorityCode, false},
				{time.Millisecond, private, otpbot.PriorityCode, true},
			},
		},
		{
			name: "global budget",
			opts: LimiterOptions{GlobalPerSec: 2, GlobalBurst: 2, GlobalReserve: 1},
			steps: []step{
				{0, otpbot.Target{ChatID: 1}, otpbot.PriorityCode, true},
				{0, otpbot.Target{ChatID: 2}, otpbot.PriorityCode, true},
				{0, otpbot.Target{ChatID: 3}, otpbot.PriorityCode, false},
				{500 * time.Millisecond, otpbot.Target{ChatID: 3}, otpbot.PriorityCode, true},
			},
		},
		{
			name: "refreshes leave the reserve to codes",
			opts: LimiterOptions{GlobalPerSec: 10, GlobalBurst: 4, GlobalReserve: 2},
			steps: []step{
				{0, otpbot.Target{ChatID: 1}, otpbot.PriorityRefresh, true},
				{0, otpbot.Target{ChatID: 2}, otpbot.PriorityRefresh, true},
				{0, otpbot.Target{ChatID: 3}, otpbot.PriorityRefresh, false}, // 2 left: the reserve
				{0, otpbot.Target{ChatID: 3}, otpbot.PriorityOther, false},
				{0, otpbot.Target{ChatID: 4}, otpbot.PriorityCode, true},
				{0, otpbot.Target{ChatID: 5}, otpbot.PriorityUpdate, true},
				{0, otpbot.Target{ChatID: 6}, otpbot.PriorityCode, false},
			},
		},
		{
			name: "twenty a minute per group",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, ChatPerSec: 100, ChatBurst: 100, GroupPerMin: 20, GroupBurst: 2},
			steps: []step{
				{0, group, otpbot.PriorityCode, true},
				{0, group, otpbot.PriorityRefresh, false}, // the last group token is kept for a code
				{0, group, otpbot.PriorityCode, true},
				{0, group, otpbot.PriorityCode, false},
				{2 * time.Second, group, otpbot.PriorityCode, false},
				{time.Second, group, otpbot.PriorityCode, true},
				{0, private, otpbot.PriorityRefresh, true}, // private chats have no group limit
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &dlClock{now: dlStart}
			tc.opts.Now = clock.Now
			l := NewLimiter(tc.opts)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				wait := l.Take(s.target, s.prio)
				if (wait == 0) != s.wantOK {
					t.Fatalf("step %d: Take(%v, %d) wait %v, want ok=%v", i, s.target, s.prio, wait, s.wantOK)
				}
			}
		})
	}
}

func TestLimiterWaitIsAccurate(t *testing.T) {
	clock := &dlClock{now: dlStart}
	l := NewLimiter(LimiterOptions{Now: clock.Now})
	chat := otpbot.Target{ChatID: 5}
	if w := l.Take(chat, otpbot.PriorityCode); w != 0 {
		t.Fatal(w)
	}
	clock.Advance(300 * time.Millisecond)
	w := l.Take(chat, otpbot.PriorityCode)
	if w < 690*time.Millisecond || w > 710*time.Millisecond {
		t.Fatalf("wait %v, want about 700ms", w)
	}
	clock.Advance(w)
	if w := l.Take(chat, otpbot.PriorityCode); w != 0 {
		t.Fatalf("after the wait: %v", w)
	}
}

func TestLimiterPause(t *testing.T) {
	var logs bytes.Buffer
	clock := &dlClock{now: dlStart}
	l := NewLimiter(LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, MaxRetryAfter: 30 * time.Second, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a, b, c := otpbot.Target{ChatID: 1}, otpbot.Target{ChatID: 2}, otpbot.Target{ChatID: 3}

	if got := l.Pause(a, 5*time.Second); got != 5*time.Second {
		t.Fatalf("pause %v", got)
	}
	if w := l.Take(a, otpbot.PriorityCode); w != 5*time.Second {
		t.Fatalf("paused chat: wait %v", w)
	}
	if w := l.Take(b, otpbot.PriorityCode); w != 0 {
		t.Fatalf("other chat waits %v: a chat's 429 must not pause it", w)
	}
	if until := l.PausedUntil(a); !until.Equal(dlStart.Add(5 * time.Second)) {
		t.Fatalf("PausedUntil %v", until)
	}
	clock.Advance(5 * time.Second)
	if w := l.Take(a, otpbot.PriorityCode); w != 0 {
		t.Fatalf("after the pause: %v", w)
	}

	// An absurd retry_after is capped and logged.
	if got := l.Pause(a, time.Hour); got != 30*time.Second {
		t.Fatalf("capped pause %v", got)
	}
	if !strings.Contains(logs.String(), "retry_after capped") {
		t.Fatalf("no warning: %s", logs.String())
	}

	// Three chats refused within a second: a global flood pauses everyone.
	l.Pause(b, 3*time.Second)
	l.Pause(c, 3*time.Second)
	fresh := otpbot.Target{ChatID: 4}
	if w := l.Take(fresh, otpbot.PriorityCode); w == 0 {
		t.Fatal("global flood did not pause other chats")
	}
	clock.Advance(3 * time.Second)
	if w := l.Take(fresh, otpbot.PriorityCode); w != 0 {
		t.Fatalf("after the global pause: %v", w)
	}
}

// The budget is per process: with Instances processes sharing one bot,
// each takes its share, so that together they stay within Telegram's
// limits.
func TestLimiterInstancesShareTheBudget(t *testing.T) {
	clock := &dlClock{now: dlStart}
	l := NewLimiter(LimiterOptions{GlobalPerSec: 20, GlobalBurst: 4, ChatPerSec: 100, ChatBurst: 100,
		GroupPerMin: 6000, GroupBurst: 100, Instances: 2, Now: clock.Now})
	for i := range 2 {
		if w := l.Take(otpbot.Target{ChatID: int64(i + 1)}, otpbot.PriorityCode); w != 0 {
			t.Fatalf("take %d: wait %v", i, w)
		}
	}
	w := l.Take(otpbot.Target{ChatID: 9}, otpbot.PriorityCode)
	if w < 90*time.Millisecond || w > 110*time.Millisecond {
		t.Fatalf("third take: wait %v, want about 100ms (10/s, the half of 20/s)", w)
	}

	// A chat's second a message is halved too: one every two seconds.
	l = NewLimiter(LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, Instances: 2, Now: clock.Now})
	chat := otpbot.Target{ChatID: 5}
	if w := l.Take(chat, otpbot.PriorityCode); w != 0 {
		t.Fatal(w)
	}
	if w := l.Take(chat, otpbot.PriorityCode); w < 1990*time.Millisecond || w > 2010*time.Millisecond {
		t.Fatalf("chat wait %v, want about 2s", w)
	}
}
