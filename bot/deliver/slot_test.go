package deliver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
)

// countingBudget counts the budget calls of a deliverer.
type countingBudget struct {
	telegram.Budget
	takes atomic.Int64
}

func (b *countingBudget) Take(ctx context.Context, target otpbot.Target, s telegram.Share) telegram.Wait {
	b.takes.Add(1)
	return b.Budget.Take(ctx, target, s)
}

// A backlog of codes, more than the bot's rate allows at once, is sent at
// that rate with about one budget call per code: the workers the bot's
// budget refuses wait in line instead of each asking again whenever a
// token comes back (16 workers asking every 50 ms for the 2 s this takes
// would make some 600 calls; on Redis each is a round trip).
func TestABacklogAsksTheBudgetInTurn(t *testing.T) {
	tg := bottest.New(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	budget := &countingBudget{Budget: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 20, GlobalBurst: 1, ChatPerSec: 10, ChatBurst: 3})}
	store, _ := newRedisDeliverer(t, tg, redistest.Prefix(t), tmpl, func(o *DelivererOptions) {
		o.Limiter = budget
		o.Workers = 16
		o.CountdownInterval = time.Minute
	})
	ctx := context.Background()
	const n = 40
	chat := func(i int) int64 { return int64(6_000_000 + i) }
	for i := range n {
		key := otpbot.Key{Type: otpbot.KeyCard, ID: fmt.Sprintf("T%d", i)}
		if err := store.Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: chat(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		now := time.Now()
		if _, err := store.Ingest(ctx, otpbot.Event{ID: fmt.Sprintf("turn%d", i), Group: fmt.Sprintf("turn%d", i),
			Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: fmt.Sprintf("T%d", i),
			CardLast4: "1234", Code: dlCode, ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		tg.WaitFor(t, func() bool { return len(tg.Messages(chat(i))) == 1 })
	}
	if got := budget.takes.Load(); got > 3*n {
		t.Fatalf("%d codes took %d budget calls, want at most %d: refused workers keep asking", n, got, 3*n)
	}
}
