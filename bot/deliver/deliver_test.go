package deliver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/templates"
)

// The delivery tests run the real chain: the embedded bolt store on a temp
// file, the Deliverer, the real Client (telegram-bot-api underneath) and
// the fake Bot API, with the built-in templates. Time is a hand-moved clock;
// after moving it a test pokes the Deliverer, whose timers run on real time.

const (
	dlChat   int64 = -1002000000001
	dlChat2  int64 = -1002000000002
	dlOps    int64 = -1002000000099
	dlCode         = "482913"
	dlTicker       = 30 * time.Second
)

var dlStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// dlClock is a clock the test moves by hand.
type dlClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *dlClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *dlClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type dlEnv struct {
	t      *testing.T
	tg     *bottest.Server
	client *telegram.Client
	// clientReg holds the client's metrics.
	clientReg *prometheus.Registry
	path      string
	store     *bolt.Store
	clock     *dlClock
	tmpl      *templates.Set
	logs      *syncBuffer
	log       *slog.Logger
	reg       *prometheus.Registry
	ops       *Ops
	d         *Deliverer
	opts      DelivererOptions
	cancel    context.CancelFunc
	done      chan error
}

func newDlEnv(t *testing.T, tgOpts ...bottest.Option) *dlEnv {
	t.Helper()
	e := &dlEnv{
		t:     t,
		tg:    bottest.New(t, tgOpts...),
		path:  filepath.Join(t.TempDir(), "otpbot.db"),
		clock: &dlClock{now: dlStart},
		logs:  &syncBuffer{},
	}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.openStore()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.clientReg = prometheus.NewRegistry()
	c, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: "123456:DELIVER", Endpoint: e.tg.Endpoint(), Registerer: e.clientReg})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	if e.tmpl, err = templates.New(""); err != nil {
		t.Fatal(err)
	}
	e.opts = DelivererOptions{
		Client:            e.client,
		Renderer:          e.tmpl,
		Logger:            e.log,
		Now:               e.clock.Now,
		CountdownInterval: dlTicker,
		Workers:           4,
		Lease:             20 * time.Second,
		// Limits far above what a test sends: the clock stands still,
		// so a real limit would only stall. The limiter has its own tests.
		Limiter: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1e6, ChatBurst: 1e6,
			GroupPerMin: 1e8, GroupBurst: 1e6, Now: e.clock.Now}),
	}
	t.Cleanup(e.stop)
	return e
}

func (e *dlEnv) openStore() {
	e.t.Helper()
	s, err := bolt.Open(e.path, otpbot.StoreOptions{DedupeWindow: time.Hour, HistoryPerKey: 100,
		HistoryRetention: 24 * time.Hour, InviteTTL: time.Hour, Now: e.clock.Now}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
}

// start runs a Deliverer (a new one each time, as after a restart).
func (e *dlEnv) start(mod ...func(*DelivererOptions)) {
	e.t.Helper()
	opts := e.opts
	opts.Store = e.store
	e.reg = prometheus.NewRegistry()
	opts.Registerer = e.reg
	if opts.Ops == nil {
		e.ops = NewOps(OpsOptions{Queue: e.store, Chat: otpbot.Target{ChatID: dlOps}, Renderer: e.tmpl, Logger: e.log, Now: e.clock.Now})
		opts.Ops = e.ops
	}
	for _, m := range mod {
		m(&opts)
	}
	d, err := NewDeliverer(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.d = d
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- d.Run(ctx) }()
}

// stop ends the Deliverer and waits for it.
func (e *dlEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Error("Run did not return after cancel")
	}
	e.cancel = nil
}

// restart stops the Deliverer, reopens the store file and starts again.
func (e *dlEnv) restart() {
	e.t.Helper()
	e.stop()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.openStore()
	e.start()
}

// advance moves the clock and wakes the Deliverer.
func (e *dlEnv) advance(d time.Duration) {
	e.clock.Advance(d)
	if e.d != nil {
		e.d.Poke()
	}
}

func (e *dlEnv) link(card string, target otpbot.Target) {
	e.t.Helper()
	err := e.store.Link(context.Background(), otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: card}, Target: target, CreatedAt: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
}

