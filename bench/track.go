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

// startFake starts a fake Bot API accepting the bench token; limits (0 =
// none) are Telegram's flood limits, enforced with real 429s.
func startFake(globalPerSec, perChatPerSec int) (*fakeAPI, error) {
	st, err := bottest.Start(bottest.WithToken(benchToken), bottest.WithLimits(globalPerSec, perChatPerSec))
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

// tracker matches the sendMessage calls the fake receives to the pushes
// that caused them, by the code in the message, and counts the calls.
type tracker struct {
	mu      sync.Mutex
	pending map[string]time.Time // code → when its push was sent
	e2e     samples
	matched atomic.Int64

	sendsOK, sends429, editsOK, edits429, other atomic.Int64
}

func newTracker() *tracker { return &tracker{pending: map[string]time.Time{}} }

// expect registers a push of code sent at `at`: its first accepted
// sendMessage ends its end-to-end latency.
func (t *tracker) expect(code string, at time.Time) {
	t.mu.Lock()
	t.pending[code] = at
	t.mu.Unlock()
}

func (t *tracker) observe(o bottest.Observation) {
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
	if code == "" {
		return
	}
	t.mu.Lock()
	at, ok := t.pending[code]
	if ok {
		delete(t.pending, code)
	}
	t.mu.Unlock()
	if ok {
		t.e2e.add(o.Received.Sub(at))
		t.matched.Add(1)
	}
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
