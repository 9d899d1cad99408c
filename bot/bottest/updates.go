package bottest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// UpdateOption refines an injected message.
type UpdateOption func(*updateOpts)

type updateOpts struct {
	thread    int
	chatType  string
	username  string
	firstName string
	lang      string
}

// InThread puts the message in a forum topic.
func InThread(threadID int) UpdateOption { return func(o *updateOpts) { o.thread = threadID } }

// ChatType sets the chat's type ("private", "group", "supergroup"). By
// default a positive chat id is private and a negative one a supergroup.
func ChatType(typ string) UpdateOption { return func(o *updateOpts) { o.chatType = typ } }

// FromUsername sets the sender's username (default "user<ID>").
func FromUsername(name string) UpdateOption { return func(o *updateOpts) { o.username = name } }

// FromName sets the sender's first name (default "User <ID>").
func FromName(first string) UpdateOption { return func(o *updateOpts) { o.firstName = first } }

// LanguageCode sets the sender's Telegram language (language_code: "ru",
// "pt-br"); none by default.
func LanguageCode(lang string) UpdateOption { return func(o *updateOpts) { o.lang = lang } }

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
		From:      user(userID, o.username, o.lang),
		Date:      time.Now().Unix(),
		Chat:      c.json(o.thread != 0),
		Text:      text,
	}
	if o.firstName != "" {
		m.From.FirstName = o.firstName
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
// returns the callback query id. Of opts, LanguageCode, FromUsername and
// FromName apply.
func (s *Server) PressButton(chatID, userID int64, messageID int, data string, opts ...UpdateOption) string {
	var o updateOpts
	for _, f := range opts {
		f(&o)
	}
	from := user(userID, o.username, o.lang)
	if o.firstName != "" {
		from.FirstName = o.firstName
	}
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
		"from":          from,
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

// getUpdates answers a long poll: updates from offset at once if there are
// any, else it waits up to timeout seconds for one to be injected, until
// the client gives up or the server closes. Called without s.mu.
func (s *Server) getUpdates(ctx context.Context, p map[string]string) (any, *apiError) {
	offset, _ := strconv.Atoi(p["offset"])
	timeout, _ := strconv.Atoi(p["timeout"])
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.webhook != "" {
			s.mu.Unlock()
			return nil, &apiError{code: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
		}
		if offset > 0 {
			// Confirm everything before offset, as Telegram does.
			kept := s.updates[:0:0]
			for _, u := range s.updates {
				if updateIDOf(u) >= offset {
					kept = append(kept, u)
				}
			}
			s.updates = kept
		}
		var out []json.RawMessage
		for _, u := range s.updates {
			if len(out) == limit {
				break
			}
			out = append(out, u)
		}
		wait := s.changed
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-wait:
		case <-deadline.C:
			return []json.RawMessage{}, nil
		case <-ctx.Done():
			return []json.RawMessage{}, nil
		case <-s.closing:
			return []json.RawMessage{}, nil
		}
	}
}

func updateIDOf(u json.RawMessage) int {
	var v struct {
		ID int `json:"update_id"`
	}
	_ = json.Unmarshal(u, &v)
	return v.ID
}