// codeEvent is a UPay 3DS_OTP for card, expiring ttl after now.
func (e *dlEnv) codeEvent(id, card string, ttl time.Duration) otpbot.Event {
	now := e.clock.Now()
	return otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
		CardID: card, CardLast4: "1234", Amount: "12.50", Currency: "EUR", Merchant: "Amazon",
		Code: dlCode, ReceivedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func (e *dlEnv) push(ev otpbot.Event) otpbot.IngestResult {
	e.t.Helper()
	res, err := e.store.Ingest(context.Background(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *dlEnv) message(id string) otpbot.Message {
	e.t.Helper()
	m, ok, err := e.store.Message(context.Background(), id)
	if err != nil || !ok {
		e.t.Fatalf("message %s: ok=%v err=%v", id, ok, err)
	}
	return m
}

// waitMessages waits until chat shows n messages and returns them.
func (e *dlEnv) waitMessages(chat int64, n int) []bottest.Message {
	e.t.Helper()
	e.tg.WaitFor(e.t, func() bool { return len(e.tg.Messages(chat)) >= n })
	return e.tg.Messages(chat)
}

// waitText waits until the chat's message id shows text containing want.
func (e *dlEnv) waitText(chat int64, id int, want string) bottest.Message {
	e.t.Helper()
	var m bottest.Message
	e.tg.WaitFor(e.t, func() bool {
		m, _ = e.tg.Message(chat, id)
		return strings.Contains(m.Plain(), want)
	})
	return m
}

// settle waits until the Deliverer is idle: no claim or job under way and
// nothing due at the current time.
func (e *dlEnv) settle() {
	e.t.Helper()
	e.tg.WaitFor(e.t, func() bool {
		if e.d != nil && e.d.busy.Load() != 0 {
			return false
		}
		at, ok, err := e.store.NextDue(context.Background())
		return err == nil && (!ok || at.After(e.clock.Now()))
	})
}

func (e *dlEnv) calls(method string, chat int64) int {
	n := 0
	for _, c := range e.tg.Calls(method) {
		if c.Params["chat_id"] == fmt.Sprint(chat) {
			n++
		}
	}
	return n
}

func TestDeliverSendsTheCodeWithButtons(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat, ThreadID: 7})
	e.start()
	ev := e.codeEvent("ev1", "C1", 5*time.Minute)
	e.push(ev)

	m := e.waitMessages(dlChat, 1)[0]
	for _, want := range []string{dlCode, "•••• 1234", "Amazon", "12.50 EUR", "expires in 5:00"} {
		if !strings.Contains(m.Plain(), want) {
			t.Errorf("message lacks %q:\n%s", want, m.Plain())
		}
	}
	if !strings.Contains(m.Text, "<code>"+dlCode+"</code>") {
		t.Errorf("code not in <code>: %s", m.Text)
	}
	if m.ThreadID != 7 || !m.Protect || m.ParseMode != "HTML" {
		t.Errorf("thread %d protect %v mode %q", m.ThreadID, m.Protect, m.ParseMode)
	}
	want := [][]bottest.Button{{{Text: "📋 Copy code", CopyText: dlCode}}, {{Text: "✅ Used it — hide", Data: telegram.CallbackHide}}}
	if fmt.Sprint(m.Buttons) != fmt.Sprint(want) {
		t.Errorf("buttons %v, want %v", m.Buttons, want)
	}

	e.settle()
	stored := e.message(otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat, ThreadID: 7}))
	if stored.TelegramID != m.ID || stored.SentAt.IsZero() || stored.Rendered == "" || stored.State != otpbot.StateLive {
		t.Fatalf("stored %+v", stored)
	}
	// The first countdown step is due one interval later, in memory; the
	// outbox holds only the edit at expiry.
	if at := e.nextStep(stored.ID); !at.Equal(dlStart.Add(dlTicker)) {
		t.Fatalf("next step %v, want %v", at, dlStart.Add(dlTicker))
	}
	at, ok, _ := e.store.NextDue(context.Background())
	if !ok || !at.Equal(dlStart.Add(5*time.Minute)) {
		t.Fatalf("next due in the outbox %v %v, want the expiry %v", at, ok, dlStart.Add(5*time.Minute))
	}
	if n := e.calls("sendMessage", dlChat); n != 1 {
		t.Fatalf("%d sends", n)
	}
}

