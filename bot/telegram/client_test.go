package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
)

const testToken = "424242:AAE-secret_Token"

func newTestClient(t *testing.T, s *bottest.Server, reg prometheus.Registerer) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewClient(ctx, ClientOptions{Token: testToken, Endpoint: s.Endpoint(), Registerer: reg})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func TestNewClientRetriesGetMeUntilTelegramAnswers(t *testing.T) {
	s := bottest.New(t)
	s.SetDown(502)
	done := make(chan struct{})
	var c *Client
	var err error
	go func() {
		defer close(done)
		c, err = NewClient(context.Background(), ClientOptions{Token: testToken, Endpoint: s.Endpoint()})
	}()
	s.WaitFor(t, func() bool { return len(s.Calls("getMe")) >= 2 })
	s.SetUp()
	<-done
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if c.Username() != bottest.BotUsername {
		t.Fatalf("Username = %q", c.Username())
	}
}

func TestNewClientGivesUp(t *testing.T) {
	t.Run("token rejected", func(t *testing.T) {
		s := bottest.New(t, bottest.WithToken("1:other"))
		_, err := NewClient(context.Background(), ClientOptions{Token: testToken, Endpoint: s.Endpoint()})
		if err == nil || strings.Contains(err.Error(), testToken) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		s := bottest.New(t)
		s.SetDown(0)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := NewClient(ctx, ClientOptions{Token: testToken, Endpoint: s.Endpoint()})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Fatalf("token in error: %v", err)
		}
	})
	t.Run("no token", func(t *testing.T) {
		if _, err := NewClient(context.Background(), ClientOptions{}); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestSendCarriesWhatTheLibraryCannot(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	ctx := context.Background()
	out := OutMessage{
		Target:  otpbot.Target{ChatID: -1005, ThreadID: 12},
		Text:    "Code <code>123456</code> for •••• 1234",
		Protect: true,
		ReplyTo: 3,
		Buttons: [][]Button{
			{{Text: "Copy", CopyText: "123456"}, {Text: "Used it — hide", Data: "hide"}},
			{{Text: "Open", URL: "https://pay.example/confirm?x=1"}},
		},
	}
	id, err := c.Send(ctx, out)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := s.Messages(-1005)
	if len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("messages %+v, id %d", msgs, id)
	}
	m := msgs[0]
	want := [][]bottest.Button{
		{{Text: "Copy", CopyText: "123456"}, {Text: "Used it — hide", Data: "hide"}},
		{{Text: "Open", URL: "https://pay.example/confirm?x=1"}},
	}
	if m.ThreadID != 12 || !m.Protect || m.ReplyTo != 3 || m.ParseMode != "HTML" || m.Text != out.Text {
		t.Fatalf("message %+v", m)
	}
	if len(m.Buttons) != 2 || len(m.Buttons[0]) != 2 || m.Buttons[0][0] != want[0][0] || m.Buttons[0][1] != want[0][1] || m.Buttons[1][0] != want[1][0] {
		t.Fatalf("buttons %+v", m.Buttons)
	}

	// Edit: new text, keyboard removed; the same edit again is success.
	edit := OutMessage{Target: out.Target, Text: "Code expired for •••• 1234"}
	for i := 0; i < 2; i++ {
		if err := c.Edit(ctx, id, edit); err != nil {
			t.Fatalf("Edit %d: %v", i, err)
		}
	}
	m, _ = s.Message(-1005, id)
	if m.Text != edit.Text || m.Buttons != nil || m.Edits != 1 {
		t.Fatalf("after edit %+v", m)
	}
}

func TestSendRefusesMalformedButtons(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	_, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: 1}, Text: "x",
		Buttons: [][]Button{{{Text: "both", Data: "a", URL: "https://x"}}}})
	if ClassOf(err) != ClassBadRequest {
		t.Fatalf("err %v", err)
	}
	if len(s.Calls("sendMessage")) != 0 {
		t.Fatal("malformed keyboard reached Telegram")
	}
}

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		name       string
		code       int
		desc       string
		retryAfter int
		want       ErrorClass
		wantWait   time.Duration
	}{
		{"flood", 429, "Too Many Requests: retry after 5", 5, ClassRateLimited, 5 * time.Second},
		{"bad gateway", 502, "Bad Gateway", 0, ClassRetryable, 0},
		{"internal", 500, "Internal Server Error", 0, ClassRetryable, 0},
		{"chat not found", 400, "Bad Request: chat not found", 0, ClassGone, 0},
		{"blocked", 403, "Forbidden: bot was blocked by the user", 0, ClassGone, 0},
		{"kicked", 403, "Forbidden: bot was kicked from the supergroup chat", 0, ClassGone, 0},
		{"deactivated", 403, "Forbidden: user is deactivated", 0, ClassGone, 0},
		{"topic closed", 400, "Bad Request: TOPIC_CLOSED", 0, ClassGone, 0},
		{"thread not found", 400, "Bad Request: message thread not found", 0, ClassGone, 0},
		{"not modified", 400, "Bad Request: message is not modified: specified new message content", 0, ClassNotModified, 0},
		{"bad entities", 400, "Bad Request: can't parse entities: Unsupported start tag", 0, ClassBadRequest, 0},
		{"conflict", 409, "Conflict: terminated by other getUpdates request", 0, ClassRetryable, 0},
	}
	s := bottest.New(t)
	reg := prometheus.NewRegistry()
	c := newTestClient(t, s, reg)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.FailNext("sendMessage", 1, tc.code, tc.desc, tc.retryAfter)
			_, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: 1}, Text: "x"})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %T %v", err, err)
			}
			if ae.Class != tc.want || ae.Code != tc.code || ae.RetryAfter != tc.wantWait || ae.Method != "sendMessage" {
				t.Fatalf("got %+v", ae)
			}
		})
	}
	if got := testutil.ToFloat64(c.rateLimited); got != 1 {
		t.Fatalf("rate limited counter = %v", got)
	}
	if got := testutil.ToFloat64(c.calls.WithLabelValues("sendMessage", "gone")); got != 6 {
		t.Fatalf("gone counter = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "otpbot_telegram_calls_total", "otpbot_telegram_rate_limited_total"); err != nil || n == 0 {
		t.Fatalf("metrics not registered: %d %v", n, err)
	}
}

