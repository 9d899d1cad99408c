package bottest_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
)

const token = "123456:TEST-token"

func newBot(t *testing.T, s *bottest.Server) *tgbotapi.BotAPI {
	t.Helper()
	b, err := tgbotapi.NewBotAPIWithClient(token, s.Endpoint(), &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewBotAPIWithClient: %v", err)
	}
	return b
}

func apiErr(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var te *tgbotapi.Error
	if !errors.As(err, &te) {
		t.Fatalf("want *tgbotapi.Error, got %T %v", err, err)
	}
	return te
}

func TestGetMeAndPerChatMessageIDs(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)
	if b.Self.UserName != bottest.BotUsername || !b.Self.IsBot {
		t.Fatalf("getMe = %+v", b.Self)
	}
	sends := []struct {
		chat   int64
		wantID int
	}{{1, 1}, {1, 2}, {-100, 1}, {1, 3}, {-100, 2}}
	for _, tc := range sends {
		m, err := b.Send(tgbotapi.NewMessage(tc.chat, "hello"))
		if err != nil {
			t.Fatalf("send to %d: %v", tc.chat, err)
		}
		if m.MessageID != tc.wantID || m.Chat.ID != tc.chat {
			t.Fatalf("send to %d: id %d chat %d, want id %d", tc.chat, m.MessageID, m.Chat.ID, tc.wantID)
		}
	}
	if got := len(s.Messages(1)); got != 3 {
		t.Fatalf("chat 1 has %d messages, want 3", got)
	}
	if got := len(s.Calls("sendMessage")); got != 5 {
		t.Fatalf("recorded %d sendMessage calls, want 5", got)
	}
}

func TestEditKeepsCurrentStateAndRefusesNoop(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)
	msg := tgbotapi.NewMessage(5, "<b>code</b> 1234")
	msg.ParseMode = tgbotapi.ModeHTML
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("Hide", "hide")))
	sent, err := b.Send(msg)
	if err != nil {
		t.Fatal(err)
	}
	edit := tgbotapi.NewEditMessageText(5, sent.MessageID, "expired")
	if _, err := b.Send(edit); err != nil {
		t.Fatalf("edit: %v", err)
	}
	got := s.Messages(5)
	if len(got) != 1 || got[0].Text != "expired" || got[0].Edits != 1 || got[0].Buttons != nil {
		t.Fatalf("after edit: %+v", got)
	}
	_, err = b.Send(edit)
	if te := apiErr(t, err); te.Code != 400 || te.Message[:36] != "Bad Request: message is not modified" {
		t.Fatalf("repeated edit: %+v", te)
	}
	_, err = b.Send(tgbotapi.NewEditMessageText(5, 99, "x"))
	if te := apiErr(t, err); te.Code != 400 {
		t.Fatalf("edit of unknown message: %+v", te)
	}
}

func TestRejectsWhatTelegramRejects(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)
	long := make([]byte, 4097)
	for i := range long {
		long[i] = 'a'
	}
	cases := []struct {
		name, text, mode string
	}{
		{"unknown tag", "<div>x</div>", tgbotapi.ModeHTML},
		{"unbalanced", "<b>x", tgbotapi.ModeHTML},
		{"bare ampersand", "a & b", tgbotapi.ModeHTML},
		{"too long", string(long), ""},
		{"empty", " ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tgbotapi.NewMessage(1, tc.text)
			m.ParseMode = tc.mode
			_, err := b.Send(m)
			if te := apiErr(t, err); te.Code != 400 {
				t.Fatalf("code %d", te.Code)
			}
		})
	}
	if n := len(s.Messages(1)); n != 0 {
		t.Fatalf("%d messages stored after refusals", n)
	}
}

func TestFaults(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)

	s.FailNext("sendMessage", 2, 429, "Too Many Requests: retry after 7", 7)
	for i := 0; i < 2; i++ {
		_, err := b.Send(tgbotapi.NewMessage(1, "x"))
		if te := apiErr(t, err); te.Code != 429 || te.RetryAfter != 7 {
			t.Fatalf("fault %d: %+v", i, te)
		}
	}
	if _, err := b.Send(tgbotapi.NewMessage(1, "x")); err != nil {
		t.Fatalf("after faults: %v", err)
	}
	if s.Count429() != 2 {
		t.Fatalf("Count429 = %d", s.Count429())
	}

	s.SetDown(502)
	// nginx's HTML page, not an envelope the library can read.
	_, err := b.Send(tgbotapi.NewMessage(1, "x"))
	var te *tgbotapi.Error
	if err == nil || errors.As(err, &te) {
		t.Fatalf("down: %v", err)
	}
	s.SetDown(0)
	if _, err := b.Send(tgbotapi.NewMessage(1, "x")); err == nil {
		t.Fatal("dropped connection: no error")
	}
	s.SetUp()
	if _, err := b.Send(tgbotapi.NewMessage(1, "x")); err != nil {
		t.Fatalf("after SetUp: %v", err)
	}

	s.Block(1)
	_, err = b.Send(tgbotapi.NewMessage(1, "x"))
	if te := apiErr(t, err); te.Code != 403 || te.Message != "Forbidden: bot was blocked by the user" {
		t.Fatalf("blocked: %+v", te)
	}
	if n := len(s.Messages(1)); n != 2 {
		t.Fatalf("%d messages, want the 2 that succeeded", n)
	}
}

