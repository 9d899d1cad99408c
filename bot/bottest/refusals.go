package bottest

import (
	"strings"
	"testing"
)

// checkSchema checks the call recorded at s.calls[idx] against the
// published Bot API (see schema.check) and, when the schema refuses it,
// records why and returns the answer; s.mu must be held.
//
// The check is always on: a bot that relies on a parameter Telegram has
// removed (or never had) breaks silently the day Telegram stops accepting
// it, and every test that talks to the fake then shows it at once.
func (s *Server) checkSchema(idx int, method string, params map[string]string) *apiError {
	aerr := s.schema.check(method, params)
	if aerr == nil {
		return nil
	}
	s.calls[idx].Refusal = aerr.desc
	s.calls[idx].Code = aerr.code
	s.refused = append(s.refused, copyCall(s.calls[idx]))
	return aerr
}

// TakeRefused returns the calls the schema check refused since the last
// TakeRefused, oldest first, and forgets them. A test that sends a
// malformed request on purpose takes its refusals; any left untaken fail
// the test when it ends (see New), so that no request the bot makes is
// refused unnoticed, even where the bot shrugs off a 400.
func (s *Server) TakeRefused() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.refused
	s.refused = nil
	return out
}

// SchemaVersion is the Bot API version the calls are checked against,
// e.g. "Bot API 10.1".
func (s *Server) SchemaVersion() string { return s.schema.version }

// reportRefused fails t with every refusal no test took.
func (s *Server) reportRefused(t testing.TB) {
	refused := s.TakeRefused()
	if len(refused) == 0 {
		return
	}
	var b strings.Builder
	for _, c := range refused {
		b.WriteString("\n\t" + c.Method + ": " + c.Refusal)
	}
	t.Errorf("bottest: %d request(s) refused by the %s schema check, not taken by the test (TakeRefused):%s",
		len(refused), s.schema.version, b.String())
}
