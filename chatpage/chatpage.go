// Package chatpage serves a web page that shows the chats of the fake Bot
// API (bot/bottest) the way Telegram shows them: a list of chats, and the
// selected chat's messages with their buttons, updated live with
// server-sent events as the bot sends, edits and deletes. Its reader
// writes in a chat and presses buttons as one of the chat's users (the
// fake turns both into updates for the bot), and sends sample pushes from
// a panel. otpbot demo serves it beside the real webhooks; the page is
// plain HTML, CSS and JavaScript embedded in the binary.
package chatpage

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/otpbot/otpbot/bot/bottest"
)

// Prefix is the path the page and its endpoints are served under.
const Prefix = "/demo"

//go:embed static
var static embed.FS

// Chat is one of the chats the page lists from the start.
type Chat struct {
	// ID is the Telegram chat id: a private chat's is its user's id, a
	// group's is negative.
	ID    int64
	Title string
	// About says what the chat shows ("card C1 is linked here").
	About string
	// Users are who may write in the chat, the first by default.
	Users []int64
}

// User is someone the reader may write as.
type User struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Admin    bool   `json:"admin"`
}

// Card is a card id the panel offers for sample pushes.
type Card struct {
	ID    string `json:"id"`
	About string `json:"about"`
	// Chat is where its code events arrive, shown after a push; 0 for
	// none.
	Chat int64 `json:"chat,omitempty"`
}

// Sample is a sample push the panel offers.
type Sample struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Event    string `json:"event"`
	// Message is set for an event that becomes a message in the linked
	// chats; the others are only recorded in history.
	Message bool `json:"message"`
}

// PushResult is how the webhook answered a sample push.
type PushResult struct {
	Provider string `json:"provider"`
	Event    string `json:"event"`
	Card     string `json:"card"`
	Status   int    `json:"status"`
	Answer   string `json:"answer"`
}

// Pusher sends a sample push, signed as its platform signs, to the
// webhook endpoint of its provider.
type Pusher interface {
	Push(ctx context.Context, sample, card string) (PushResult, error)
}

// Options configure the page.
type Options struct {
	Fake    *bottest.Standalone
	BotName string
	Chats   []Chat
	Users   []User
	Cards   []Card
	Samples []Sample
	Pusher  Pusher
	// Welcome is the sample pushed, for the first card, when a page opens
	// for the first time, so that a code arrives without a click; "" for
	// none.
	Welcome string
	Logger  *slog.Logger
}

// Page is the chat page: an http.Handler for the paths under Prefix.
type Page struct {
	opts   Options
	hub    *hub
	mux    *http.ServeMux
	assets fs.FS
	// done ends the event streams when Run returns.
	done chan struct{}
}

// New builds the page and starts observing the fake; Run must run for the
// page to see what the bot does.
func New(o Options) (*Page, error) {
	if o.Fake == nil || o.Pusher == nil {
		return nil, errors.New("chatpage: Fake and Pusher are required")
	}
	if len(o.Chats) == 0 || len(o.Users) == 0 || len(o.Cards) == 0 {
		return nil, errors.New("chatpage: at least one chat, user and card are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	p := &Page{opts: o, hub: newHub(o.Fake, o.BotName, o.Chats), assets: assets, done: make(chan struct{})}
	p.routes()
	o.Fake.Observe(p.hub.observe)
	return p, nil
}

// Start keeps the page up to date until ctx ends; then every event
// stream ends, so that a graceful HTTP shutdown does not wait for them,
// and Done is closed.
func (p *Page) Start(ctx context.Context) {
	if p.opts.Welcome != "" {
		p.hub.mu.Lock()
		p.hub.visited = func() { _, _ = p.push(ctx, p.opts.Welcome, p.opts.Cards[0].ID) }
		p.hub.mu.Unlock()
	}
	go func() {
		defer close(p.done)
		defer p.opts.Fake.Observe(nil)
		p.hub.run(ctx)
	}()
}

// Done is closed once the page stopped (Start's ctx ended).
func (p *Page) Done() <-chan struct{} { return p.done }

func (p *Page) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+Prefix, p.index)
	m.HandleFunc("GET "+Prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusFound)
	})
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(p.assets)))
	m.HandleFunc("GET "+Prefix+"/events", p.events)
	m.HandleFunc("GET "+Prefix+"/api/setup", p.setup)
	m.HandleFunc("POST "+Prefix+"/api/send", p.send)
	m.HandleFunc("POST "+Prefix+"/api/press", p.press)
	m.HandleFunc("POST "+Prefix+"/api/push", p.pushHandler)
	p.mux = m
}

// ServeHTTP answers requests addressed to this machine only: the demo
// binds loopback, and a Host naming anything else is a web page elsewhere
// reaching it through DNS rebinding.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "forbidden: open the page at 127.0.0.1 or localhost", http.StatusForbidden)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	p.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, p.assets, "index.html")
}
