package chatpage

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
)

const deadline = 15 * time.Second

// recordingPusher answers every push with 200 and remembers it.
type recordingPusher struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingPusher) Push(_ context.Context, sample, card string) (PushResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, sample+" "+card)
	return PushResult{Provider: "UPay", Event: sample, Card: card, Status: 200, Answer: "SUCCESS"}, nil
}

// setup is a page over a standalone fake, served by a test server, and the
// bot's side of the fake.
type setup struct {
	fake   *bottest.Standalone
	page   *Page
	srv    *httptest.Server
	bot    *tgbotapi.BotAPI
	pusher *recordingPusher
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	fake, err := bottest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	s := &setup{fake: fake, pusher: &recordingPusher{}}
	s.page, err = New(Options{
		Fake: fake, BotName: "otpbot",
		Chats:   []Chat{{ID: 1, Title: "Ann", Users: []int64{1}}, {ID: -5, Title: "Group", Users: []int64{1, 2}}},
		Users:   []User{{ID: 1, Name: "Ann", Username: "ann", Admin: true}, {ID: 2, Name: "Ben", Username: "ben"}},
		Cards:   []Card{{ID: "C1", Chat: 1}},
		Samples: []Sample{{ID: "upay/3ds_otp", Provider: "upay", Event: "3DS_OTP", Message: true}},
		Pusher:  s.pusher,
		Welcome: "upay/3ds_otp",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.page.Start(ctx)
	t.Cleanup(func() { cancel(); <-s.page.Done() })
	s.srv = httptest.NewServer(s.page)
	t.Cleanup(s.srv.Close)
	s.bot, err = tgbotapi.NewBotAPIWithClient("1:t", fake.Endpoint(), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stream is an open event stream: each event as "name data".
func (s *setup) stream(t *testing.T) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+Prefix+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 256)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "event: "); ok {
				name = n
			} else if d, ok := strings.CutPrefix(line, "data: "); ok {
				out <- name + " " + d
			}
		}
	}()
	return out
}

// await returns the next event starting with prefix and containing want.
func await(t *testing.T, events <-chan string, prefix, want string) string {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %s %s", prefix, want)
			}
			if strings.HasPrefix(ev, prefix+" ") && strings.Contains(ev, want) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event with %q within %s", prefix, want, deadline)
		}
	}
}

func (s *setup) post(t *testing.T, path, body string) int {
	t.Helper()
	resp, err := http.Post(s.srv.URL+Prefix+"/api/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPageFollowsTheFake: what the bot sends, edits and deletes, and the
// callback answers it gives, reach an open page; a reconnecting page gets
// the current state; the first visit pushes the welcome sample once.
func TestPageFollowsTheFake(t *testing.T) {
	s := newSetup(t)
	events := s.stream(t)
	await(t, events, "reset", `"title":"Group"`)
	await(t, events, "ready", "")
	await(t, events, "push", `"card":"C1"`)

	msg := tgbotapi.NewMessage(1, "<b>code</b> <code>123456</code>")
	msg.ParseMode = "HTML"
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("Hide", "hide")))
	sent, err := s.bot.Send(msg)
	if err != nil {
		t.Fatal(err)
	}
	await(t, events, "message", `"html":"\u003cb\u003ecode\u003c/b\u003e \u003ccode\u003e123456\u003c/code\u003e","buttons":[[{"text":"Hide","data":"hide"}]]`)

	if _, err := s.bot.Send(tgbotapi.NewEditMessageText(1, sent.MessageID, "hidden")); err != nil {
		t.Fatal(err)
	}
	await(t, events, "message", `"html":"hidden","edited":true`)

	if _, err := s.bot.Request(tgbotapi.NewCallback("cb1", "Done")); err != nil {
		t.Fatal(err)
	}
	await(t, events, "toast", `"text":"Done"`)

	// A chat the page did not list appears when the bot writes there.
	if _, err := s.bot.Send(tgbotapi.NewMessage(77, "hello")); err != nil {
		t.Fatal(err)
	}
	await(t, events, "chat", `"id":77`)

	// A second page gets the snapshot, and no second welcome push.
	second := s.stream(t)
	await(t, second, "message", `"html":"hidden"`)
	await(t, second, "ready", "")

	if _, err := s.bot.Request(tgbotapi.NewDeleteMessage(1, sent.MessageID)); err != nil {
		t.Fatal(err)
	}
	await(t, events, "delete", `{"chat":1,"id":1}`)
	s.pusher.mu.Lock()
	defer s.pusher.mu.Unlock()
	if len(s.pusher.calls) != 1 || s.pusher.calls[0] != "upay/3ds_otp C1" {
		t.Errorf("welcome pushes: %v; want one of upay/3ds_otp for C1", s.pusher.calls)
	}
}

