package bottest

import (
	"testing"
	"time"
)

// Calls returns the recorded calls of method ("" for all), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, copyCall(c))
		}
	}
	return out
}

func copyCall(c Call) Call {
	p := make(map[string]string, len(c.Params))
	for k, v := range c.Params {
		p[k] = v
	}
	c.Params = p
	return c
}

// Messages returns the bot's messages in a chat that were not deleted, in
// the order they were sent, each in its current state.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	var out []Message
	for _, id := range c.order {
		if m, ok := c.msgs[id]; ok {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Message returns one message of the bot in its current state.
func (s *Server) Message(chatID int64, messageID int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		if m, ok := c.msgs[messageID]; ok {
			return copyMessage(m), true
		}
	}
	return Message{}, false
}

// MessageCount counts the messages the bot sent to all chats, deleted ones
// included.
func (s *Server) MessageCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.chats {
		n += len(c.order)
	}
	return n
}

func copyMessage(m *Message) Message {
	out := *m
	if m.Buttons != nil {
		out.Buttons = make([][]Button, len(m.Buttons))
		for i, r := range m.Buttons {
			out.Buttons[i] = append([]Button(nil), r...)
		}
	}
	return out
}

// Count429 is how many 429 answers the server gave (flood limits and
// injected faults).
func (s *Server) Count429() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count429
}

// ForgetCalls drops the recorded calls (Calls returns only later ones)
// and the times MaxCallsPerWindow counts, so that a long run does not
// keep every request in memory and a measured phase counts alone.
// Messages and Count429 are kept.
func (s *Server) ForgetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.counted = nil
	s.forgets++
}

// WebhookURL returns the URL and secret token of the current webhook.
func (s *Server) WebhookURL() (url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook, s.secret
}

// PendingUpdates counts injected updates not yet confirmed by an offset
// (or delivered to the webhook).
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// WaitFor polls cond every 5ms until it is true, failing the test after
// the server's wait timeout (10s by default).
func (s *Server) WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(s.waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("bottest: condition not met within %s", s.waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
