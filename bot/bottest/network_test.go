package bottest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
)

// A call with a round trip is acted on once it reaches Telegram, half way:
// the message exists while the call is still unanswered, and a client that
// gives up then leaves a message it never heard about.
func TestRoundTripActsBeforeItAnswers(t *testing.T) {
	s := bottest.New(t, bottest.WithRoundTrip(4*time.Second, 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: time.Minute}
	answered := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/bot"+token+"/sendMessage",
			strings.NewReader(url.Values{"chat_id": {"1"}, "text": {"code 1234"}}.Encode()))
		if err != nil {
			answered <- err
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	s.WaitFor(t, func() bool { return len(s.Messages(1)) == 1 })
	select {
	case err := <-answered:
		t.Fatalf("the call was answered (%v) as soon as the message existed, not half a round trip later", err)
	default:
	}
	cancel() // the client dies mid-call
	if err := <-answered; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	if m := s.Messages(1); len(m) != 1 || m[0].Text != "code 1234" {
		t.Fatalf("messages after the client gave up: %+v", m)
	}
}

// The round trip is mean ± jitter, split in two halves around the moment
// the fake acts. Only lower bounds are asserted: a loaded machine only
// makes things slower.
func TestRoundTripDelaysBothWays(t *testing.T) {
	const mean, jitter = 300 * time.Millisecond, 100 * time.Millisecond
	s := bottest.New(t)
	b := newBot(t, s) // getMe without the round trip
	s.SetRoundTrip(mean, jitter)
	for i := range 3 {
		start := time.Now()
		if _, err := b.Send(tgbotapi.NewMessage(1, "hello")); err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		m := s.Messages(1)[i]
		if took := done.Sub(start); took < mean-jitter {
			t.Errorf("call %d took %s, want at least %s", i, took, mean-jitter)
		}
		if there := m.SentAt.Sub(start); there < (mean-jitter)/2 {
			t.Errorf("call %d acted on %s after it left, want at least %s", i, there, (mean-jitter)/2)
		}
		if back := done.Sub(m.SentAt); back < (mean-jitter)/2 {
			t.Errorf("call %d answered %s after it was acted on, want at least %s", i, back, (mean-jitter)/2)
		}
	}
	s.SetRoundTrip(0, 0)
	if _, err := b.Send(tgbotapi.NewMessage(1, "again")); err != nil {
		t.Fatal(err)
	}
}

// An outage answers the way Telegram's nginx front end does: 502, 503 and
// 504 with its HTML page, other codes with the JSON envelope, code 0 by
// dropping the connection. Nothing is acted on meanwhile.
func TestOutageAnswersLikeTheFrontEnd(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		ctype     string
		bodyStart string
	}{
		{"502", 502, "text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"},
		{"504", 504, "text/html", "<html>\r\n<head><title>504 Gateway Time-out</title></head>"},
		{"503", 503, "text/html", "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>"},
		{"500 is the Bot API's own", 500, "application/json", `{"description":"Internal Server Error","error_code":500,"ok":false}`},
		{"connection dropped", 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bottest.New(t)
			s.SetDown(tc.code)
			resp, err := http.PostForm(s.URL()+"/bot"+token+"/sendMessage", url.Values{"chat_id": {"1"}, "text": {"x"}})
			if tc.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("dropped connection answered %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.ctype || !strings.HasPrefix(string(body), tc.bodyStart) {
				t.Fatalf("answer %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if tc.ctype == "text/html" && !strings.HasSuffix(string(body), "</html>\r\n") {
				t.Fatalf("page not complete: %q", body)
			}
			if calls := s.Calls("sendMessage"); len(calls) != 1 || calls[0].Code != tc.code {
				t.Fatalf("recorded %+v", calls)
			}
			if n := s.MessageCount(); n != 0 {
				t.Fatalf("%d messages sent during the outage", n)
			}
			s.SetUp()
			resp, err = http.PostForm(s.URL()+"/bot"+token+"/sendMessage", url.Values{"chat_id": {"1"}, "text": {"x"}})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("after SetUp: %v %v", resp, err)
			}
			resp.Body.Close()
		})
	}
}
