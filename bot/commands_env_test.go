package bot

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/store/storetest"
	"github.com/otpbot/otpbot/templates"
)

// The command tests run the real chain: the fake Bot API (bottest), the real
// Client (telegram-bot-api underneath), a Poller holding the lease on a
// store, Commands, and the store.

const (
	admin    int64 = 9001
	stranger int64 = 9002
	member   int64 = 9003 // a user in a linked chat
	chatA    int64 = -1001000000001
	chatB    int64 = -1001000000002
	private  int64 = 9003 // member's private chat
)

type env struct {
	t      *testing.T
	ctx    context.Context
	tg     *bottest.Server
	client *telegram.Client
	store  *bolt.Store
	clock  *storetest.Clock
	tmpl   *templates.Set
	cmds   *Commands
	// d is the running Deliverer; a test that moves the clock past a due
	// time pokes it (its timers run on real time).
	d *deliver.Deliverer
}

// openStore opens the store a test runs against. Leases and Once use real
// time in every store (the coordinator has no clock argument), the rest
// the test clock.
func openStore(t *testing.T, now func() time.Time) *bolt.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "otpbot.db"), now)
}

// openStoreAt opens the embedded store on path (two pollers in one test
// share a store through one *bolt.Store: bbolt locks its file per process).
func openStoreAt(t *testing.T, path string, now func() time.Time) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, otpbot.StoreOptions{
		DedupeWindow: time.Hour, HistoryPerKey: 1000, HistoryRetention: 720 * time.Hour,
		InviteTTL: DefaultInviteTTL, Now: now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newClient(t *testing.T, tg *bottest.Server) *telegram.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: "123456:TEST", Endpoint: tg.Endpoint(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newEnv starts the bot: commands behind a running poller.
func newEnv(t *testing.T) *env {
	t.Helper()
	// The rate limiter runs on real time (a frozen test clock would hold
	// every chat's second message forever), with room for a test's bursts.
	return newEnvLimited(t, func(func() time.Time) *telegram.Limiter {
		return telegram.NewLimiter(telegram.LimiterOptions{ChatPerSec: 100, ChatBurst: 100, GroupPerMin: 6000, GroupBurst: 100})
	})
}

// newEnvLimited is newEnv with the Deliverer's limiter built by limiter,
// which is given the test clock.
func newEnvLimited(t *testing.T, limiter func(now func() time.Time) *telegram.Limiter) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	clock := storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	e := &env{t: t, ctx: ctx, tg: bottest.New(t), clock: clock}
	e.store = openStore(t, clock.Now)
	e.client = newClient(t, e.tg)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	e.tmpl = tmpl
	// The deliverer and the commands share the chats' settings, as serve
	// wires them: a /language shows in the next code at once.
	chats := templates.NewChats(templates.ChatsOptions{Set: tmpl, Store: e.store, Now: clock.Now})
	e.cmds, err = NewCommands(CommandsOptions{
		Store: e.store, Client: e.client, Templates: tmpl, Chats: chats, Admins: []int64{admin},
		Now: clock.Now, Username: e.client.Username, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cmds.Close(context.Background()) })
	p, err := telegram.NewPoller(telegram.PollerOptions{Client: e.client, Handler: e.cmds, Coord: e.store, Owner: "test",
		LeaseTTL: time.Second, PollTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The real deliverer sends the code messages and applies a hide; its
	// countdown ticks are due on the test clock, so they wait until a test
	// moves it.
	d, err := deliver.NewDeliverer(deliver.DelivererOptions{Store: e.store, Client: e.client, Renderer: chats, Now: clock.Now,
		Limiter: limiter(clock.Now), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	go func() { defer wg.Done(); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// command sends text from user in chat and waits for the bot's replies to
// it (want of them), returning their texts.
func (e *env) command(chat, user int64, text string, want int, opts ...bottest.UpdateOption) []string {
	e.t.Helper()
	id := e.tg.SendCommand(chat, user, text, opts...)
	var got []string
	e.tg.WaitFor(e.t, func() bool {
		got = got[:0]
		for _, m := range e.tg.Messages(chat) {
			if m.ReplyTo == id {
				got = append(got, m.Text)
			}
		}
		return len(got) >= want
	})
	return got
}

// reply sends a command and returns the bot's single reply.
func (e *env) reply(chat, user int64, text string, opts ...bottest.UpdateOption) string {
	e.t.Helper()
	return e.command(chat, user, text, 1, opts...)[0]
}

// link links key to a chat directly in the store.
func (e *env) link(key otpbot.Key, target otpbot.Target) {
	e.t.Helper()
	if err := e.store.Link(e.ctx, otpbot.Link{Key: key, Target: target, CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

// push ingests a code event for card, as the webhooks would.
func (e *env) push(id, card, code string, ttl time.Duration) otpbot.Event {
	e.t.Helper()
	now := e.clock.Now()
	ev := otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
		CardID: card, CustomerNo: "CUST-" + card, CardLast4: card[len(card)-4:], Merchant: "Shop " + id, Amount: "9.99", Currency: "EUR",
		Code: code, ReceivedAt: now, ExpiresAt: now.Add(ttl)}
	if _, err := e.store.Ingest(e.ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// codeMessage waits for the bot's message in chat that shows (or showed)
// the merchant of ev and returns it.
func (e *env) codeMessage(chat int64, ev otpbot.Event) bottest.Message {
	e.t.Helper()
	var found bottest.Message
	e.tg.WaitFor(e.t, func() bool {
		for _, m := range e.tg.Messages(chat) {
			if strings.Contains(m.Text, ev.Merchant) && m.ReplyTo == 0 {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%q not in:\n%s", w, got)
		}
	}
}

func mustNotContain(t *testing.T, got string, avoid ...string) {
	t.Helper()
	for _, a := range avoid {
		if strings.Contains(got, a) {
			t.Errorf("%q must not be in:\n%s", a, got)
		}
	}
}

func cardKey(id string) otpbot.Key { return otpbot.Key{Type: otpbot.KeyCard, ID: id} }

func chat(id int64) otpbot.Target { return otpbot.Target{ChatID: id} }

// tmplSet loads the built-in templates.
func tmplSet(t *testing.T) *templates.Set {
	t.Helper()
	s, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// en is the English text of an answer piece (answers.tmpl), as a button
// press shows it.
func en(name string) string {
	s, err := templates.New("")
	if err != nil {
		panic(err)
	}
	return s.Default().Label(name, nil)
}