func TestErrorsNeverContainTheToken(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	s.SetDown(0) // connection dropped: the transport error names the URL
	_, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: 1}, Text: "x"})
	if err == nil {
		t.Fatal("no error")
	}
	if ClassOf(err) != ClassRetryable {
		t.Fatalf("class %v", ClassOf(err))
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "424242") {
		t.Fatalf("token leaked: %v", err)
	}
	if got := scrub("Post \"http://x/bot"+testToken+"/getMe\": EOF", testToken); strings.Contains(got, "secret") {
		t.Fatalf("scrub: %s", got)
	}
}

func TestGetUpdatesStopsAtOnceOnCancel(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetUpdates(ctx, 0, 50)
		errc <- err
	}()
	s.WaitFor(t, func() bool { return len(s.Calls("getUpdates")) == 1 })
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll not cancelled")
	}
}

func TestGetTopicUpdatesKeepsTheThread(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	s.SendCommand(-100777, 1, "/link card C1", bottest.InThread(33))
	s.SendCommand(-100777, 1, "/links")
	ups, err := c.GetTopicUpdates(context.Background(), 0, 1)
	if err != nil || len(ups) != 2 {
		t.Fatalf("%v %v", ups, err)
	}
	if ups[0].ThreadID != 33 || ups[0].Message.Command() != "link" || ups[1].ThreadID != 0 {
		t.Fatalf("threads %d %d", ups[0].ThreadID, ups[1].ThreadID)
	}
	msgID, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: -100777, ThreadID: 33}, Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	cb := s.PressButton(-100777, 1, msgID, "hide")
	ups, err = c.GetTopicUpdates(context.Background(), ups[1].UpdateID+1, 1)
	if err != nil || len(ups) != 1 || ups[0].CallbackQuery.ID != cb || ups[0].ThreadID != 33 {
		t.Fatalf("callback %+v %v", ups, err)
	}
	if err := c.AnswerCallback(context.Background(), cb, "Hidden", false); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookCalls(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	ctx := context.Background()
	if err := c.SetWebhook(ctx, "https://bot.example/tg/hook", "sekret"); err != nil {
		t.Fatal(err)
	}
	if u, sec := s.WebhookURL(); u != "https://bot.example/tg/hook" || sec != "sekret" {
		t.Fatalf("webhook %q %q", u, sec)
	}
	if err := c.DeleteWebhook(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.WebhookURL(); u != "" {
		t.Fatalf("webhook still %q", u)
	}
}

func TestCallTimeoutIsRetryable(t *testing.T) {
	s := bottest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewClient(ctx, ClientOptions{Token: testToken, Endpoint: s.Endpoint(), CallTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := s.Hold("sendMessage")
	defer release()
	_, err = c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: 1}, Text: "x"})
	if ClassOf(err) != ClassRetryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v (class %v)", err, ClassOf(err))
	}
}

func TestDelete(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	ctx := context.Background()
	target := otpbot.Target{ChatID: 77}
	id, err := c.Send(ctx, OutMessage{Target: target, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, target, id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n := len(s.Messages(77)); n != 0 {
		t.Fatalf("%d messages after delete", n)
	}
	// Gone already: deleted.
	if err := c.Delete(ctx, target, id); err != nil {
		t.Fatalf("delete of a deleted message: %v", err)
	}
	s.FailNext("deleteMessage", 1, 400, "Bad Request: message can't be deleted for everyone", 0)
	if err := c.Delete(ctx, target, id); !CannotDelete(err) {
		t.Fatalf("CannotDelete(%v) = false", err)
	}
	if CannotDelete(errors.New("x")) || CannotDelete(nil) {
		t.Fatal("CannotDelete of other errors")
	}
}

func TestMigratedGroupError(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	s.Migrate(-4001, -1004001)
	_, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: -4001}, Text: "x"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Class != ClassMigrated || ae.MigrateTo != -1004001 {
		t.Fatalf("err %+v", err)
	}
}

// An outage page from Telegram's front end (HTML, not the Bot API's JSON)
// is a retryable failure that names its HTTP status, not a decoding error.
func TestClientHTMLErrorPageNamesItsStatus(t *testing.T) {
	tg := bottest.New(t)
	c := newTestClient(t, tg, nil)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
	}))
	defer page.Close()
	c.base.SetAPIEndpoint(page.URL + "/bot%s/%s")
	_, err := c.Send(context.Background(), OutMessage{Target: otpbot.Target{ChatID: 1}, Text: "hi"})
	if err == nil || !strings.Contains(err.Error(), "telegram sendMessage: 502 Bad Gateway (HTML)") {
		t.Fatalf("err = %v, want it to name the 502 and the HTML page", err)
	}
	if ClassOf(err) != ClassRetryable {
		t.Fatalf("class %v, want retryable", ClassOf(err))
	}
}