// Message.Rendered stays with the message, also once its code has left
// the store, and hashes a text that shows the code: it must not be a hash
// anyone can recompute for each of the million codes to find the one.
func TestDeliverRenderedHashIsKeyed(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	stored := e.message(otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat}))

	// What was sent, built again as the Deliverer built it (the clock
	// stood still): the Deliverer's own hash of it is what was stored.
	text, err := e.tmpl.RenderMessage(stored, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := telegram.OutMessage{Target: stored.Target, Text: text, Buttons: DefaultButtons(e.tmpl.Default(), stored), Protect: true}
	if h := e.d.renderHash(out); stored.Rendered == "" || h != stored.Rendered {
		t.Fatalf("stored Rendered %q, the Deliverer's hash of the sent message %q", stored.Rendered, h)
	}
	if plain := plainRenderHash(out); stored.Rendered == plain {
		t.Fatalf("Rendered %q is the plain SHA-256 of the text with the code", plain)
	}
	// Another process, or this one after a restart, has a key of its own.
	other, err := NewDeliverer(DelivererOptions{Store: e.store, Client: e.client, Renderer: e.tmpl, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if other.renderHash(out) == stored.Rendered {
		t.Fatal("two Deliverers hash the same message alike: the key is not random")
	}
}

// plainRenderHash is renderHash without a key, as it was before it was
// keyed.
func plainRenderHash(m telegram.OutMessage) string {
	h := sha256.New()
	h.Write([]byte(m.Text))
	for _, row := range m.Buttons {
		h.Write([]byte{0})
		for _, b := range row {
			fmt.Fprintf(h, "\x01%s\x02%s\x02%s\x02%s", b.Text, b.Data, b.URL, b.CopyText)
		}
	}
	if m.Protect {
		h.Write([]byte{1})
	}
	if m.Plain {
		h.Write([]byte{2})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func TestDeliverCountdownAndExpiry(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	e.push(e.codeEvent("ev1", "C1", 2*time.Minute))
	id := e.waitMessages(dlChat, 1)[0].ID
	e.settle()

	for _, left := range []string{"1:30", "1:00", "0:30"} {
		e.advance(dlTicker)
		m := e.waitText(dlChat, id, "expires in "+left)
		if !strings.Contains(m.Plain(), dlCode) || m.Buttons == nil {
			t.Fatalf("live step %s lost its code or buttons: %+v", left, m)
		}
		e.settle()
	}
	e.advance(dlTicker)
	m := e.waitText(dlChat, id, "expired")
	if strings.Contains(m.Text, dlCode) || m.Buttons != nil {
		t.Fatalf("expired message still shows the code or buttons: %+v", m)
	}
	if !strings.Contains(m.Plain(), "Amazon") || !strings.Contains(m.Plain(), "•••• 1234") {
		t.Fatalf("expired message lost its details: %s", m.Plain())
	}
	e.settle()
	if m.Edits != 4 {
		t.Fatalf("%d edits, want 3 refreshes and the expiry", m.Edits)
	}
	stored, ok, err := e.store.Message(context.Background(), otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat}))
	if err != nil {
		t.Fatal(err)
	}
	if ok && (stored.State != otpbot.StateExpired || stored.Event.Code != "") {
		t.Fatalf("stored after expiry: %+v", stored)
	}
	if _, pending, _ := e.store.NextDue(context.Background()); pending {
		t.Fatal("work left after expiry")
	}
	if g := testutil.ToFloat64(e.d.liveGauge); g != 0 {
		t.Fatalf("live countdowns %v after expiry", g)
	}
}

func TestDeliverRetriesUntilTelegramRecovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		down int
	}{{"502", 502}, {"connection dropped", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDlEnv(t)
			e.link("C1", otpbot.Target{ChatID: dlChat})
			e.tg.SetDown(tc.down)
			e.start()
			e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
			for attempt := 1; attempt <= 3; attempt++ {
				e.tg.WaitFor(t, func() bool { return e.calls("sendMessage", dlChat) >= attempt })
				e.settle() // handed back to the outbox with a backoff
				e.advance(time.Minute)
			}
			e.tg.SetUp()
			e.advance(time.Minute)
			e.waitMessages(dlChat, 1)
			e.settle()
			if n := len(e.tg.Messages(dlChat)); n != 1 {
				t.Fatalf("%d messages after recovery", n)
			}
		})
	}
}

