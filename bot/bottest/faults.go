package bottest

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

type fault struct {
	n          int
	code       int
	desc       string
	retryAfter int
}

// FailNext makes the next n calls of method answer code with description
// (and parameters.retry_after when retryAfter > 0). Faults queue up.
func (s *Server) FailNext(method string, n, code int, description string, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{n: n, code: code, desc: description, retryAfter: retryAfter})
}

// SetDown makes every call fail until SetUp: with code, or, with code 0,
// by dropping the connection without an answer. 502, 503 and 504 are
// answered the way Telegram's nginx front end answers them when the Bot
// API behind it is away: that status with nginx's HTML page (text/html),
// not the Bot API's JSON envelope. Any other code gets the JSON envelope
// with that error_code. Calls are recorded with code as their Code.
func (s *Server) SetDown(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.downSet = code, true
}

// SetUp ends an outage started by SetDown.
func (s *Server) SetUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.downSet = 0, false
	s.notify()
}

// SetLatency makes every call but getUpdates take at least d before it
// is answered (and acted on), like a slow network; 0 restores.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hold makes calls of method wait, unanswered and not yet acted on, until
// release is called: a test can then act while a call is in flight. A
// held call whose client gives up (its context ends) is dropped without
// being acted on.
func (s *Server) Hold(method string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.holds[method] = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.holds[method] == ch {
				delete(s.holds, method)
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Waiting counts the calls of method being held by Hold.
func (s *Server) Waiting(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[method]
}

// Block makes chatID answer 403 "Forbidden: bot was blocked by the user"
// to sends and edits.
func (s *Server) Block(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat(chatID).blocked = true
}

// Migrate makes chatID a group that was upgraded to the supergroup to:
// sends and edits there answer 400 "group chat was upgraded to a
// supergroup chat" with parameters.migrate_to_chat_id, as Telegram does.
func (s *Server) Migrate(chatID, to int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat(chatID).migratedTo = to
}

func migrated(c *chat) *apiError {
	if c.migratedTo == 0 {
		return nil
	}
	return &apiError{code: 400, desc: "Bad Request: group chat was upgraded to a supergroup chat", migrateTo: c.migratedTo}
}

// Unblock undoes Block.
func (s *Server) Unblock(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat(chatID).blocked = false
}

// takeFault consumes an injected failure of method; s.mu must be held.
func (s *Server) takeFault(method string) *apiError {
	q := s.faults[method]
	if len(q) == 0 {
		return nil
	}
	f := q[0]
	f.n--
	if f.n <= 0 {
		s.faults[method] = q[1:]
	}
	return &apiError{code: f.code, desc: f.desc, retryAfter: f.retryAfter}
}

// nginxPages are the bodies nginx answers with when its upstream fails.
var nginxPages = map[int]string{
	502: "502 Bad Gateway",
	503: "503 Service Temporarily Unavailable",
	504: "504 Gateway Time-out",
}

// outage is the answer to a call while the server is down with code.
func outage(code int) *apiError {
	title, ok := nginxPages[code]
	if !ok {
		return &apiError{code: code, desc: http.StatusText(code)}
	}
	page := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
	return &apiError{code: code, desc: title, page: page}
}

// writeHTML answers an nginx error page.
func writeHTML(w http.ResponseWriter, code int, page string) {
	w.Header().Set("Server", "nginx/1.18.0")
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, page)
}
