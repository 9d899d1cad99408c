// Package bottest is a fake Telegram Bot API for tests: an httptest server
// that speaks the real envelope ({"ok":true,"result":...} and errors with
// error_code, description and parameters.retry_after), so that otpbot is
// tested through the real telegram-bot-api library.
//
// It keeps each chat's messages (with per-chat incrementing ids) in their
// current state, records every call, lets a test inject commands and button
// presses (long polling blocks until one arrives; with a webhook set they are
// POSTed to it) and faults (failures of the next calls, an outage, a blocked
// chat, Telegram's rate limits answered with real 429s).
package bottest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// WithLimits makes the server enforce Telegram's flood limits on sends and
// edits: at most globalPerSec calls per second overall and perChatPerSec
// per chat (0 = no limit). Beyond them it answers 429 with retry_after and,
// like Telegram, keeps answering 429 in that scope until the wait is over.
func WithLimits(globalPerSec, perChatPerSec int) Option {
	return func(s *Server) { s.globalLimit, s.chatLimit = globalPerSec, perChatPerSec }
}

// SetLimits changes the flood limits of WithLimits while the server runs
// (0 = no limit), e.g. after a test has set the scene without them.
func (s *Server) SetLimits(globalPerSec, perChatPerSec int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.globalLimit, s.chatLimit = globalPerSec, perChatPerSec
}

// WithToken makes the server accept only this token (401 otherwise).
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithWaitTimeout changes WaitFor's deadline (default 10s).
func WithWaitTimeout(d time.Duration) Option { return func(s *Server) { s.waitTimeout = d } }

type fault struct {
	n          int
	code       int
	desc       string
	retryAfter int
}

// Server is the fake Bot API. All methods are safe for concurrent use.
type Server struct {
	srv         *httptest.Server
	token       string
	waitTimeout time.Duration
	globalLimit int
	chatLimit   int

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
	// flood control state
	globalHits  []time.Time
	globalUntil time.Time
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
	hits       []time.Time
	until      time.Time
	userMsgs   int
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
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	go s.pushWebhooks()
	t.Cleanup(s.Close)
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

// --- inspection ---

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

// --- faults ---

// FailNext makes the next n calls of method answer code with description
// (and parameters.retry_after when retryAfter > 0). Faults queue up.
func (s *Server) FailNext(method string, n, code int, description string, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{n: n, code: code, desc: description, retryAfter: retryAfter})
}

// SetDown makes every call fail until SetUp: with code (502 "Bad Gateway",
// say), or, with code 0, by dropping the connection without an answer.
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

// --- update injection ---

// UpdateOption refines an injected message.
type UpdateOption func(*updateOpts)

type updateOpts struct {
	thread   int
	chatType string
	username string
}

// InThread puts the message in a forum topic.
func InThread(threadID int) UpdateOption { return func(o *updateOpts) { o.thread = threadID } }

// ChatType sets the chat's type ("private", "group", "supergroup"). By
// default a positive chat id is private and a negative one a supergroup.
func ChatType(typ string) UpdateOption { return func(o *updateOpts) { o.chatType = typ } }

// FromUsername sets the sender's username (default "user<ID>").
func FromUsername(name string) UpdateOption { return func(o *updateOpts) { o.username = name } }

type jsonUser struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	UserName  string `json:"username,omitempty"`
}

type jsonChat struct {
	ID      int64  `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title,omitempty"`
	IsForum bool   `json:"is_forum,omitempty"`
}

type jsonEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

type jsonCopyText struct {
	Text string `json:"text"`
}

type jsonButton struct {
	Text         string        `json:"text"`
	CallbackData string        `json:"callback_data,omitempty"`
	URL          string        `json:"url,omitempty"`
	CopyText     *jsonCopyText `json:"copy_text,omitempty"`
}

type jsonMarkup struct {
	InlineKeyboard [][]jsonButton `json:"inline_keyboard"`
}