// TestPageWritesAsUsers: a message and a button press become updates
// from the chosen user; what is not allowed is refused.
func TestPageWritesAsUsers(t *testing.T) {
	s := newSetup(t)
	events := s.stream(t)
	if st := s.post(t, "send", `{"chat":-5,"user":2,"text":"/codes"}`); st != http.StatusOK {
		t.Fatalf("send answered %d", st)
	}
	await(t, events, "message", `"from":2,"name":"Ben","html":"\u003ca href=\"#\" class=\"cmd\" data-cmd=\"/codes\"\u003e/codes\u003c/a\u003e"`)
	if st := s.post(t, "press", `{"chat":1,"user":1,"message":1,"data":"hide"}`); st != http.StatusOK {
		t.Fatalf("press answered %d", st)
	}
	ups, err := s.bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	if err != nil || len(ups) != 2 {
		t.Fatalf("updates %+v %v", ups, err)
	}
	if m := ups[0].Message; m == nil || m.Chat.ID != -5 || m.From.UserName != "ben" || m.Command() != "codes" {
		t.Errorf("the message reached the bot as %+v", m)
	}
	if q := ups[1].CallbackQuery; q == nil || q.From.UserName != "ann" || q.Data != "hide" {
		t.Errorf("the press reached the bot as %+v", q)
	}

	tests := []struct {
		name, path, body string
		status           int
	}{
		{"a user not in the chat", "send", `{"chat":1,"user":2,"text":"hi"}`, http.StatusForbidden},
		{"an unknown chat", "send", `{"chat":9,"user":1,"text":"hi"}`, http.StatusNotFound},
		{"an empty text", "send", `{"chat":1,"user":1,"text":"  "}`, http.StatusBadRequest},
		{"no callback data", "press", `{"chat":1,"user":1,"message":1,"data":""}`, http.StatusBadRequest},
		{"an unknown sample", "push", `{"sample":"upay/nope","card":"C1"}`, http.StatusBadRequest},
		{"an unknown card", "push", `{"sample":"upay/3ds_otp","card":"C7"}`, http.StatusBadRequest},
		{"an unknown field", "send", `{"chat":1,"user":1,"text":"hi","x":1}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		if st := s.post(t, tt.path, tt.body); st != tt.status {
			t.Errorf("%s: answered %d; want %d", tt.name, st, tt.status)
		}
	}
	// A form post (what a page elsewhere can send without asking) and a
	// foreign Host (DNS rebinding) are refused.
	resp, err := http.Post(s.srv.URL+Prefix+"/api/send", "text/plain", strings.NewReader(`{"chat":1,"user":1,"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a text/plain post answered %d; want 415", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+Prefix, nil)
	req.Host = "attacker.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a foreign Host answered %d; want 403", resp.StatusCode)
	}
	// The two accepted updates are still unconfirmed; nothing else came.
	if n := s.fake.PendingUpdates(); n != 2 {
		t.Errorf("the bot has %d updates; want only the 2 accepted ones", n)
	}
}

// TestSlowPageIsCut: a stream that falls too far behind is closed (its
// browser reconnects and gets a snapshot) rather than holding the hub.
func TestSlowPageIsCut(t *testing.T) {
	h := newHub(nil, "otpbot", []Chat{{ID: 1, Title: "Ann", Users: []int64{1}}})
	sub, snap := h.subscribe()
	if len(snap) != 2 || snap[0].name != "reset" || snap[1].name != "ready" {
		t.Fatalf("snapshot %v", snap)
	}
	for range subscriberBuffer + 1 {
		h.broadcast("toast", map[string]string{"text": "x"})
	}
	n := 0
	for range sub.ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("the slow stream got %d events before it was cut; want %d", n, subscriberBuffer)
	}
	h.unsubscribe(sub) // already gone: harmless
}
