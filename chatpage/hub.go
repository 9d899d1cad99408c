package chatpage

import (
	"context"
	"encoding/json"
	"html"
	"slices"
	"strconv"
	"sync"

	"github.com/otpbot/otpbot/bot/bottest"
)

// event is one server-sent event: its name and its JSON data.
type event struct {
	name string
	data []byte
}

// subscriberBuffer is how many events a page may fall behind before its
// stream is cut; the browser then reconnects and starts from a snapshot.
const subscriberBuffer = 1024

// subscriber is one open event stream.
type subscriber struct {
	ch chan event
}

// messageView is a message as the page shows it.
type messageView struct {
	Chat int64 `json:"chat"`
	ID   int   `json:"id"`
	// From is the sender's user id, 0 for the bot.
	From    int64          `json:"from"`
	Name    string         `json:"name"`
	HTML    string         `json:"html"`
	Buttons [][]buttonView `json:"buttons,omitempty"`
	Edited  bool           `json:"edited,omitempty"`
	Thread  int            `json:"thread,omitempty"`
	ReplyTo int            `json:"reply_to,omitempty"`
	// At is when it was sent, in Unix milliseconds.
	At int64 `json:"at"`
}

// buttonView is an inline keyboard button: exactly one of Data (a
// callback), URL and Copy is set.
type buttonView struct {
	Text string `json:"text"`
	Data string `json:"data,omitempty"`
	URL  string `json:"url,omitempty"`
	Copy string `json:"copy,omitempty"`
}

// chatView is a chat in the page's list.
type chatView struct {
	ID      int64   `json:"id"`
	Title   string  `json:"title"`
	About   string  `json:"about,omitempty"`
	Private bool    `json:"private"`
	Users   []int64 `json:"users"`
}

// hub keeps what the page shows of the fake's chats and tells every open
// stream what changed. The fake's observer only marks a chat as changed
// (it runs on the fake's request goroutines and must be quick); run reads
// the chat's messages then and sends what differs from what the pages were
// last told.
type hub struct {
	fake    *bottest.Standalone
	botName string

	mu      sync.Mutex
	stopped bool
	order   []int64
	chats   map[int64]chatView
	shown   map[int64]map[int]shownMessage // chat → message id → what the pages were told
	subs    map[*subscriber]struct{}
	pending pending
	wake    chan struct{}
	// visited is called once, when the first stream opens.
	visited func()
}

// shownMessage is the last JSON the pages were sent for a message.
type shownMessage struct {
	data []byte
	// user is set for a message a user wrote (the bot never deletes it).
	user bool
}

// pending is what the observer saw since the last flush.
type pending struct {
	mu     sync.Mutex
	chats  map[int64]bool
	toasts []string
}

func newHub(fake *bottest.Standalone, botName string, chats []Chat) *hub {
	h := &hub{
		fake: fake, botName: botName,
		chats: map[int64]chatView{}, shown: map[int64]map[int]shownMessage{},
		subs: map[*subscriber]struct{}{}, wake: make(chan struct{}, 1),
	}
	h.pending.chats = map[int64]bool{}
	for _, c := range chats {
		h.addChat(chatView{ID: c.ID, Title: c.Title, About: c.About, Private: c.ID > 0, Users: c.Users})
	}
	return h
}

// observe is the fake's observer.
func (h *hub) observe(o bottest.Observation) {
	h.pending.mu.Lock()
	switch o.Method {
	case "sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage":
		if o.ChatID == 0 {
			h.pending.mu.Unlock()
			return
		}
		h.pending.chats[o.ChatID] = true
	case "answerCallbackQuery":
		if o.Text == "" || o.Status != 200 {
			h.pending.mu.Unlock()
			return
		}
		h.pending.toasts = append(h.pending.toasts, o.Text)
	default:
		h.pending.mu.Unlock()
		return
	}
	h.pending.mu.Unlock()
	h.poke()
}

func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run flushes what the observer saw until ctx ends, then closes every
// stream.
func (h *hub) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			h.stop()
			return
		case <-h.wake:
			h.flush()
		}
	}
}

func (h *hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}

// flush sends the changes of the chats the observer marked, and the
// toasts it saw.
func (h *hub) flush() {
	h.pending.mu.Lock()
	chats, toasts := h.pending.chats, h.pending.toasts
	h.pending.chats, h.pending.toasts = map[int64]bool{}, nil
	h.pending.mu.Unlock()

	ids := make([]int64, 0, len(chats))
	for id := range chats {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		msgs := h.fake.Messages(id)
		h.mu.Lock()
		h.diff(id, msgs)
		h.mu.Unlock()
	}
	for _, t := range toasts {
		h.broadcast("toast", map[string]string{"text": t})
	}
}

