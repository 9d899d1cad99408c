package deliver

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/bolt"
	redisstore "github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
)

// countingStore counts the outbox reads the Run loop makes. On Redis each
// Claim and NextDue is a Lua script: their number per delivered code is
// what the loop costs the server, on top of the code's own writes.
type countingStore struct {
	DeliveryStore
	claims, nextDue, pending atomic.Int64
}

func (c *countingStore) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	c.claims.Add(1)
	return c.DeliveryStore.Claim(ctx, now, lease, max)
}

func (c *countingStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	c.nextDue.Add(1)
	return c.DeliveryStore.NextDue(ctx)
}

func (c *countingStore) Pending(ctx context.Context) (map[otpbot.Priority]otpbot.QueueStat, error) {
	c.pending.Add(1)
	return c.DeliveryStore.Pending(ctx)
}

// callCounts is a snapshot of a countingStore's counters.
type callCounts struct{ claims, nextDue, pending int64 }

func (c *countingStore) counts() callCounts {
	return callCounts{c.claims.Load(), c.nextDue.Load(), c.pending.Load()}
}

func (a callCounts) minus(b callCounts) callCounts {
	return callCounts{a.claims - b.claims, a.nextDue - b.nextDue, a.pending - b.pending}
}

// A code arriving at an idle Deliverer costs one claim and one NextDue
// for its own wake-up, and one NextDue for the wake-up of the countdown
// tick its send enqueues (a claim would find nothing due: NextDue alone
// says so); the worker it freed claims nothing more, since the claim that
// found the code came back short. On Redis every one of these is a script
// run per code on the shared server.
func TestDeliverStoreCallsPerCode(t *testing.T) {
	e := newDlEnv(t)
	const codes = 20
	for i := range codes {
		e.link(fmt.Sprintf("K%d", i), otpbot.Target{ChatID: dlChat - int64(i)})
	}
	var cs *countingStore
	e.start(func(o *DelivererOptions) {
		cs = &countingStore{DeliveryStore: o.Store}
		o.Store = cs
	})
	// The loop's first look at the outbox is not a code's.
	e.tg.WaitFor(t, func() bool { return cs.nextDue.Load() >= 1 })
	e.settle()
	base := cs.counts()
	for i := range codes {
		e.push(e.codeEvent(fmt.Sprintf("k%d", i), fmt.Sprintf("K%d", i), 5*time.Minute))
		e.waitMessages(dlChat-int64(i), 1)
		e.settle()
	}
	got := cs.counts().minus(base)
	t.Logf("%d codes: %d claims, %d NextDue", codes, got.claims, got.nextDue)
	if got.claims > codes || got.nextDue > 2*codes {
		t.Errorf("%d codes took %d claims and %d NextDue calls; want at most %d claims and %d NextDue",
			codes, got.claims, got.nextDue, codes, 2*codes)
	}
}

// BenchmarkDeliverStoreCalls reports the outbox reads (Claim, NextDue,
// Pending) per delivered code, with codes pushed at 200/s to 500 chats as
// the bench tool's e2e scenario does, on both stores:
//
//	go test ./bot -run '^$' -bench DeliverStoreCalls -benchtime 2000x
func BenchmarkDeliverStoreCalls(b *testing.B) {
	for _, driver := range []string{"embedded", "redis"} {
		b.Run(driver, func(b *testing.B) { benchStoreCalls(b, driver) })
	}
}

func benchStoreCalls(b *testing.B, driver string) {
	ctx := context.Background()
	opts := otpbot.StoreOptions{DedupeWindow: time.Hour, HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour}
	var store otpbot.Store
	switch driver {
	case "embedded":
		s, err := bolt.Open(filepath.Join(b.TempDir(), "otpbot.db"), opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		store = s
	case "redis":
		rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		b.Cleanup(func() { rc.Close() })
		s, err := redisstore.New(ctx, rc, redistest.Prefix(b), opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		store = s
	}
	defer store.Close()
	tg := bottest.New(b, bottest.WithWaitTimeout(time.Minute))
	client, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: "1:CALLS", Endpoint: tg.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	const chats = 500
	for c := range chats {
		err := store.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: fmt.Sprintf("S%d", c)}, Target: otpbot.Target{ChatID: int64(-4_000_000 - c)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	cs := &countingStore{DeliveryStore: store}
	d, err := NewDeliverer(DelivererOptions{Store: cs, Client: client, Renderer: tmpl, Registerer: prometheus.NewRegistry(),
		Workers: 4, Limiter: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1e6, ChatBurst: 1e6,
			GroupPerMin: 1e8, GroupBurst: 1e6})})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	base := cs.counts()
	b.ResetTimer()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range b.N {
		now := time.Now()
		_, err := store.Ingest(ctx, otpbot.Event{ID: fmt.Sprintf("s%d", i), Group: fmt.Sprintf("s%d", i), Provider: otpbot.ProviderUPay,
			Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: fmt.Sprintf("S%d", i%chats), CardLast4: "1234", Code: "123456",
			ReceivedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if i < b.N-1 {
			<-tick.C
		}
	}
	tg.WaitFor(b, func() bool { return len(tg.Calls("sendMessage")) >= b.N && d.busy.Load() == 0 })
	b.StopTimer()
	got := cs.counts().minus(base)
	b.ReportMetric(float64(got.claims)/float64(b.N), "claims/code")
	b.ReportMetric(float64(got.nextDue)/float64(b.N), "nextdue/code")
	b.ReportMetric(float64(got.pending)/float64(b.N), "pending/code")
	b.ReportMetric(0, "ns/op") // wall time per op is the 5ms pacing, not a cost
}
