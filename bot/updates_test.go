package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// countingSource counts one poller's getUpdates calls, so a test can tell
// which of two pollers on the same fake Bot API polled.
type countingSource struct {
	src   telegram.UpdateSource
	calls atomic.Int64
}

func (c *countingSource) GetTopicUpdates(ctx context.Context, offset, timeout int) ([]telegram.Update, error) {
	c.calls.Add(1)
	return c.src.GetTopicUpdates(ctx, offset, timeout)
}

// crashCoord is a coordinator whose ReleaseLease does nothing, as when a
// process is killed: its lease stays until it runs out.
type crashCoord struct{ telegram.Leaser }

func (crashCoord) ReleaseLease(context.Context, string, string) error { return nil }

// afterHandler calls after once the first update was handled.
type afterHandler struct {
	h     telegram.UpdateHandler
	once  sync.Once
	after func()
}

func (a *afterHandler) HandleUpdate(ctx context.Context, u tgbotapi.Update) error {
	err := a.h.HandleUpdate(ctx, u)
	a.once.Do(a.after)
	return err
}

// panicky panics on /boom and hands everything else on.
type panicky struct{ h telegram.UpdateHandler }

func (p panicky) HandleUpdate(ctx context.Context, u tgbotapi.Update) error {
	if u.Message != nil && u.Message.Text == "/boom" {
		panic("boom")
	}
	return p.h.HandleUpdate(ctx, u)
}

func TestAPanickingUpdateDoesNotStopThePoller(t *testing.T) {
	e := newPollerEnv(t)
	e.start("p1", panicky{e.cmds}, e.coord)
	boom := e.tg.SendCommand(chatA, stranger, "/boom")
	mustContain(t, e.reply(chatA, stranger, "/start"), "Hello")
	if n := e.repliesTo(chatA, boom); n != 0 {
		t.Errorf("the panicking update got %d replies", n)
	}
}

