package telegram

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// limStart is when the limiter tests' clocks start.
var limStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestLimiterTake(t *testing.T) {
	ctx := context.Background()
	private := otpbot.Target{ChatID: 1}
	other := otpbot.Target{ChatID: 2}
	group := otpbot.Target{ChatID: -100}
	tests := []struct {
		name  string
		opts  LimiterOptions
		steps []limStep
	}{
		{
			name: "one a second per chat",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, ChatBurst: 1},
			steps: []limStep{
				{0, private, Urgent, true},
				{0, private, Urgent, false},
				{0, other, Urgent, true},
				{999 * time.Millisecond, private, Urgent, false},
				{time.Millisecond, private, Urgent, true},
			},
		},
		{
			name: "global budget",
			opts: LimiterOptions{GlobalPerSec: 2, GlobalBurst: 2, GlobalReserve: 1},
			steps: []limStep{
				{0, otpbot.Target{ChatID: 1}, Urgent, true},
				{0, otpbot.Target{ChatID: 2}, Urgent, true},
				{0, otpbot.Target{ChatID: 3}, Urgent, false},
				{500 * time.Millisecond, otpbot.Target{ChatID: 3}, Urgent, true},
			},
		},
		{
			name: "refreshes leave the reserve to codes",
			opts: LimiterOptions{GlobalPerSec: 10, GlobalBurst: 4, GlobalReserve: 2},
			steps: []limStep{
				{0, otpbot.Target{ChatID: 1}, Spare, true},
				{0, otpbot.Target{ChatID: 2}, Spare, true},
				{0, otpbot.Target{ChatID: 3}, Spare, false}, // 2 left: the reserve
				{0, otpbot.Target{ChatID: 3}, Spare, false},
				{0, otpbot.Target{ChatID: 4}, Urgent, true},
				{0, otpbot.Target{ChatID: 5}, Urgent, true},
				{0, otpbot.Target{ChatID: 6}, Urgent, false},
			},
		},
		{
			name: "a chat's burst of three, the last kept for a code",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100},
			steps: []limStep{
				{0, private, Spare, true},
				{0, private, Spare, true},
				{0, private, Spare, false}, // one token left: the code's
				{0, private, Urgent, true}, // a code never waits for a refresh
				{0, private, Urgent, false},
				{time.Second, private, Urgent, true},
			},
		},
		{
			name: "replies leave the bot's last token to a code",
			opts: LimiterOptions{GlobalPerSec: 10, GlobalBurst: 3, GlobalReserve: 2, ChatPerSec: 100, ChatBurst: 100},
			steps: []limStep{
				{0, otpbot.Target{ChatID: 1}, Reply, true},
				{0, otpbot.Target{ChatID: 2}, Reply, true},
				{0, otpbot.Target{ChatID: 3}, Reply, false}, // one left: the code's
				{0, otpbot.Target{ChatID: 4}, Urgent, true},
				{0, otpbot.Target{ChatID: 5}, Urgent, false},
			},
		},
		{
			name: "callback answers take the global budget only",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 3, GlobalReserve: 1, ChatBurst: 1},
			steps: []limStep{
				{0, otpbot.Target{}, Urgent, true},
				{0, otpbot.Target{}, Urgent, true},
				{0, otpbot.Target{}, Spare, false}, // the reserve
				{0, otpbot.Target{}, Urgent, true},
				{0, otpbot.Target{}, Urgent, false},
			},
		},
		{
			name: "thirty a second sustained, not less",
			opts: LimiterOptions{ChatPerSec: 100, ChatBurst: 100},
			steps: append(burst(5, 0), // the burst
				append(burst(1, 34*time.Millisecond), burst(1, 33*time.Millisecond)...)...),
		},
		{
			name: "twenty a minute per group",
			opts: LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, ChatPerSec: 100, ChatBurst: 100, GroupPerMin: 20, GroupBurst: 2},
			steps: []limStep{
				{0, group, Urgent, true},
				{0, group, Spare, false}, // the last group token is kept for a code
				{0, group, Urgent, true},
				{0, group, Urgent, false},
				{2 * time.Second, group, Urgent, false},
				{time.Second, group, Urgent, true},
				{0, private, Spare, true}, // private chats have no group limit
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := storetest.NewClock(limStart)
			tc.opts.Now = clock.Now
			l := NewLimiter(tc.opts)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				wait := l.Take(ctx, s.target, s.prio).For
				if (wait == 0) != s.wantOK {
					t.Fatalf("step %d: Take(%v, %d) wait %v, want ok=%v", i, s.target, s.prio, wait, s.wantOK)
				}
			}
		})
	}
}