func TestDeliverObeysRetryAfter(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.link("C2", otpbot.Target{ChatID: dlChat2})
	e.tg.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 7", 7)
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
	e.settle()

	// Another chat is not paused.
	e.push(e.codeEvent("ev2", "C2", 5*time.Minute))
	e.waitMessages(dlChat2, 1)

	e.advance(6 * time.Second)
	e.settle()
	if n := e.calls("sendMessage", dlChat); n != 1 {
		t.Fatalf("sent again %d times before retry_after passed", n-1)
	}
	e.advance(time.Second)
	e.waitMessages(dlChat, 1)
	if got := counterValue(t, e.clientReg, "otpbot_telegram_rate_limited_total"); got != 1 {
		t.Fatalf("rate limited counter %v", got)
	}
}

func TestDeliverBlockedChatBreaksTheLinkAndTellsOps(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	e.tg.Block(dlChat)
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))

	e.tg.WaitFor(t, func() bool {
		links, err := e.store.LinksForKey(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
		return err == nil && len(links) == 1 && links[0].Broken
	})
	e.settle()
	if err := e.ops.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	note := e.waitMessages(dlOps, 1)[0]
	if !strings.Contains(note.Plain(), "Delivery stopped") || !strings.Contains(note.Plain(), fmt.Sprint(dlChat)) ||
		!strings.Contains(note.Plain(), "blocked") || strings.Contains(note.Text, dlCode) {
		t.Fatalf("ops notice: %s", note.Plain())
	}
	e.advance(time.Hour)
	e.settle()
	if n := e.calls("sendMessage", dlChat); n != 1 {
		t.Fatalf("%d sends to a blocked chat, want 1", n)
	}
	if got := testutil.ToFloat64(e.d.broken); got != 1 {
		t.Fatalf("broken links counter %v", got)
	}
	if m, ok, _ := e.store.Message(context.Background(), otpbot.MessageKey("ev1", target)); ok && (m.State != otpbot.StateFailed || m.Event.Code != "") {
		t.Fatalf("message %+v", m)
	}
}

func TestDeliverNotModifiedIsSuccess(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	e.push(e.codeEvent("ev1", "C1", 2*time.Minute))
	id := e.waitMessages(dlChat, 1)[0].ID
	e.settle()

	e.tg.FailNext("editMessageText", 1, 400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same", 0)
	e.advance(dlTicker)
	e.tg.WaitFor(t, func() bool { return len(e.tg.Calls("editMessageText")) == 1 })
	e.settle()
	// Not retried: the next step is the following refresh, not a retry now.
	if at := e.nextStep(otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat})); !at.Equal(dlStart.Add(2 * dlTicker)) {
		t.Fatalf("next step %v, want %v", at, dlStart.Add(2*dlTicker))
	}
	e.advance(dlTicker)
	e.waitText(dlChat, id, "expires in 1:00")
}

func TestDeliverCodeExpiredWhileWaitingIsNotSentLive(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.tg.SetDown(502)
	e.start()
	e.push(e.codeEvent("ev1", "C1", time.Minute))
	e.tg.WaitFor(t, func() bool { return e.calls("sendMessage", dlChat) >= 1 })
	e.settle()
	e.tg.SetUp()
	e.advance(2 * time.Minute)
	m := e.waitMessages(dlChat, 1)[0]
	if strings.Contains(m.Text, dlCode) || m.Buttons != nil || !strings.Contains(m.Plain(), "expired") {
		t.Fatalf("late code sent as: %+v", m)
	}
	e.settle()
	if _, pending, _ := e.store.NextDue(context.Background()); pending {
		t.Fatal("countdown scheduled for an expired code")
	}
}

func TestDeliverRestartResumesCountdownAndCoalesces(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	id := e.waitMessages(dlChat, 1)[0].ID
	e.settle()

	// Down for three countdown steps: one refresh, not three.
	e.stop()
	e.store.Close()
	e.clock.Advance(3*dlTicker + 5*time.Second)
	e.openStore()
	e.start()
	e.waitText(dlChat, id, "expires in 3:25")
	e.settle()
	if m, _ := e.tg.Message(dlChat, id); m.Edits != 1 {
		t.Fatalf("%d edits after the restart, want 1", m.Edits)
	}
	// Steps stay aligned on the expiry.
	if at, want := e.nextStep(otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat})), dlStart.Add(4*dlTicker); !at.Equal(want) {
		t.Fatalf("next step %v, want %v", at, want)
	}

	// Down past the expiry: redacted at once after the restart.
	e.restart()
	e.clock.Advance(5 * time.Minute)
	e.d.Poke()
	m := e.waitText(dlChat, id, "expired")
	if strings.Contains(m.Text, dlCode) {
		t.Fatal("code still shown")
	}
}

