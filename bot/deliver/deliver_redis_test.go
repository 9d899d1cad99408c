package deliver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	redisstore "github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
)

// Several otpbot processes sharing one Redis: each "process" has its own
// connection, store and Deliverer; they share the key prefix and Telegram.
// The clock is real here, as it is between real processes.

func newRedisDeliverer(t *testing.T, tg *bottest.Server, prefix string, tmpl *templates.Set, mod ...func(*DelivererOptions)) (*redisstore.Store, func()) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	t.Cleanup(func() { rc.Close() })
	store, err := redisstore.New(context.Background(), rc, prefix, otpbot.StoreOptions{DedupeWindow: time.Hour,
		HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Ping(context.Background()); err != nil {
		t.Fatalf("redis at 127.0.0.1:6379: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: "1:REDIS", Endpoint: tg.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	opts := DelivererOptions{Store: store, Client: client, Renderer: tmpl,
		Registerer: prometheus.NewRegistry(), CountdownInterval: 500 * time.Millisecond, Lease: 2 * time.Second,
		Limiter: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1000, GlobalBurst: 100, ChatPerSec: 100, ChatBurst: 10,
			GroupPerMin: 6000, GroupBurst: 100})}
	for _, m := range mod {
		m(&opts)
	}
	d, err := NewDeliverer(opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			stop()
			<-done
		}
	}
	t.Cleanup(halt)
	return store, halt
}

func TestDeliverSharedRedisOnceAndCountdownsSurviveAProcess(t *testing.T) {
	tg := bottest.New(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	prefix := redistest.Prefix(t)
	storeA, stopA := newRedisDeliverer(t, tg, prefix, tmpl)
	storeB, _ := newRedisDeliverer(t, tg, prefix, tmpl)
	ctx := context.Background()

	const n = 10
	chat := func(i int) int64 { return int64(-1004000000000 - i) }
	for i := range n {
		if err := storeA.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: fmt.Sprintf("K%d", i)},
			Target: otpbot.Target{ChatID: chat(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		s := storeA
		if i%2 == 1 {
			s = storeB
		}
		now := time.Now()
		if _, err := s.Ingest(ctx, otpbot.Event{ID: fmt.Sprintf("r%d", i), Group: fmt.Sprintf("r%d", i),
			Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: fmt.Sprintf("K%d", i),
			CardLast4: "1234", Code: dlCode, ReceivedAt: now, ExpiresAt: now.Add(3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		tg.WaitFor(t, func() bool { return len(tg.Messages(chat(i))) == 1 })
	}
	// Process A goes away; B keeps every countdown running to the end.
	stopA()
	for i := range n {
		tg.WaitFor(t, func() bool {
			ms := tg.Messages(chat(i))
			return len(ms) == 1 && strings.Contains(ms[0].Plain(), "expired")
		})
	}
	for i := range n {
		ms := tg.Messages(chat(i))
		if len(ms) != 1 || strings.Contains(ms[0].Text, dlCode) || ms[0].Buttons != nil {
			t.Fatalf("chat %d: %+v", i, ms)
		}
		sends := 0
		for _, c := range tg.Calls("sendMessage") {
			if c.Params["chat_id"] == fmt.Sprint(chat(i)) {
				sends++
			}
		}
		if sends != 1 {
			t.Fatalf("chat %d: %d sends, want exactly one across both processes", i, sends)
		}
	}
}

// On a shared Redis, a send claimed by a process that died before calling
// Telegram is taken over by another process once the dead one's lease has
// run out, and sent once: not before (the holder might only be slow).
func TestDeliverTakesOverAClaimOfADeadProcessOnRedis(t *testing.T) {
	tg := bottest.New(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	prefix := redistest.Prefix(t)
	ctx := context.Background()
	const chat int64 = -1004100000000
	// The dead process: its own connection and store; it links, takes a
	// push, claims its send and does nothing more.
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer rc.Close()
	dead, err := redisstore.New(ctx, rc, prefix, otpbot.StoreOptions{DedupeWindow: time.Hour,
		HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if err := dead.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "D1"}, Target: otpbot.Target{ChatID: chat}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := dead.Ingest(ctx, otpbot.Event{ID: "d1", Group: "d1", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "D1", CardLast4: "1234", Code: dlCode, ReceivedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	const lease = 1500 * time.Millisecond
	claimed := time.Now()
	jobs, err := dead.Claim(ctx, claimed, lease, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}

	// The live process starts now and sees the task leased.
	newRedisDeliverer(t, tg, prefix, tmpl)
	tg.WaitFor(t, func() bool { return len(tg.Messages(chat)) >= 1 })
	ms := tg.Messages(chat)
	if !ms[0].SentAt.After(claimed.Add(lease)) {
		t.Fatalf("sent %v after the dead process's claim, before its %v lease ran out", ms[0].SentAt.Sub(claimed), lease)
	}
	if !strings.Contains(ms[0].Plain(), dlCode) {
		t.Fatalf("message %s", ms[0].Plain())
	}
	// Its countdown ticks are edits of that message, never a second send.
	tg.WaitFor(t, func() bool { return len(tg.Calls("editMessageText")) >= 1 })
	if n := len(tg.Calls("sendMessage")); n != 1 {
		t.Fatalf("%d sends", n)
	}
}

// A TaskDelete keeps its Telegram message id through the Redis outbox (the
// store keeps a task as JSON, so fields added to otpbot.Task survive it).
func TestDeliverDeleteTaskOnRedis(t *testing.T) {
	tg := bottest.New(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	store, _ := newRedisDeliverer(t, tg, redistest.Prefix(t), tmpl)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := telegram.NewClient(cctx, telegram.ClientOptions{Token: "1:REDIS", Endpoint: tg.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	target := otpbot.Target{ChatID: 4242}
	id, err := c.Send(context.Background(), telegram.OutMessage{Target: target, Text: "codes"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := store.Enqueue(context.Background(), otpbot.Task{ID: "delete:" + target.String() + ":" + fmt.Sprint(id),
		Kind: otpbot.TaskDelete, Priority: otpbot.PriorityUpdate, Target: target, TelegramID: id, Due: now, Created: now}); err != nil {
		t.Fatal(err)
	}
	tg.WaitFor(t, func() bool { return len(tg.Messages(4242)) == 0 })
}
