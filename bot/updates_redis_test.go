package bot

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	redisstore "github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
)

// Several otpbot processes on one Redis: each "process" below has its own
// Redis connection, store, Telegram client and commands, and they share
// nothing but the Redis key prefix and the (fake) Telegram.

type process struct {
	store *redisstore.Store
	cmds  *Commands
}

func newProcess(t *testing.T, tg *bottest.Server, prefix string) *process {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	t.Cleanup(func() { rc.Close() })
	store, err := redisstore.New(context.Background(), rc, prefix, otpbot.StoreOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Ping(context.Background()); err != nil {
		t.Fatalf("redis at 127.0.0.1:6379: %v", err)
	}
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(t, tg)
	cmds, err := NewCommands(CommandsOptions{Store: store, Client: client, Templates: tmpl, Admins: []int64{admin}, Username: client.Username})
	if err != nil {
		t.Fatal(err)
	}
	return &process{store: store, cmds: cmds}
}

func TestProcessesOnRedisShareOnePoller(t *testing.T) {
	tg := bottest.New(t)
	prefix := redistest.Prefix(t)
	a, b := newProcess(t, tg, prefix), newProcess(t, tg, prefix)
	e := &pollerEnv{env: &env{t: t, ctx: context.Background(), tg: tg}}

	// Process a polls; b stands by. a dies inside its first update, before
	// confirming it to Telegram and without releasing its lease.
	var ra *runner
	crash := make(chan struct{})
	ra = e.start("a", &afterHandler{h: a.cmds, after: func() { ra.cancel(); close(crash) }}, crashCoord{a.store})
	e.tg.WaitFor(t, func() bool { return ra.src.calls.Load() > 0 })
	rb := e.start("b", b.cmds, b.store)

	first := tg.SendCommand(chatA, admin, "/link card 4000111122223333")
	<-crash
	ra.stop()
	if rb.src.calls.Load() != 0 {
		t.Fatal("the standby polled while the lease was held")
	}

	// b takes over within seconds, skips the update a already handled and
	// answers the next ones; both see the link a made.
	second := tg.SendCommand(chatA, member, "/links")
	e.tg.WaitFor(t, func() bool { return e.repliesTo(chatA, second) == 1 })
	if n := e.repliesTo(chatA, first); n != 1 {
		t.Errorf("the /link handled before the crash got %d replies, want 1", n)
	}
	for _, m := range tg.Messages(chatA) {
		if m.ReplyTo == second {
			mustContain(t, m.Text, "card …3333")
		}
	}
	e.tg.WaitFor(t, func() bool { return tg.PendingUpdates() == 0 })
}

func TestWebhookOnTwoProcessesHandlesAnUpdateOnce(t *testing.T) {
	tg := bottest.New(t)
	prefix := redistest.Prefix(t)
	const secret = "shared-secret"
	var urls []string
	procs := []*process{newProcess(t, tg, prefix), newProcess(t, tg, prefix)}
	for _, p := range procs {
		srv := httptest.NewServer(telegram.WebhookHandler(secret, p.cmds, p.store, nil))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	// Telegram (or a load balancer) delivers the same update to both.
	upd := commandUpdate(t, 7001, chatB, stranger, 10, "/start")
	for _, u := range urls {
		req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(upd))
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// The replies go out in the background: wait until both processes
	// sent everything they queued.
	for _, p := range procs {
		p.cmds.Close(context.Background())
	}
	n := 0
	for _, m := range tg.Messages(chatB) {
		if m.ReplyTo == 10 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("update delivered to two processes got %d replies, want 1", n)
	}
}