func TestDeliverCodesGoBeforeRefreshes(t *testing.T) {
	e := newDlEnv(t)
	chats := []int64{-1003000000001, -1003000000002, -1003000000003, -1003000000004}
	for i, c := range chats {
		e.link(fmt.Sprintf("R%d", i), otpbot.Target{ChatID: c})
	}
	e.link("NEW", otpbot.Target{ChatID: dlChat})
	e.start(func(o *DelivererOptions) { o.Workers = 1 })
	for i := range chats {
		e.push(e.codeEvent(fmt.Sprintf("r%d", i), fmt.Sprintf("R%d", i), 5*time.Minute))
	}
	for _, c := range chats {
		e.waitMessages(c, 1)
	}
	e.settle()
	e.stop()

	// Every countdown is due, then a new code arrives.
	e.clock.Advance(dlTicker)
	e.push(e.codeEvent("new", "NEW", 5*time.Minute))
	before := len(e.tg.Calls(""))
	e.start(func(o *DelivererOptions) { o.Workers = 1 })
	e.waitMessages(dlChat, 1)
	e.tg.WaitFor(t, func() bool { return len(e.tg.Calls("editMessageText")) == len(chats) })
	after := e.tg.Calls("")[before:]
	if after[0].Method != "sendMessage" || after[0].Params["chat_id"] != fmt.Sprint(dlChat) {
		t.Fatalf("first call after the backlog: %s to %s, want the new code", after[0].Method, after[0].Params["chat_id"])
	}
}

func TestDeliverHideWinsOverARefreshInFlight(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	id := e.waitMessages(dlChat, 1)[0].ID
	e.settle()

	// The refresh is in flight (Telegram holds it) when the code is hidden.
	release := e.tg.Hold("editMessageText")
	e.advance(dlTicker)
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("editMessageText") == 1 })
	key := otpbot.MessageKey("ev1", target)
	m := e.message(key)
	prev := m.UpdatedAt
	now := e.clock.Now()
	m.State, m.UpdatedAt, m.Event = otpbot.StateHidden, now.Add(time.Millisecond), m.Event.Redacted()
	if err := e.store.UpdateMessage(context.Background(), prev, m, otpbot.Task{
		ID: otpbot.TaskID(key, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
		MessageID: key, Target: target, Due: now, Created: now,
	}); err != nil {
		t.Fatal(err)
	}
	release()
	e.waitText(dlChat, id, "hidden")
	e.settle()
	got, _ := e.tg.Message(dlChat, id)
	if strings.Contains(got.Text, dlCode) || got.Buttons != nil {
		t.Fatalf("code visible after hide: %+v", got)
	}
	if st := e.message(key); st.State != otpbot.StateHidden || st.Event.Code != "" {
		t.Fatalf("stored %+v", st)
	}
	if e.d.countdown.knows(key) {
		t.Fatal("countdown still scheduled for a hidden code")
	}
}

func TestDeliverLogsNeverHoldTheCode(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.tg.FailNext("sendMessage", 1, 502, "Bad Gateway", 0)
	e.start()
	e.push(e.codeEvent("ev1", "C1", time.Minute))
	e.tg.WaitFor(t, func() bool { return e.calls("sendMessage", dlChat) == 1 })
	e.settle()
	e.advance(time.Minute + time.Second)
	e.waitMessages(dlChat, 1)
	e.settle()
	logs := e.logs.String()
	if strings.Contains(logs, dlCode) || strings.Contains(logs, "DELIVER") {
		t.Fatalf("logs hold a secret:\n%s", logs)
	}
	if !strings.Contains(logs, "msg=delivered") || !strings.Contains(logs, `card="•••• 1234"`) {
		t.Fatalf("no delivery line with the masked card:\n%s", logs)
	}
}

