// Package bottest is a fake Telegram Bot API for tests: an httptest server
// that speaks the real envelope ({"ok":true,"result":...} and errors with
// error_code, description and parameters.retry_after), so that otpbot is
// tested through the real telegram-bot-api library.
//
// It keeps each chat's messages (with per-chat incrementing ids) in their
// current state, records every call, lets a test inject commands and button
// presses (long polling blocks until one arrives; with a webhook set they are
// POSTed to it) and faults (failures of the next calls, an outage, a blocked
// chat).
//
// Every request is checked against the Bot API's published schema (see
// schema.go and testdata/README.md) and refused, as a strict Telegram
// would, when it uses a method, parameter or field the current Bot API
// does not define, or leaves out a required one; a refusal the test does
// not take (TakeRefused) fails the test.
//
// By default it answers at once and limits nothing, so that a test sees
// only what it asks for. Opt in to behave like the real Telegram:
// WithRoundTrip (a network round trip, acted on half way),
// WithTelegramLimits(RealLimits()) (flood limits as token buckets with
// bursts, answered with real 429s), and SetDown(502) (nginx's HTML error
// page, as Telegram's front end answers when the Bot API is away).
// Start runs the same server outside a test.
package bottest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// BotID and BotUsername describe the bot that getMe returns.
const (
	BotID       int64 = 7000000001
	BotUsername       = "otpbot_test_bot"
)

// Call is one recorded Bot API request.
type Call struct {
	Method string
	// Params are the request's parameters (form, query or JSON values;
	// JSON objects and arrays as their JSON text).
	Params map[string]string
	Time   time.Time
	// Code is the error_code answered, 0 for success.
	Code int
	// Refusal is why the Bot API schema check refused the call (the
	// description answered), "" when the call passed it (see schema.go).
	Refusal string
}

// Button is an inline keyboard button as Telegram stored it.
type Button struct {
	Text     string
	Data     string
	URL      string
	CopyText string
}

// Message is a message the bot sent, in its current state.
type Message struct {
	ChatID    int64
	ID        int
	ThreadID  int
	Text      string
	ParseMode string
	// Buttons is the current inline keyboard, nil when there is none.
	Buttons [][]Button
	Protect bool
	ReplyTo int
	// Edits counts the edits Telegram accepted (text or keyboard).
	Edits    int
	SentAt   time.Time
	EditedAt time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithToken makes the server accept only this token (401 otherwise).
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithWaitTimeout changes WaitFor's deadline (default 10s).
func WithWaitTimeout(d time.Duration) Option { return func(s *Server) { s.waitTimeout = d } }

// Server is the fake Bot API. All methods are safe for concurrent use.
type Server struct {
	srv         *httptest.Server
	token       string
	waitTimeout time.Duration

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every state change
	closing  chan struct{}
	calls    []Call
	chats    map[int64]*chat
	updates  []json.RawMessage // pending, oldest first
	updateID int
	faults   map[string][]*fault
	down     int
	downSet  bool
	webhook  string
	secret   string
	cbSeq    int
	latency  time.Duration
	holds    map[string]chan struct{}
	held     map[string]int
	count429 int
	// forgets counts ForgetCalls, so that a long poll answered after one
	// does not write into the new record.
	forgets int
	// trip is the simulated network (see WithRoundTrip).
	trip roundTrip
	// flood control state (see limits.go)
	limits      Limits
	global      *rate.Limiter
	globalUntil time.Time
	// counted are the times of the accepted calls that count against the
	// limits, oldest first (MaxCallsPerWindow).
	counted []time.Time
	// schema is the published Bot API the calls are checked against;
	// refused are the calls it refused that no test has taken yet
	// (TakeRefused), kept through ForgetCalls.
	schema  *schema
	refused []Call
}

type chat struct {
	id      int64
	typ     string
	nextID  int
	msgs    map[int]*Message
	order   []int
	blocked bool
	// migratedTo is the supergroup this group became (see Migrate).
	migratedTo int64
	// bucket and groupBucket are the chat's flood buckets (nil: not yet
	// used, or no such limit); until ends a 429 penalty in the chat.
	bucket      *rate.Limiter
	groupBucket *rate.Limiter
	until       time.Time
	userMsgs    int
}

// New starts a fake Bot API server, closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		waitTimeout: 10 * time.Second,
		changed:     make(chan struct{}),
		closing:     make(chan struct{}),
		chats:       map[int64]*chat{},
		faults:      map[string][]*fault{},
		holds:       map[string]chan struct{}{},
		held:        map[string]int{},
		updateID:    100,
	}
	sc, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	s.schema = sc
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	go s.pushWebhooks()
	t.Cleanup(s.Close)
	t.Cleanup(func() { s.reportRefused(t) })
	return s
}

// Close stops the server, releasing blocked long polls first. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return
	default:
	}
	close(s.closing)
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Endpoint is the URL pattern for telegram-bot-api ("http://host/bot%s/%s").
func (s *Server) Endpoint() string { return s.srv.URL + "/bot%s/%s" }

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// notify wakes everything waiting for a change; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) chat(id int64) *chat {
	c := s.chats[id]
	if c == nil {
		typ := "private"
		if id < 0 {
			typ = "supergroup"
		}
		c = &chat{id: id, typ: typ, msgs: map[int]*Message{}}
		s.chats[id] = c
	}
	return c
}