func TestLimitsAnswer429(t *testing.T) {
	s := bottest.New(t, bottest.WithLimits(3, 1))
	b := newBot(t, s)
	if _, err := b.Send(tgbotapi.NewMessage(1, "a")); err != nil {
		t.Fatal(err)
	}
	_, err := b.Send(tgbotapi.NewMessage(1, "b"))
	if te := apiErr(t, err); te.Code != 429 || te.RetryAfter < 1 {
		t.Fatalf("second send in a second to one chat: %+v", te)
	}
	// Other chats still have the global budget: 2 more fit, the 4th is over.
	for _, chat := range []int64{2, 3} {
		if _, err := b.Send(tgbotapi.NewMessage(chat, "c")); err != nil {
			t.Fatalf("chat %d: %v", chat, err)
		}
	}
	_, err = b.Send(tgbotapi.NewMessage(4, "d"))
	if te := apiErr(t, err); te.Code != 429 {
		t.Fatalf("global limit: %+v", te)
	}
	if s.Count429() != 2 {
		t.Fatalf("Count429 = %d, want 2", s.Count429())
	}
}

func TestLongPollWaitsForInjectedCommand(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)

	got := make(chan []tgbotapi.Update, 1)
	go func() {
		u, err := b.GetUpdates(tgbotapi.UpdateConfig{Offset: 0, Timeout: 5})
		if err != nil {
			t.Errorf("GetUpdates: %v", err)
		}
		got <- u
	}()
	s.WaitFor(t, func() bool { return len(s.Calls("getUpdates")) == 1 })
	s.SendCommand(-1001, 42, "/link card C1", bottest.InThread(7))

	var ups []tgbotapi.Update
	select {
	case ups = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return after an update was injected")
	}
	if len(ups) != 1 {
		t.Fatalf("got %d updates", len(ups))
	}
	m := ups[0].Message
	if m == nil || !m.IsCommand() || m.Command() != "link" || m.CommandArguments() != "card C1" ||
		m.From.ID != 42 || m.Chat.ID != -1001 || m.Chat.Type != "supergroup" {
		t.Fatalf("update = %+v", m)
	}
	// The offset confirms it; the next poll waits and times out empty.
	ups2, err := b.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1, Timeout: 0})
	if err != nil || len(ups2) != 0 {
		t.Fatalf("after confirm: %v %v", ups2, err)
	}
	if s.PendingUpdates() != 0 {
		t.Fatalf("pending = %d", s.PendingUpdates())
	}
}

func TestPressButton(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)
	msg := tgbotapi.NewMessage(9, "code")
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("Hide", "hide")))
	sent, err := b.Send(msg)
	if err != nil {
		t.Fatal(err)
	}
	id := s.PressButton(9, 9, sent.MessageID, "hide")
	ups, err := b.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	if err != nil || len(ups) != 1 || ups[0].CallbackQuery == nil {
		t.Fatalf("updates %+v %v", ups, err)
	}
	cq := ups[0].CallbackQuery
	if cq.ID != id || cq.Data != "hide" || cq.Message.MessageID != sent.MessageID || cq.From.ID != 9 {
		t.Fatalf("callback = %+v", cq)
	}
	if _, err := b.Request(tgbotapi.NewCallback(cq.ID, "hidden")); err != nil {
		t.Fatal(err)
	}
	if calls := s.Calls("answerCallbackQuery"); len(calls) != 1 || calls[0].Params["text"] != "hidden" {
		t.Fatalf("answer calls %+v", calls)
	}
}

func TestWebhookReceivesUpdatesWithSecret(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var secrets []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		secrets = append(secrets, r.Header.Get("X-Telegram-Bot-Api-Secret-Token"))
		mu.Unlock()
	}))
	defer recv.Close()

	s := bottest.New(t)
	b := newBot(t, s)
	if _, err := b.MakeRequest("setWebhook", tgbotapi.Params{"url": recv.URL + "/tg", "secret_token": "s3cret"}); err != nil {
		t.Fatal(err)
	}
	_, err := b.GetUpdates(tgbotapi.UpdateConfig{})
	if te := apiErr(t, err); te.Code != 409 {
		t.Fatalf("getUpdates with webhook: %+v", te)
	}
	s.SendCommand(5, 5, "/start")
	s.WaitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if secrets[0] != "s3cret" {
		t.Fatalf("secret header %q", secrets[0])
	}
	s.WaitFor(t, func() bool { return s.PendingUpdates() == 0 })
}

func TestWrongTokenIsUnauthorized(t *testing.T) {
	s := bottest.New(t, bottest.WithToken("1:right"))
	_, err := tgbotapi.NewBotAPIWithClient("1:wrong", s.Endpoint(), http.DefaultClient)
	if te := apiErr(t, err); te.Code != 401 {
		t.Fatalf("%+v", te)
	}
}