func TestDeliverMetrics(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start(func(o *DelivererOptions) { o.MetricsInterval = 10 * time.Millisecond })
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	// The edit at expiry waits in the outbox (the refreshes in memory).
	e.tg.WaitFor(t, func() bool { return testutil.ToFloat64(e.d.depth.WithLabelValues("update")) == 1 })
	if g := testutil.ToFloat64(e.d.liveGauge); g != 1 {
		t.Fatalf("live countdowns %v", g)
	}
	n, err := testutil.GatherAndCount(e.reg, "otpbot_delivery_seconds", "otpbot_queue_depth",
		"otpbot_queue_oldest_seconds", "otpbot_live_countdowns", "otpbot_broken_links_total")
	if err != nil || n < 5 {
		t.Fatalf("metrics: %d series, %v", n, err)
	}
	if c := testutil.CollectAndCount(e.d.latency); c != 1 {
		t.Fatalf("latency series %d", c)
	}
}

func TestDeliverShutdownFinishesTheCallInFlight(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	release := e.tg.Hold("sendMessage")
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("sendMessage") == 1 })
	e.cancel()
	select {
	case <-e.done:
		t.Fatal("Run returned with a call in flight")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	e.cancel = nil
	if n := len(e.tg.Messages(dlChat)); n != 1 {
		t.Fatalf("%d messages after shutdown", n)
	}
	if m := e.message(otpbot.MessageKey("ev1", otpbot.Target{ChatID: dlChat})); m.TelegramID == 0 {
		t.Fatal("the finished send was not recorded")
	}
}

// The embedded store belongs to one process (its file is locked), so the
// holder of a lease it finds after a restart is gone: a send claimed by a
// process that died before calling Telegram goes out at once, and once.
// (On a shared Redis the lease must run out first: see
// TestDeliverTakesOverAClaimOfADeadProcessOnRedis.)
func TestDeliverRestartAfterACrashSendsTheClaimedCodeAtOnce(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	// A process claimed the send and died (SIGKILL) before calling Telegram.
	jobs, err := e.store.Claim(context.Background(), e.clock.Now(), 20*time.Second, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	e.store.Close()
	e.openStore()
	e.start()
	// The clock stands still: nothing waits for the dead lease.
	m := e.waitMessages(dlChat, 1)[0]
	if !strings.Contains(m.Plain(), dlCode) {
		t.Fatalf("message %s", m.Plain())
	}
	e.settle()
	if n := len(e.tg.Messages(dlChat)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestDeliverFailureClasses(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		desc       string
		wantBroken bool
		wantState  otpbot.MessageState
		// sends is how many calls Telegram refuses: a bad request is
		// tried once more as plain text.
		sends int
	}{
		{"malformed request fails once, and as plain text", 400, "Bad Request: can't parse entities: Unsupported start tag", false, otpbot.StateFailed, 2},
		{"chat not found", 400, "Bad Request: chat not found", true, otpbot.StateFailed, 1},
		{"kicked", 403, "Forbidden: bot was kicked from the supergroup chat", true, otpbot.StateFailed, 1},
		{"topic closed", 400, "Bad Request: TOPIC_CLOSED", true, otpbot.StateFailed, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDlEnv(t)
			target := otpbot.Target{ChatID: dlChat}
			e.link("C1", target)
			e.tg.FailNext("sendMessage", tc.sends, tc.code, tc.desc, 0)
			e.start()
			e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
			e.tg.WaitFor(t, func() bool { return e.calls("sendMessage", dlChat) == tc.sends })
			e.settle()
			e.advance(time.Hour)
			e.settle()
			if n := e.calls("sendMessage", dlChat); n != tc.sends {
				t.Fatalf("%d sends, want %d and no retry", n, tc.sends)
			}
			// Ops hear about it, whatever the class.
			e.ops.mu.Lock()
			reports := len(e.ops.buckets)
			e.ops.mu.Unlock()
			if reports == 0 {
				t.Fatal("ops were not told")
			}
			links, err := e.store.LinksForKey(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
			if err != nil || len(links) != 1 || links[0].Broken != tc.wantBroken {
				t.Fatalf("links %+v %v, want broken=%v", links, err, tc.wantBroken)
			}
			if m, ok, _ := e.store.Message(context.Background(), otpbot.MessageKey("ev1", target)); ok && (m.State != tc.wantState || m.Event.Code != "") {
				t.Fatalf("message %+v", m)
			}
		})
	}
}

// counterValue is the value of the counter name (without labels) in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// nextStep is when the running Deliverer will next refresh message id
// (zero when it will not).
func (e *dlEnv) nextStep(id string) time.Time {
	e.t.Helper()
	e.d.countdown.mu.Lock()
	defer e.d.countdown.mu.Unlock()
	return e.d.countdown.at[id]
}