func TestLimiterWaitIsAccurate(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(limStart)
	l := NewLimiter(LimiterOptions{ChatBurst: 1, Now: clock.Now})
	chat := otpbot.Target{ChatID: 5}
	if w := l.Take(ctx, chat, Urgent).For; w != 0 {
		t.Fatal(w)
	}
	clock.Advance(300 * time.Millisecond)
	w := l.Take(ctx, chat, Urgent).For
	if w < 690*time.Millisecond || w > 710*time.Millisecond {
		t.Fatalf("wait %v, want about 700ms", w)
	}
	clock.Advance(w)
	if w := l.Take(ctx, chat, Urgent).For; w != 0 {
		t.Fatalf("after the wait: %v", w)
	}
}

func TestLimiterPause(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	clock := storetest.NewClock(limStart)
	l := NewLimiter(LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, MaxRetryAfter: 30 * time.Second, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a, b, c := otpbot.Target{ChatID: 1}, otpbot.Target{ChatID: 2}, otpbot.Target{ChatID: 3}

	if got := l.Pause(ctx, a, 5*time.Second); got != 5*time.Second {
		t.Fatalf("pause %v", got)
	}
	if w := l.Take(ctx, a, Urgent).For; w != 5*time.Second {
		t.Fatalf("paused chat: wait %v", w)
	}
	if w := l.Take(ctx, b, Urgent).For; w != 0 {
		t.Fatalf("other chat waits %v: a chat's 429 must not pause it", w)
	}
	if until := l.PausedUntil(ctx, a); !until.Equal(limStart.Add(5 * time.Second)) {
		t.Fatalf("PausedUntil %v", until)
	}
	clock.Advance(5 * time.Second)
	if w := l.Take(ctx, a, Urgent).For; w != 0 {
		t.Fatalf("after the pause: %v", w)
	}

	// An absurd retry_after is capped and logged.
	if got := l.Pause(ctx, a, time.Hour); got != 30*time.Second {
		t.Fatalf("capped pause %v", got)
	}
	if !strings.Contains(logs.String(), "retry_after capped") {
		t.Fatalf("no warning: %s", logs.String())
	}

	// Three chats refused within a second with one pause: a global flood
	// pauses everyone.
	l.Pause(ctx, a, 3*time.Second)
	l.Pause(ctx, b, 3*time.Second)
	l.Pause(ctx, c, 3*time.Second)
	fresh := otpbot.Target{ChatID: 4}
	if w := l.Take(ctx, fresh, Urgent).For; w == 0 {
		t.Fatal("global flood did not pause other chats")
	}
	clock.Advance(3 * time.Second)
	if w := l.Take(ctx, fresh, Urgent).For; w != 0 {
		t.Fatalf("after the global pause: %v", w)
	}
}

// limStep is one Take of a limiter test: after advancing the clock, take
// for target at prio, which must succeed or not.
type limStep struct {
	advance time.Duration
	target  otpbot.Target
	prio    Share
	wantOK  bool
}

// burst is n codes to n different chats, the first after advance, each of
// which must be let through.
func burst(n int, advance time.Duration) []limStep {
	steps := make([]limStep, n)
	for i := range steps {
		steps[i] = limStep{target: otpbot.Target{ChatID: int64(100 + i)}, prio: Urgent, wantOK: true}
	}
	steps[0].advance = advance
	return steps
}

// A 429 pauses the whole bot only when Telegram says the flood is global:
// a call tied to no chat, or one pause shared by several chats. Chats
// refused each for their own limit rest alone.
func TestLimiterGlobalFloodOnlyWhenTelegramSaysSo(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		pauses     []time.Duration // one chat each, all within a second
		chatless   time.Duration   // a 429 on a call tied to no chat
		wantGlobal bool
	}{
		{name: "three chats, each its own second", pauses: []time.Duration{time.Second, time.Second, time.Second, time.Second}},
		{name: "three chats, different pauses", pauses: []time.Duration{2 * time.Second, 5 * time.Second, 9 * time.Second}},
		{name: "three chats, one shared pause", pauses: []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}, wantGlobal: true},
		{name: "two chats share a pause", pauses: []time.Duration{7 * time.Second, 7 * time.Second}},
		{name: "a call tied to no chat", chatless: 4 * time.Second, wantGlobal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := storetest.NewClock(limStart)
			l := NewLimiter(LimiterOptions{GlobalPerSec: 100, GlobalBurst: 100, Now: clock.Now})
			for i, p := range tc.pauses {
				l.Pause(ctx, otpbot.Target{ChatID: int64(i + 1)}, p)
				clock.Advance(100 * time.Millisecond)
			}
			if tc.chatless > 0 {
				l.Pause(ctx, otpbot.Target{}, tc.chatless)
			}
			fresh := otpbot.Target{ChatID: 99}
			paused := l.Take(ctx, fresh, Urgent).For != 0
			if paused != tc.wantGlobal {
				t.Fatalf("an unrefused chat paused=%v, want %v", paused, tc.wantGlobal)
			}
		})
	}
}
