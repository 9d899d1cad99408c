package chatpage

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpbot/otpbot/bot/bottest"
)

// maxText is the longest message Telegram lets a user send.
const maxText = 4096

// setup answers what the page is built from: the bot's name, the users,
// the panel's cards and samples. The chats come with the event stream.
func (p *Page) setup(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"bot":     p.opts.BotName,
		"botUser": bottest.BotUsername,
		"users":   p.opts.Users,
		"cards":   p.opts.Cards,
		"samples": p.opts.Samples,
	})
}

// sendRequest is a message the reader writes in a chat as a user.
type sendRequest struct {
	Chat int64  `json:"chat"`
	User int64  `json:"user"`
	Text string `json:"text"`
}

// send injects the reader's message into the fake as an update from the
// user; the bot receives it through its webhook, as from Telegram.
func (p *Page) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if !decode(w, r, &req) {
		return
	}
	req.Text = strings.TrimSpace(req.Text)
	if req.Text == "" || utf8.RuneCountInString(req.Text) > maxText {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the text must have 1 to %d characters", maxText))
		return
	}
	u, ok := p.member(w, req.Chat, req.User)
	if !ok {
		return
	}
	opts := []bottest.UpdateOption{bottest.FromName(u.Name), bottest.FromUsername(u.Username)}
	if req.Chat < 0 {
		opts = append(opts, bottest.ChatType("supergroup"))
	}
	id := p.opts.Fake.SendCommand(req.Chat, u.ID, req.Text, opts...)
	p.hub.userMessage(messageView{
		Chat: req.Chat, ID: id, From: u.ID, Name: u.Name,
		HTML: toHTML(escapeHTML(req.Text)), At: time.Now().UnixMilli(),
	})
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

// pressRequest is a button the reader presses under one of the bot's
// messages, as a user.
type pressRequest struct {
	Chat    int64  `json:"chat"`
	User    int64  `json:"user"`
	Message int    `json:"message"`
	Data    string `json:"data"`
}

// press injects a callback query from the user into the fake.
func (p *Page) press(w http.ResponseWriter, r *http.Request) {
	var req pressRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Data == "" || len(req.Data) > 64 || req.Message <= 0 {
		writeError(w, http.StatusBadRequest, "message and data (1-64 bytes) are required")
		return
	}
	u, ok := p.member(w, req.Chat, req.User)
	if !ok {
		return
	}
	id := p.opts.Fake.PressButton(req.Chat, u.ID, req.Message, req.Data, bottest.FromName(u.Name), bottest.FromUsername(u.Username))
	writeJSON(w, http.StatusOK, map[string]string{"callback": id})
}

// pushRequest is a sample push the panel asks for.
type pushRequest struct {
	Sample string `json:"sample"`
	Card   string `json:"card"`
}

// pushHandler sends a sample push through the real webhook endpoint and
// answers how the endpoint answered.
func (p *Page) pushHandler(w http.ResponseWriter, r *http.Request) {
	var req pushRequest
	if !decode(w, r, &req) {
		return
	}
	known := slices.ContainsFunc(p.opts.Samples, func(s Sample) bool { return s.ID == req.Sample })
	if !known || !slices.ContainsFunc(p.opts.Cards, func(c Card) bool { return c.ID == req.Card }) {
		writeError(w, http.StatusBadRequest, "unknown sample or card")
		return
	}
	res, err := p.push(r.Context(), req.Sample, req.Card)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// push sends a sample and tells every page how the webhook answered.
func (p *Page) push(ctx context.Context, sample, card string) (PushResult, error) {
	res, err := p.opts.Pusher.Push(ctx, sample, card)
	if err != nil {
		p.opts.Logger.Warn("demo push failed", "sample", sample, "err", err)
		return PushResult{}, err
	}
	p.hub.broadcast("push", res)
	return res, nil
}

// member returns the user, who must be one of the chat's users.
func (p *Page) member(w http.ResponseWriter, chat, user int64) (User, bool) {
	c, ok := p.hub.chat(chat)
	if !ok {
		writeError(w, http.StatusNotFound, "no such chat")
		return User{}, false
	}
	i := slices.IndexFunc(p.opts.Users, func(u User) bool { return u.ID == user })
	if i < 0 || !slices.Contains(c.Users, user) {
		writeError(w, http.StatusForbidden, "that user is not in this chat")
		return User{}, false
	}
	return p.opts.Users[i], true
}

// decode reads a JSON request body into v. Only application/json is
// accepted: a page elsewhere cannot send that to this origin without a
// preflight the demo never allows, so it cannot act in the demo.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