// diff tells the pages which of the bot's messages in chat are new or
// changed and which are gone. h.mu must be held.
func (h *hub) diff(chat int64, msgs []bottest.Message) {
	if _, ok := h.chats[chat]; !ok {
		v := chatView{ID: chat, Title: "Chat " + strconv.FormatInt(chat, 10), Private: chat > 0, Users: []int64{}}
		if chat > 0 {
			v.Users = []int64{chat}
		}
		h.addChat(v)
		h.broadcastLocked("chat", v)
	}
	shown := h.shown[chat]
	present := map[int]bool{}
	for _, m := range msgs {
		present[m.ID] = true
		data, err := json.Marshal(h.botView(m))
		if err != nil {
			continue
		}
		if old, ok := shown[m.ID]; ok && string(old.data) == string(data) {
			continue
		}
		shown[m.ID] = shownMessage{data: data}
		h.sendLocked(event{name: "message", data: data})
	}
	for id, old := range shown {
		if old.user || present[id] {
			continue
		}
		delete(shown, id)
		h.broadcastLocked("delete", map[string]any{"chat": chat, "id": id})
	}
}

// addChat adds a chat to the list. h.mu must be held or h not shared yet.
func (h *hub) addChat(v chatView) {
	h.order = append(h.order, v.ID)
	h.chats[v.ID] = v
	h.shown[v.ID] = map[int]shownMessage{}
}

// botView is one of the bot's messages as the page shows it.
func (h *hub) botView(m bottest.Message) messageView {
	v := messageView{
		Chat: m.ChatID, ID: m.ID, Name: h.botName, Edited: m.Edits > 0,
		Thread: m.ThreadID, ReplyTo: m.ReplyTo, At: m.SentAt.UnixMilli(),
	}
	if m.ParseMode == "HTML" {
		v.HTML = toHTML(m.Text)
	} else {
		v.HTML = toHTML(html.EscapeString(m.Text))
	}
	for _, row := range m.Buttons {
		var r []buttonView
		for _, b := range row {
			r = append(r, buttonView{Text: b.Text, Data: b.Data, URL: b.URL, Copy: b.CopyText})
		}
		v.Buttons = append(v.Buttons, r)
	}
	return v
}

// userMessage records and shows a message a user wrote.
func (h *hub) userMessage(v messageView) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shown[v.Chat] == nil {
		return
	}
	h.shown[v.Chat][v.ID] = shownMessage{data: data, user: true}
	h.sendLocked(event{name: "message", data: data})
}

// chat returns a chat of the list.
func (h *hub) chat(id int64) (chatView, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.chats[id]
	return c, ok
}

// subscribe opens a stream: the snapshot to send first (the chat list,
// then every message shown, oldest first) and the subscriber whose channel
// carries what follows. nil when the hub stopped.
func (h *hub) subscribe() (*subscriber, []event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, nil
	}
	list := make([]chatView, 0, len(h.order))
	for _, id := range h.order {
		list = append(list, h.chats[id])
	}
	reset, _ := json.Marshal(map[string]any{"chats": list})
	snap := []event{{name: "reset", data: reset}}
	for _, id := range h.order {
		shown := h.shown[id]
		ids := make([]int, 0, len(shown))
		for mid := range shown {
			ids = append(ids, mid)
		}
		slices.Sort(ids)
		for _, mid := range ids {
			snap = append(snap, event{name: "message", data: shown[mid].data})
		}
	}
	snap = append(snap, event{name: "ready", data: []byte("{}")})
	s := &subscriber{ch: make(chan event, subscriberBuffer)}
	first := len(h.subs) == 0 && h.visited != nil
	h.subs[s] = struct{}{}
	if first {
		go h.visited()
		h.visited = nil
	}
	return s, snap
}

// unsubscribe closes a stream the page left.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		close(s.ch)
		delete(h.subs, s)
	}
}

// broadcast sends an event to every stream.
func (h *hub) broadcast(name string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(name, v)
}

func (h *hub) broadcastLocked(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.sendLocked(event{name: name, data: data})
}

// sendLocked queues ev on every stream; a stream that fell too far behind
// is cut (its page reconnects and gets a snapshot). h.mu must be held.
func (h *hub) sendLocked(ev event) {
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			close(s.ch)
			delete(h.subs, s)
		}
	}
}
