package deliver

import (
	"context"
	"fmt"
	"testing"
	"time"

	redisstore "github.com/otpbot/otpbot/store/redis"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
	goredis "github.com/redis/go-redis/v9"
)

// Two deliverers on one Redis send for one bot: together they keep to its
// limit (here 20 a second, under a fake Telegram that refuses more than 30
// in any second), where each keeping its own budget would send up to 40.
func TestTwoProcessesOnOneRedisStayWithinTheBotsLimit(t *testing.T) {
	tg := bottest.New(t, bottest.WithLimits(30, 1000))
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	prefix := redistest.Prefix(t)
	shared := func(o *DelivererOptions) {
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { c.Close() })
		o.Limiter = telegram.NewRedisLimiter(c, redisstore.Base(prefix), telegram.LimiterOptions{GlobalPerSec: 20, GlobalBurst: 2, ChatPerSec: 10, ChatBurst: 3})
		o.CountdownInterval = time.Minute
	}
	stores := make([]*redisstore.Store, 2)
	for i := range stores {
		stores[i], _ = newRedisDeliverer(t, tg, prefix, tmpl, shared)
	}
	ctx := context.Background()
	const n = 80
	chat := func(i int) int64 { return int64(5_000_000 + i) }
	for i := range n {
		key := otpbot.Key{Type: otpbot.KeyCard, ID: fmt.Sprintf("K%d", i)}
		if err := stores[0].Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: chat(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		now := time.Now()
		if _, err := stores[i%2].Ingest(ctx, otpbot.Event{ID: fmt.Sprintf("lim%d", i), Group: fmt.Sprintf("lim%d", i),
			Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: fmt.Sprintf("K%d", i),
			CardLast4: "1234", Code: dlCode, ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		tg.WaitFor(t, func() bool { return len(tg.Messages(chat(i))) == 1 })
	}
	if got := tg.Count429(); got != 0 {
		t.Fatalf("Telegram answered 429 %d times: the two processes together went over the bot's limit", got)
	}
}
