package telegram

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot/store/redis/redistest"

	"github.com/otpbot/otpbot"
)

// twoRedisLimiters are the budgets of two processes on one Redis prefix.
func twoRedisLimiters(t *testing.T, opts LimiterOptions) (*RedisLimiter, *RedisLimiter) {
	t.Helper()
	prefix := redistest.Prefix(t)
	var out [2]*RedisLimiter
	for i := range out {
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { c.Close() })
		out[i] = NewRedisLimiter(c, prefix+"{t}:", opts)
	}
	return out[0], out[1]
}

// Two processes taking as fast as they can keep together to one bot's
// global rate: the budget is the bot's, held in Redis, not one per process.
func TestRedisLimiterIsSharedByProcesses(t *testing.T) {
	a, b := twoRedisLimiters(t, LimiterOptions{GlobalPerSec: 20, GlobalBurst: 2, ChatPerSec: 1000, ChatBurst: 1000})
	ctx := context.Background()
	var granted atomic.Int64
	start := time.Now()
	deadline := start.Add(time.Second)
	var wg sync.WaitGroup
	for i, l := range []*RedisLimiter{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				if l.Take(ctx, otpbot.Target{ChatID: int64(1000*i + n)}, Urgent).For == 0 {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// 20 a second and the burst of 2; one more for a take granted just
	// as the deadline passed.
	most := int64(20*elapsed.Seconds()) + 2 + 1
	if got := granted.Load(); got > most || got < 10 {
		t.Fatalf("two processes took %d slots in %v, want at most %d (one bot's 20/s + burst) and some", got, elapsed, most)
	}
}

// A chat Telegram refused rests in every process, and a refresh leaves
// the chat's last token to a code whichever process sends them.
func TestRedisLimiterSharesPausesAndHeadroom(t *testing.T) {
	a, b := twoRedisLimiters(t, LimiterOptions{GlobalPerSec: 1000, GlobalBurst: 100})
	ctx := context.Background()
	chat := otpbot.Target{ChatID: 42}

	for i, l := range []*RedisLimiter{a, b} {
		if w := l.Take(ctx, chat, Spare).For; w != 0 {
			t.Fatalf("refresh %d waits %v with the chat's bucket at 3", i, w)
		}
	}
	if w := a.Take(ctx, chat, Spare).For; w == 0 {
		t.Fatal("a third refresh took the chat's last token")
	}
	if w := b.Take(ctx, chat, Urgent).For; w != 0 {
		t.Fatalf("the code waits %v behind refreshes in its own chat", w)
	}
	if w := a.Take(ctx, chat, Urgent).For; w == 0 {
		t.Fatal("a fourth call within the chat's burst of 3")
	}

	other := otpbot.Target{ChatID: 43}
	a.Pause(ctx, other, 5*time.Second)
	if w := b.Take(ctx, other, Urgent); w.For < 4*time.Second || w.For > 5*time.Second || !w.Paused || w.Bot {
		t.Fatalf("the other process waits %+v for a chat paused 5s, want the chat's pause", w)
	}
	if w := b.Take(ctx, otpbot.Target{ChatID: 44}, Urgent).For; w != 0 {
		t.Fatalf("a chat's 429 paused another chat: %v", w)
	}

	// A 429 on a call tied to no chat is global: every process rests.
	a.Pause(ctx, otpbot.Target{}, 3*time.Second)
	if w := b.Take(ctx, otpbot.Target{ChatID: 45}, Urgent).For; w == 0 {
		t.Fatal("a global flood did not pause the other process")
	}
}