type jsonMessage struct {
	MessageID      int          `json:"message_id"`
	ThreadID       int          `json:"message_thread_id,omitempty"`
	IsTopic        bool         `json:"is_topic_message,omitempty"`
	From           *jsonUser    `json:"from,omitempty"`
	Date           int64        `json:"date"`
	EditDate       int64        `json:"edit_date,omitempty"`
	Chat           jsonChat     `json:"chat"`
	Text           string       `json:"text,omitempty"`
	Entities       []jsonEntity `json:"entities,omitempty"`
	ReplyMarkup    *jsonMarkup  `json:"reply_markup,omitempty"`
	HasProtected   bool         `json:"has_protected_content,omitempty"`
	ReplyToMessage *jsonMessage `json:"reply_to_message,omitempty"`
}

func user(id int64, username string) *jsonUser {
	if username == "" {
		username = "user" + strconv.FormatInt(id, 10)
	}
	return &jsonUser{ID: id, FirstName: "User " + strconv.FormatInt(id, 10), UserName: username}
}

func (c *chat) json(forum bool) jsonChat {
	jc := jsonChat{ID: c.id, Type: c.typ, IsForum: forum}
	if c.typ != "private" {
		jc.Title = "Chat " + strconv.FormatInt(c.id, 10)
	}
	return jc
}

// SendCommand injects a text message from userID in chatID, as an update.
// A leading "/word" (or "/word@bot") gets a bot_command entity, as
// Telegram marks commands. It returns the message's id.
func (s *Server) SendCommand(chatID, userID int64, text string, opts ...UpdateOption) int {
	var o updateOpts
	for _, f := range opts {
		f(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(chatID)
	if o.chatType != "" {
		c.typ = o.chatType
	}
	c.nextID++
	c.userMsgs++
	m := jsonMessage{
		MessageID: c.nextID,
		From:      user(userID, o.username),
		Date:      time.Now().Unix(),
		Chat:      c.json(o.thread != 0),
		Text:      text,
	}
	if o.thread != 0 {
		m.ThreadID, m.IsTopic = o.thread, true
	}
	if strings.HasPrefix(text, "/") {
		word, _, _ := strings.Cut(text, " ")
		m.Entities = []jsonEntity{{Type: "bot_command", Offset: 0, Length: utf16Len(word)}}
	}
	s.addUpdate(map[string]any{"message": m})
	return m.MessageID
}

// PressButton injects a callback query: userID pressed the button with
// callback data data under the bot's message messageID in chatID. It
// returns the callback query id.
func (s *Server) PressButton(chatID, userID int64, messageID int, data string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(chatID)
	s.cbSeq++
	id := "cb" + strconv.Itoa(s.cbSeq)
	var msg jsonMessage
	if m, ok := c.msgs[messageID]; ok {
		msg = s.render(c, m)
	} else {
		msg = jsonMessage{MessageID: messageID, Chat: c.json(false), Date: time.Now().Unix()}
	}
	s.addUpdate(map[string]any{"callback_query": map[string]any{
		"id":            id,
		"from":          user(userID, ""),
		"message":       msg,
		"chat_instance": "ci" + strconv.FormatInt(chatID, 10),
		"data":          data,
	}})
	return id
}

// addUpdate queues an update; s.mu must be held.
func (s *Server) addUpdate(u map[string]any) {
	s.updateID++
	u["update_id"] = s.updateID
	data, err := json.Marshal(u)
	if err != nil {
		panic(err) // our own types always marshal
	}
	s.updates = append(s.updates, data)
	s.notify()
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// pushWebhooks POSTs pending updates to the webhook while one is set,
// in order, retrying an update until the receiver answers 2xx.
func (s *Server) pushWebhooks() {
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		s.mu.Lock()
		wait := s.changed
		hook, secret := s.webhook, s.secret
		var next json.RawMessage
		if hook != "" && len(s.updates) > 0 {
			next = s.updates[0]
		}
		s.mu.Unlock()
		if next == nil {
			select {
			case <-wait:
				continue
			case <-s.closing:
				return
			}
		}
		req, err := http.NewRequest(http.MethodPost, hook, bytes.NewReader(next))
		ok := false
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			if secret != "" {
				req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
			}
			if resp, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode/100 == 2
			}
		}
		s.mu.Lock()
		if ok && len(s.updates) > 0 && bytes.Equal(s.updates[0], next) {
			s.updates = s.updates[1:]
			s.notify()
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-s.closing:
				return
			}
		}
	}
}

