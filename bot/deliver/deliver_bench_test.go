package deliver

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/templates"
)

// BenchmarkNewCodeUnderCountdownLoad measures what issue 5 asks of delivery
// under pressure: against a fake Bot API enforcing Telegram's limits (30/s
// overall, 1/s per chat, answering real 429s), a new code is pushed every
// 100ms to a fresh chat while live codes with 2s countdowns want far more
// edits than the limits allow. Each iteration is one new code; the latency
// is from the push's store commit request to Telegram's acceptance.
//
// Sub-benchmarks: "idle" (no live countdowns, the baseline of the same run)
// and "2000-live" (2,000 live codes in 500 chats). Compare their p99-ms.
// Run with a fixed count so the scene is set once per sub-benchmark:
//
//	go test ./bot -run '^$' -bench NewCodeUnderCountdownLoad -benchtime 100x
func BenchmarkNewCodeUnderCountdownLoad(b *testing.B) {
	for _, sc := range []struct {
		name        string
		live, chats int
	}{{"idle", 0, 0}, {"2000-live", 2000, 500}} {
		b.Run(sc.name, func(b *testing.B) { benchNewCodes(b, sc.live, sc.chats) })
	}
}

func benchNewCodes(b *testing.B, live, chats int) {
	ctx := context.Background()
	tg := bottest.New(b, bottest.WithWaitTimeout(2*time.Minute))
	store, err := bolt.Open(filepath.Join(b.TempDir(), "otpbot.db"), otpbot.StoreOptions{DedupeWindow: time.Hour,
		HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	client, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: "1:BENCH", Endpoint: tg.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	link := func(card string, chat int64) {
		if err := store.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: card}, Target: otpbot.Target{ChatID: chat}}); err != nil {
			b.Fatal(err)
		}
	}
	push := func(id, card string, ttl time.Duration) {
		now := time.Now()
		_, err := store.Ingest(ctx, otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
			Kind: otpbot.KindCode, CardID: card, CardLast4: "1234", Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(ttl)})
		if err != nil {
			b.Fatal(err)
		}
	}
	run := func(opts DelivererOptions) (stop func()) {
		opts.Store, opts.Client, opts.Renderer = store, client, tmpl
		opts.CountdownInterval = 2 * time.Second
		opts.Registerer = prometheus.NewRegistry()
		d, err := NewDeliverer(opts)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	// The scene: live codes already on screen, sent without limits.
	b.StopTimer()
	for c := range chats {
		link(fmt.Sprintf("L%d", c), int64(-1_000_000-c))
	}
	if live > 0 {
		stop := run(DelivererOptions{Workers: 16, Limiter: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6,
			ChatPerSec: 1e6, ChatBurst: 1e6, GroupPerMin: 1e8, GroupBurst: 1e6})})
		for i := range live {
			push(fmt.Sprintf("live%d", i), fmt.Sprintf("L%d", i%chats), time.Hour)
		}
		tg.WaitFor(b, func() bool { return tg.MessageCount() >= live })
		stop()
	}
	for i := range b.N {
		link(fmt.Sprintf("N%d", i), int64(-2_000_000-i))
	}

	// The run: Telegram's limits enforced, the default limiter.
	tg.SetLimits(30, 1)
	base429, baseEdits := tg.Count429(), len(tg.Calls("editMessageText"))
	stop := run(DelivererOptions{})
	defer stop()
	pushed := make([]time.Time, b.N)
	start := time.Now()
	b.StartTimer()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := range b.N {
		pushed[i] = time.Now()
		push(fmt.Sprintf("new%d", i), fmt.Sprintf("N%d", i), time.Minute)
		if i < b.N-1 {
			<-tick.C
		}
	}
	tick.Stop()
	var lat []time.Duration
	tg.WaitFor(b, func() bool {
		lat = lat[:0]
		for i := range b.N {
			msgs := tg.Messages(int64(-2_000_000 - i))
			if len(msgs) == 0 {
				return false
			}
			lat = append(lat, msgs[0].SentAt.Sub(pushed[i]))
		}
		return true
	})
	b.StopTimer()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(tg.Count429()-base429), "429s")
	b.ReportMetric(float64(len(tg.Calls("editMessageText"))-baseEdits)/elapsed.Seconds(), "edits/s")
	b.ReportMetric(0, "ns/op") // wall time per op is the 100ms pacing, not a cost
}