// runner is one running poller.
type runner struct {
	src    *countingSource
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// pollerEnv is the bot without a poller: tests start their own.
type pollerEnv struct {
	*env
	coord telegram.Leaser
}

// newPollerEnv builds commands on a store with a real clock: leases and
// handover run on real time here.
func newPollerEnv(t *testing.T) *pollerEnv {
	t.Helper()
	tg := bottest.New(t)
	store := openStoreAt(t, filepath.Join(t.TempDir(), "otpbot.db"), time.Now)
	client := newClient(t, tg)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := NewCommands(CommandsOptions{Store: store, Client: client, Templates: tmpl, Admins: []int64{admin}, Username: client.Username})
	if err != nil {
		t.Fatal(err)
	}
	return &pollerEnv{env: &env{t: t, ctx: context.Background(), tg: tg, client: client, store: store, tmpl: tmpl, cmds: cmds}, coord: store}
}

// start runs a poller named owner with its own client on the shared store.
func (e *pollerEnv) start(owner string, h telegram.UpdateHandler, coord telegram.Leaser) *runner {
	e.t.Helper()
	r := &runner{src: &countingSource{src: newClient(e.t, e.tg)}, done: make(chan struct{})}
	// A lease of 3s renewed every second: a loaded machine may delay a
	// renewal a lot before the standby could take a lease still held.
	p, err := telegram.NewPoller(telegram.PollerOptions{Client: r.src, Handler: h, Coord: coord, Owner: owner, LeaseTTL: 3 * time.Second, PollTimeout: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { defer close(r.done); _ = p.Run(ctx) }()
	e.t.Cleanup(r.stop)
	return r
}

// repliesTo counts the bot's replies to message id in chat.
func (e *pollerEnv) repliesTo(chat int64, id int) int {
	n := 0
	for _, m := range e.tg.Messages(chat) {
		if m.ReplyTo == id {
			n++
		}
	}
	return n
}

func TestOnlyTheLeaseHolderPolls(t *testing.T) {
	e := newPollerEnv(t)
	first := e.start("p1", e.cmds, e.coord)
	e.tg.WaitFor(t, func() bool { return first.src.calls.Load() > 0 })
	second := e.start("p2", e.cmds, e.coord)

	for i := range 5 {
		e.reply(int64(100+i), stranger, "/start")
	}
	// However long the replies above took, the standby never polled.
	if n := second.src.calls.Load(); n != 0 {
		t.Fatalf("the standby polled %d times while the lease was held", n)
	}

	// A clean stop gives the lease up; the standby takes over.
	first.stop()
	before := first.src.calls.Load()
	got := e.reply(200, stranger, "/start")
	mustContain(t, got, "200")
	if second.src.calls.Load() == 0 {
		t.Fatal("the reply came without the standby polling")
	}
	if first.src.calls.Load() != before {
		t.Error("the stopped poller kept polling")
	}
}

func TestStandbyTakesOverFromACrashedPoller(t *testing.T) {
	e := newPollerEnv(t)
	var crashed *runner
	crash := make(chan struct{})
	// The first poller handles one update and dies before it can confirm
	// it to Telegram (that happens with the next getUpdates) or release
	// its lease.
	// It dies inside the handler, so its loop cannot call getUpdates again.
	crashed = e.start("p1", &afterHandler{h: e.cmds, after: func() { crashed.cancel(); close(crash) }}, crashCoord{e.coord})
	e.tg.WaitFor(t, func() bool { return crashed.src.calls.Load() > 0 })
	standby := e.start("p2", e.cmds, e.coord)

	first := e.tg.SendCommand(chatA, stranger, "/start")
	<-crash
	crashed.stop()
	if e.tg.PendingUpdates() == 0 {
		t.Fatal("the update was confirmed: the test does not exercise a redelivery")
	}

	// The standby takes over once the dead poller's lease runs out, gets
	// the unconfirmed update again and does not handle it twice.
	second := e.tg.SendCommand(chatA, stranger, "/help")
	start := time.Now()
	e.tg.WaitFor(t, func() bool { return e.repliesTo(chatA, second) == 1 })
	if time.Since(start) < 500*time.Millisecond {
		t.Errorf("took over after %s, before the lease could have run out", time.Since(start))
	}
	if n := e.repliesTo(chatA, first); n != 1 {
		t.Errorf("the update handled before the crash got %d replies, want 1", n)
	}
	if standby.src.calls.Load() == 0 {
		t.Error("the standby never polled")
	}
	e.tg.WaitFor(t, func() bool { return e.tg.PendingUpdates() == 0 })
}

func TestPollerObeysRetryAfter(t *testing.T) {
	e := newPollerEnv(t)
	e.tg.FailNext("getUpdates", 1, 429, "Too Many Requests: retry after 2", 2)
	e.start("p1", e.cmds, e.coord)
	e.reply(chatA, stranger, "/start")
	calls := e.tg.Calls("getUpdates")
	if len(calls) < 2 || calls[0].Code != 429 {
		t.Fatalf("calls: %+v", calls)
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < 2*time.Second-50*time.Millisecond {
		t.Errorf("polled again %s after a 429 with retry_after 2", gap)
	}
}

func TestPollerRecoversFromErrors(t *testing.T) {
	e := newPollerEnv(t)
	e.tg.FailNext("getUpdates", 2, 502, "Bad Gateway", 0)
	e.start("p1", e.cmds, e.coord)
	mustContain(t, e.reply(chatA, stranger, "/start"), "Hello")
	calls := e.tg.Calls("getUpdates")
	if calls[0].Code != 502 || calls[1].Code != 502 {
		t.Fatalf("the faults were not served: %+v", calls[:2])
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < 300*time.Millisecond {
		t.Errorf("retried after %s: no backoff", gap)
	}
}

func TestPollerStopsAtOnce(t *testing.T) {
	e := newPollerEnv(t)
	src := &countingSource{src: newClient(t, e.tg)}
	p, err := telegram.NewPoller(telegram.PollerOptions{Client: src, Handler: e.cmds, Coord: e.coord, Owner: "p1", LeaseTTL: time.Minute, PollTimeout: 50})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.tg.WaitFor(t, func() bool { return src.calls.Load() > 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still polling 5s after cancel (the long poll is 50s)")
	}
	// The lease was given up: another process can take it at once.
	if ok, err := e.coord.AcquireLease(context.Background(), telegram.PollerLease, "p2", time.Minute); err != nil || !ok {
		t.Errorf("lease after a clean stop: %v %v", ok, err)
	}
}

// commandUpdate is a Telegram update carrying a command.
func commandUpdate(t *testing.T, updateID int, chat, user int64, messageID int, text string) []byte {
	t.Helper()
	word, _, _ := strings.Cut(text, " ")
	data, err := json.Marshal(map[string]any{
		"update_id": updateID,
		"message": map[string]any{
			"message_id": messageID, "date": time.Now().Unix(), "text": text,
			"from":     map[string]any{"id": user, "is_bot": false, "first_name": "U"},
			"chat":     map[string]any{"id": chat, "type": "supergroup", "title": "G"},
			"entities": []map[string]any{{"type": "bot_command", "offset": 0, "length": len(word)}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestWebhookHandler(t *testing.T) {
	e := newPollerEnv(t)
	const secret = "s3cr3t-token_ABC"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	const path = "/tg/very-secret-path-123"
	mux.Handle(path, telegram.WebhookHandler(secret, e.cmds, e.coord, log))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	post := func(body []byte, header *string, method string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if header != nil {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", *header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	str := func(s string) *string { return &s }

	upd := commandUpdate(t, 5001, chatA, stranger, 77, "/start")
	rejected := []struct {
		name   string
		header *string
	}{
		{"no header", nil},
		{"empty", str("")},
		{"wrong", str("s3cr3t-token_ABD")},
		{"prefix", str("s3cr3t")},
		{"longer", str(secret + "x")},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			if code := post(upd, tt.header, http.MethodPost); code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", code)
			}
		})
	}
	if n := e.repliesTo(chatA, 77); n != 0 {
		t.Fatalf("a rejected request was handled (%d replies)", n)
	}

	// The same update with the right secret is handled: the rejected
	// attempts changed nothing, not even the dedupe mark.
	if code := post(upd, str(secret), http.MethodPost); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	// Telegram redelivers: 200 again, handled once.
	if code := post(upd, str(secret), http.MethodPost); code != http.StatusOK {
		t.Fatalf("repeat: status %d, want 200", code)
	}
	next := commandUpdate(t, 5002, chatA, stranger, 78, "/help")
	if code := post(next, str(secret), http.MethodPost); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	e.tg.WaitFor(t, func() bool { return e.repliesTo(chatA, 78) == 1 })
	if n := e.repliesTo(chatA, 77); n != 1 {
		t.Errorf("update 5001 posted twice got %d replies, want 1", n)
	}

	if code := post([]byte(`{"update_id":`), str(secret), http.MethodPost); code != http.StatusBadRequest {
		t.Errorf("malformed body: %d", code)
	}
	if code := post(nil, str(secret), http.MethodGet); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "very-secret-path") {
		t.Errorf("the logs reveal the secret or the path:\n%s", logs.String())
	}

	t.Run("an empty configured secret rejects everything", func(t *testing.T) {
		h := telegram.WebhookHandler("", e.cmds, e.coord, nil)
		for _, hdr := range []*string{nil, str("")} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(commandUpdate(t, 6001, chatB, stranger, 1, "/start")))
			if hdr != nil {
				req.Header.Set("X-Telegram-Bot-Api-Secret-Token", *hdr)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", rec.Code)
			}
		}
	})
}

// Telegram itself posting to the webhook: setWebhook with the secret, then
// updates (a forum topic included) arrive and are answered.
func TestWebhookThroughTelegram(t *testing.T) {
	e := newPollerEnv(t)
	const secret = "another-secret"
	srv := httptest.NewServer(telegram.WebhookHandler(secret, e.cmds, e.coord, nil))
	t.Cleanup(srv.Close)
	if err := e.client.SetWebhook(context.Background(), srv.URL+"/hook", secret); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.reply(chatA, stranger, "/start", bottest.InThread(9)), fmt.Sprint(chatA), "topic <code>9</code>")
	got := e.command(chatB, admin, "/link card 4111000011102222", 1, bottest.InThread(3))[0]
	mustContain(t, got, "(topic 3)")
	for _, m := range e.tg.Messages(chatB) {
		if m.ReplyTo != 0 && m.ThreadID != 3 {
			t.Errorf("reply outside the topic: thread %d", m.ThreadID)
		}
	}
	// Telegram drops an update once the webhook answered 200 (which comes
	// after the reply was sent).
	e.tg.WaitFor(t, func() bool { return e.tg.PendingUpdates() == 0 })
}

// The secret is compared by digest (no length leak); an empty configured
// secret still rejects everything, an empty header included.
func TestWebhookSecretCompare(t *testing.T) {
	for _, tc := range []struct {
		name, secret, header string
		want                 int
	}{
		{"no secret configured, none sent", "", "", http.StatusUnauthorized},
		{"no secret configured, one sent", "", "x", http.StatusUnauthorized},
		{"prefix of the secret", "s3cr3t", "s3cr", http.StatusUnauthorized},
		{"secret and more", "s3cr3t", "s3cr3tX", http.StatusUnauthorized},
		{"right secret, wrong method", "s3cr3t", "s3cr3t", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := telegram.WebhookHandler(tc.secret, nil, nil, nil)
			req := httptest.NewRequest(http.MethodGet, "/tg", nil)
			if tc.header != "" {
				req.Header.Set("X-Telegram-Bot-Api-Secret-Token", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}