// --- the API ---

type apiError struct {
	code       int
	desc       string
	retryAfter int
	migrateTo  int64
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	token, method, ok := parsePath(r.URL.Path)
	if !ok {
		writeJSON(w, 404, map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
		return
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, 400, map[string]any{"ok": false, "error_code": 400, "description": "Bad Request: " + err.Error()})
		return
	}
	s.mu.Lock()
	latency := s.latency
	hold := s.holds[method]
	if hold != nil {
		s.held[method]++
	}
	s.mu.Unlock()
	if hold != nil {
		gone := false
		select {
		case <-hold:
		case <-s.closing:
		case <-r.Context().Done():
			// The client gave up (a cut-off call): the request is never
			// acted on, as if it had not reached Telegram.
			gone = true
		}
		s.mu.Lock()
		s.held[method]--
		s.notify()
		s.mu.Unlock()
		if gone {
			return
		}
	}
	if latency > 0 && method != "getUpdates" {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	s.mu.Lock()
	call := Call{Method: method, Params: params, Time: time.Now()}
	idx := len(s.calls)
	s.calls = append(s.calls, call)
	var result any
	var aerr *apiError
	drop := false
	switch {
	case s.token != "" && token != s.token:
		aerr = &apiError{code: 401, desc: "Unauthorized"}
	case s.downSet && s.down == 0:
		drop = true
	case s.downSet:
		aerr = &apiError{code: s.down, desc: http.StatusText(s.down)}
	default:
		aerr = s.takeFault(method)
	}
	if aerr == nil && !drop {
		if method == "getUpdates" {
			s.mu.Unlock()
			result, aerr = s.getUpdates(r.Context(), params)
			s.mu.Lock()
		} else {
			result, aerr = s.dispatch(method, params)
		}
	}
	if aerr != nil {
		s.calls[idx].Code = aerr.code
		if aerr.code == 429 {
			s.count429++
		}
	}
	s.notify()
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		writeJSON(w, 502, map[string]any{"ok": false, "error_code": 502, "description": "Bad Gateway"})
		return
	}
	if aerr != nil {
		body := map[string]any{"ok": false, "error_code": aerr.code, "description": aerr.desc}
		if aerr.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": aerr.retryAfter}
		}
		if aerr.migrateTo != 0 {
			body["parameters"] = map[string]any{"migrate_to_chat_id": aerr.migrateTo}
		}
		writeJSON(w, aerr.code, body)
		return
	}
	writeJSON(w, 200, map[string]any{"ok": true, "result": result})
}

func parsePath(p string) (token, method string, ok bool) {
	rest, found := strings.CutPrefix(p, "/bot")
	if !found {
		return "", "", false
	}
	token, method, ok = strings.Cut(rest, "/")
	return token, method, ok && method != ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readParams merges query, form and JSON body parameters, as Telegram
// accepts all three.
func readParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil && err != io.EOF {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else {
				out[k] = string(v)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			out[k] = v[0]
		}
	default:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			out[k] = v[0]
		}
	}
	return out, nil
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

