package bot

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/hyperpay/hptest"
	redisstore "github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/templates"
)

// Two otpbot processes on one Redis, each with its own store connection,
// Telegram client, HyperCard client and command handler, receive taps on
// the same approval request at once (as two webhook instances would): one
// call reaches HyperCard, and both chats show its decision.
func TestApprovalTwoProcessesOnRedisMakeOneCall(t *testing.T) {
	tg := bottest.New(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	prefix := redistest.Prefix(t)
	storeA, _ := newRedisDeliverer(t, tg, prefix, tmpl)
	storeB, _ := newRedisDeliverer(t, tg, prefix, tmpl)
	key := merchantKey()
	hc := hptest.New(t, &key.PublicKey)
	process := func(store *redisstore.Store) *Commands {
		client, err := hyperpay.NewClient(hyperpay.ClientConfig{BaseURL: hc.URL(), APIKey: "ak", PrivateKey: key, HTTPClient: hc.Client()})
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewApprovals(ApprovalOptions{Approver: client, Store: store, ApproveResult: 2, DeclineResult: 3,
			Retryable: hyperpay.Retryable, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCommands(CommandsOptions{Store: store, Client: newClient(t, tg), Templates: tmpl,
			Registerer: prometheus.NewRegistry(), Approvals: a})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	procA, procB := process(storeA), process(storeB)

	ctx := context.Background()
	for _, c := range []int64{chatA, chatB} {
		if err := storeA.Link(ctx, otpbot.Link{Key: cardKey(authCard), Target: chat(c), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	ev := otpbot.Event{ID: "redis-auth-1", Group: "hypercard:AUTH_3DS:777", Provider: otpbot.ProviderHyperCard,
		Name: "AUTH_3DS", Kind: otpbot.KindApproval, CardID: authCard, CardLast4: "3333", Merchant: "Shop 777",
		Amount: "5.00", Currency: "EUR", AuthID: "777", AuthResult: 1, ReceivedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if _, err := storeB.Ingest(ctx, ev); err != nil {
		t.Fatal(err)
	}
	ids := map[int64]int{}
	for _, c := range []int64{chatA, chatB} {
		tg.WaitFor(t, func() bool {
			m, ok, err := storeA.Message(ctx, otpbot.MessageKey(ev.Group, chat(c)))
			ids[c] = m.TelegramID
			return err == nil && ok && m.TelegramID != 0
		})
	}

	// Each user's first tap, in its chat, through its own process: the
	// confirmation lives in Redis, where the other process finds it too.
	confirmation := func(c *Commands, cbID string, chatID, user int64, button string) string {
		if err := c.HandleUpdate(ctx, callbackUpdate(cbID, chatID, user, ids[chatID], button)); err != nil {
			t.Fatal(err)
		}
		callbackAnswer(t, tg, cbID)
		m, _ := tg.Message(chatID, ids[chatID])
		data := buttonData(m, button+":confirm:")
		if data == "" {
			t.Fatalf("no confirmation step in chat %d: %+v", chatID, m.Buttons)
		}
		return data
	}
	confirmA := confirmation(procB, "a0", chatA, member, telegram.CallbackApprove)
	confirmB := confirmation(procA, "b0", chatB, stranger, telegram.CallbackDecline)

	release := hc.Hold()
	first := make(chan error, 1)
	go func() {
		first <- procA.HandleUpdate(ctx, callbackUpdate("a1", chatA, member, ids[chatA], confirmA))
	}()
	tg.WaitFor(t, func() bool { return hc.Waiting() == 1 })
	if err := procB.HandleUpdate(ctx, callbackUpdate("b1", chatB, stranger, ids[chatB], confirmB)); err != nil {
		t.Fatal(err)
	}
	if got := callbackAnswer(t, tg, "b1"); got != en(answerBusy) {
		t.Errorf("the other process answered %q", got)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := callbackAnswer(t, tg, "a1"); got != en(answerApproved) {
		t.Errorf("the first tap answered %q", got)
	}
	calls := hc.Decisions()
	if len(calls) != 1 || calls[0].AuthResult != 2 || calls[0].HTTPStatus != http.StatusOK || !calls[0].Verified {
		t.Fatalf("decision calls: %+v", calls)
	}
	for _, c := range []int64{chatA, chatB} {
		tg.WaitFor(t, func() bool {
			m, _ := tg.Message(c, ids[c])
			return strings.Contains(m.Text, "Approved by @user9003") && len(m.Buttons) == 0
		})
	}
}

// newRedisDeliverer opens a store on prefix of the shared Redis and runs a
// Deliverer on it, as one otpbot process would, until the test ends.
func newRedisDeliverer(t *testing.T, tg *bottest.Server, prefix string, tmpl *templates.Set) (*redisstore.Store, func()) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	t.Cleanup(func() { rc.Close() })
	store, err := redisstore.New(context.Background(), rc, prefix, otpbot.StoreOptions{DedupeWindow: time.Hour,
		HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	d, err := deliver.NewDeliverer(deliver.DelivererOptions{Store: store, Client: newClient(t, tg), Renderer: tmpl,
		Registerer: prometheus.NewRegistry(), Lease: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	halt := func() { stop(); <-done }
	t.Cleanup(halt)
	return store, halt
}
