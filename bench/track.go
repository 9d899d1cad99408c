package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
)

// fakeAPI is the fake Bot API of one scenario, with the tracker of the
// phase being measured.
type fakeAPI struct {
	*bottest.Standalone
	deleteWebhooks atomic.Int64 // an otpbot's delivery workers run once it called this
	cur            atomic.Pointer[tracker]
}

// startFake starts a fake Bot API accepting the bench token, with opts
// (its round trip, Telegram's limits).
func startFake(opts ...bottest.Option) (*fakeAPI, error) {
	st, err := bottest.Start(append([]bottest.Option{bottest.WithToken(benchToken)}, opts...)...)
	if err != nil {
		return nil, err
	}
	f := &fakeAPI{Standalone: st}
	st.Observe(f.observe)
	return f, nil
}

func (f *fakeAPI) observe(o bottest.Observation) {
	if o.Method == "deleteWebhook" {
		f.deleteWebhooks.Add(1)
	}
	if t := f.cur.Load(); t != nil {
		t.observe(o)
	}
}

// track starts a new measured phase and returns its tracker.
func (f *fakeAPI) track() *tracker {
	t := newTracker()
	f.cur.Store(t)
	return t
}

// keep makes the tracker keep every accepted sendMessage (sentMessages).
func (t *tracker) keep() {
	t.mu.Lock()
	t.keepSent = true
	t.mu.Unlock()
}

// tracker matches the sendMessage calls the fake receives to the pushes
// that caused them, by the code in the message, and to the commands
// injected, by chat; it counts the calls.
type tracker struct {
	mu      sync.Mutex
	pending map[string]time.Time // code → when its push was sent
	// e2e ends when otpbot's sendMessage reached the fake (it left
	// otpbot), appear when the fake acted on it (the message exists).
	e2e, appear samples
	matched     atomic.Int64
	expected    atomic.Int64
	// commands maps a chat to when a command was injected there; replies
	// are the command → reply-appears latencies.
	commands map[int64]time.Time
	replies  samples
	replied  atomic.Int64
	// sent, when keepSent is set, is every accepted sendMessage.
	keepSent bool
	sent     []sentMessage

	sendsOK, sends429, editsOK, edits429, other atomic.Int64
	// counted are the calls that count against Telegram's limits (see
	// bottest.Limits), counted429 those answered 429; down the calls of
	// any method answered 5xx (an outage).
	counted, counted429, down atomic.Int64
}

// sentMessage is one accepted sendMessage: its chat, the code it shows
// ("" for none) and when the fake acted on it.
type sentMessage struct {
	Chat  int64
	Code  string
	Acted time.Time
}

func newTracker() *tracker {
	return &tracker{pending: map[string]time.Time{}, commands: map[int64]time.Time{}}
}

// expect registers a push of code sent at `at`: its first accepted
// sendMessage ends its end-to-end latency.
func (t *tracker) expect(code string, at time.Time) {
	t.mu.Lock()
	t.pending[code] = at
	t.mu.Unlock()
	t.expected.Add(1)
}

// expectReply registers a command injected in chat at `at`: the first
// sendMessage the fake accepts in that chat is its reply.
func (t *tracker) expectReply(chat int64, at time.Time) {
	t.mu.Lock()
	t.commands[chat] = at
	t.mu.Unlock()
}

// backlog is how many expected codes were not sent yet.
func (t *tracker) backlog() int64 { return t.expected.Load() - t.matched.Load() }

// countedMethods are the methods Telegram's limits count (bottest.Limits).
var countedMethods = map[string]bool{
	"sendMessage": true, "editMessageText": true, "editMessageReplyMarkup": true,
	"deleteMessage": true, "answerCallbackQuery": true,
}

func (t *tracker) observe(o bottest.Observation) {
	if o.Status >= 500 {
		t.down.Add(1)
	}
	if countedMethods[o.Method] {
		t.counted.Add(1)
		if o.Status == 429 {
			t.counted429.Add(1)
		}
	}
	switch o.Method {
	case "sendMessage":
		switch o.Status {
		case 200:
			t.sendsOK.Add(1)
		case 429:
			t.sends429.Add(1)
			return
		default:
			t.other.Add(1)
			return
		}
	case "editMessageText", "editMessageReplyMarkup":
		switch o.Status {
		case 200:
			t.editsOK.Add(1)
		case 429:
			t.edits429.Add(1)
		default:
			t.other.Add(1)
		}
		return
	default:
		return
	}
	code := codeIn(o.Text)
	t.mu.Lock()
	if t.keepSent {
		t.sent = append(t.sent, sentMessage{Chat: o.ChatID, Code: code, Acted: o.Acted})
	}
	cmdAt, isReply := t.commands[o.ChatID]
	if isReply {
		delete(t.commands, o.ChatID)
	}
	at, ok := t.pending[code]
	if ok && code != "" {
		delete(t.pending, code)
	}
	t.mu.Unlock()
	if isReply {
		t.replies.add(o.Acted.Sub(cmdAt))
		t.replied.Add(1)
	}
	if ok && code != "" {
		t.e2e.add(o.Received.Sub(at))
		t.appear.add(o.Acted.Sub(at))
		t.matched.Add(1)
	}
}

// sentMessages returns the accepted sendMessage calls kept (keepSent).
func (t *tracker) sentMessages() []sentMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]sentMessage(nil), t.sent...)
}

// codeIn returns the code a code message shows in its <code> element.
func codeIn(text string) string {
	_, rest, ok := strings.Cut(text, "<code>")
	if !ok {
		return ""
	}
	code, _, ok := strings.Cut(rest, "</code>")
	if !ok {
		return ""
	}
	return code
}

// waitFor polls cond every 10ms until it holds or timeout passes; it
// reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