func (s *Server) dispatch(method string, p map[string]string) (any, *apiError) {
	switch method {
	case "getMe":
		return map[string]any{"id": BotID, "is_bot": true, "first_name": "otpbot test", "username": BotUsername,
			"can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false}, nil
	case "sendMessage":
		return s.sendMessage(p)
	case "editMessageText", "editMessageReplyMarkup":
		return s.editMessage(method, p)
	case "deleteMessage":
		c, m, aerr := s.target(p)
		if aerr != nil {
			return nil, aerr
		}
		if m == nil {
			return nil, &apiError{code: 400, desc: "Bad Request: message to delete not found"}
		}
		delete(c.msgs, m.ID)
		return true, nil
	case "answerCallbackQuery":
		if p["callback_query_id"] == "" {
			return nil, &apiError{code: 400, desc: "Bad Request: query is too old and response timeout expired or query ID is invalid"}
		}
		return true, nil
	case "setWebhook":
		if p["url"] == "" {
			s.webhook, s.secret = "", ""
			return true, nil
		}
		if _, err := url.ParseRequestURI(p["url"]); err != nil {
			return nil, &apiError{code: 400, desc: "Bad Request: bad webhook: invalid URL"}
		}
		s.webhook, s.secret = p["url"], p["secret_token"]
		return true, nil
	case "deleteWebhook":
		s.webhook, s.secret = "", ""
		if p["drop_pending_updates"] == "true" {
			s.updates = nil
		}
		return true, nil
	case "getWebhookInfo":
		return map[string]any{"url": s.webhook, "has_custom_certificate": false, "pending_update_count": len(s.updates)}, nil
	case "setMyCommands", "deleteMyCommands":
		return true, nil
	}
	return nil, &apiError{code: 404, desc: "Not Found: method not found"}
}

// target resolves chat_id and message_id; s.mu must be held.
func (s *Server) target(p map[string]string) (*chat, *Message, *apiError) {
	id, err := strconv.ParseInt(p["chat_id"], 10, 64)
	if err != nil || id == 0 {
		return nil, nil, &apiError{code: 400, desc: "Bad Request: chat not found"}
	}
	c := s.chat(id)
	if p["message_id"] == "" {
		return c, nil, nil
	}
	mid, err := strconv.Atoi(p["message_id"])
	if err != nil {
		return nil, nil, &apiError{code: 400, desc: "Bad Request: message identifier is not specified"}
	}
	return c, c.msgs[mid], nil
}

// flood applies the configured limits to a call in chat c; s.mu must be held.
func (s *Server) flood(c *chat) *apiError {
	now := time.Now()
	if s.globalLimit > 0 {
		if now.Before(s.globalUntil) {
			return tooMany(s.globalUntil.Sub(now))
		}
		s.globalHits = trim(s.globalHits, now)
		if len(s.globalHits) >= s.globalLimit {
			s.globalUntil = s.globalHits[0].Add(time.Second)
			return tooMany(s.globalUntil.Sub(now))
		}
	}
	if s.chatLimit > 0 {
		if now.Before(c.until) {
			return tooMany(c.until.Sub(now))
		}
		c.hits = trim(c.hits, now)
		if len(c.hits) >= s.chatLimit {
			c.until = c.hits[0].Add(time.Second)
			return tooMany(c.until.Sub(now))
		}
	}
	if s.globalLimit > 0 {
		s.globalHits = append(s.globalHits, now)
	}
	if s.chatLimit > 0 {
		c.hits = append(c.hits, now)
	}
	return nil
}

// trim drops hits older than a second.
func trim(hits []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(hits) && now.Sub(hits[i]) >= time.Second {
		i++
	}
	return hits[i:]
}

func tooMany(wait time.Duration) *apiError {
	secs := int((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &apiError{code: 429, desc: "Too Many Requests: retry after " + strconv.Itoa(secs), retryAfter: secs}
}

func (s *Server) sendMessage(p map[string]string) (any, *apiError) {
	c, _, aerr := s.target(p)
	if aerr != nil {
		return nil, aerr
	}
	if c.blocked {
		return nil, &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
	}
	if aerr := migrated(c); aerr != nil {
		return nil, aerr
	}
	if aerr := validateText(p["text"], p["parse_mode"]); aerr != nil {
		return nil, aerr
	}
	kb, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	m := &Message{ChatID: c.id, Text: p["text"], ParseMode: p["parse_mode"], Buttons: kb, SentAt: time.Now()}
	if v := p["message_thread_id"]; v != "" {
		if m.ThreadID, _ = strconv.Atoi(v); m.ThreadID <= 0 {
			return nil, &apiError{code: 400, desc: "Bad Request: message thread not found"}
		}
	}
	m.Protect = p["protect_content"] == "true"
	if v := p["reply_to_message_id"]; v != "" {
		m.ReplyTo, _ = strconv.Atoi(v)
	}
	if aerr := s.flood(c); aerr != nil {
		return nil, aerr
	}
	c.nextID++
	m.ID = c.nextID
	c.msgs[m.ID] = m
	c.order = append(c.order, m.ID)
	return s.render(c, m), nil
}

func (s *Server) editMessage(method string, p map[string]string) (any, *apiError) {
	if p["inline_message_id"] != "" {
		return nil, &apiError{code: 400, desc: "Bad Request: inline messages are not supported by the fake"}
	}
	c, m, aerr := s.target(p)
	if aerr != nil {
		return nil, aerr
	}
	if c.blocked {
		return nil, &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
	}
	if aerr := migrated(c); aerr != nil {
		return nil, aerr
	}
	if m == nil {
		return nil, &apiError{code: 400, desc: "Bad Request: message to edit not found"}
	}
	kb, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	text := m.Text
	if method == "editMessageText" {
		if aerr := validateText(p["text"], p["parse_mode"]); aerr != nil {
			return nil, aerr
		}
		text = p["text"]
	}
	if text == m.Text && sameButtons(kb, m.Buttons) {
		return nil, &apiError{code: 400, desc: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}
	}
	if aerr := s.flood(c); aerr != nil {
		return nil, aerr
	}
	m.Text, m.Buttons = text, kb
	if method == "editMessageText" {
		m.ParseMode = p["parse_mode"]
	}
	m.Edits++
	m.EditedAt = time.Now()
	return s.render(c, m), nil
}

func sameButtons(a, b [][]Button) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

// render is the JSON Telegram returns for one of the bot's messages.
func (s *Server) render(c *chat, m *Message) jsonMessage {
	jm := jsonMessage{
		MessageID:    m.ID,
		ThreadID:     m.ThreadID,
		IsTopic:      m.ThreadID != 0,
		From:         &jsonUser{ID: BotID, IsBot: true, FirstName: "otpbot test", UserName: BotUsername},
		Date:         m.SentAt.Unix(),
		Chat:         c.json(m.ThreadID != 0),
		Text:         stripHTML(m.Text),
		HasProtected: m.Protect,
	}
	if !m.EditedAt.IsZero() {
		jm.EditDate = m.EditedAt.Unix()
	}
	if m.Buttons != nil {
		mk := &jsonMarkup{}
		for _, row := range m.Buttons {
			var jr []jsonButton
			for _, b := range row {
				jb := jsonButton{Text: b.Text, CallbackData: b.Data, URL: b.URL}
				if b.CopyText != "" {
					jb.CopyText = &jsonCopyText{Text: b.CopyText}
				}
				jr = append(jr, jb)
			}
			mk.InlineKeyboard = append(mk.InlineKeyboard, jr)
		}
		jm.ReplyMarkup = mk
	}
	return jm
}

// parseMarkup reads an inline keyboard; an absent or empty one is nil.
func parseMarkup(raw string) ([][]Button, *apiError) {
	if raw == "" {
		return nil, nil
	}
	var mk jsonMarkup
	if err := json.Unmarshal([]byte(raw), &mk); err != nil {
		return nil, &apiError{code: 400, desc: "Bad Request: can't parse reply keyboard markup JSON object"}
	}
	var out [][]Button
	for _, row := range mk.InlineKeyboard {
		var r []Button
		for _, b := range row {
			nb := Button{Text: b.Text, Data: b.CallbackData, URL: b.URL}
			if b.CopyText != nil {
				nb.CopyText = b.CopyText.Text
			}
			set := 0
			for _, v := range []string{nb.Data, nb.URL, nb.CopyText} {
				if v != "" {
					set++
				}
			}
			switch {
			case nb.Text == "":
				return nil, &apiError{code: 400, desc: "Bad Request: text buttons are unallowed in the inline keyboard"}
			case set != 1:
				return nil, &apiError{code: 400, desc: "Bad Request: can't parse inline keyboard button: exactly one of the optional fields must be used"}
			case len(nb.Data) > 64:
				return nil, &apiError{code: 400, desc: "Bad Request: BUTTON_DATA_INVALID"}
			case nb.URL != "" && !validURL(nb.URL):
				return nil, &apiError{code: 400, desc: "Bad Request: BUTTON_URL_INVALID"}
			case len(nb.CopyText) > 256:
				return nil, &apiError{code: 400, desc: "Bad Request: COPY_TEXT_INVALID"}
			}
			r = append(r, nb)
		}
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "tg") && (u.Host != "" || u.Scheme == "tg")
}
