package otpbot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyType says whether a routing key names a card or a customer.
type KeyType string

// The routing key types.
const (
	KeyCard     KeyType = "card"
	KeyCustomer KeyType = "customer"
	// KeyEvents is a history key only: the stream of every event
	// (EventsKey). No link, invite or command argument can name it
	// (ParseKey refuses it, Key.Linkable is false).
	KeyEvents KeyType = "events"
)

// EventsKey is the history key under which every event is kept, with or
// without a card or customer (Event.HistoryKeys); admins read it with
// /history events.
var EventsKey = Key{Type: KeyEvents, ID: "all"}

// Linkable reports whether a chat can be linked to k: a card id or a
// customer number, never a history-only key.
func (k Key) Linkable() bool { return (k.Type == KeyCard || k.Type == KeyCustomer) && k.ID != "" }

// Key is what a chat is linked to: a card id or a customer number.
type Key struct {
	Type KeyType `json:"type"`
	ID   string  `json:"id"`
}

// String renders the key as "card:ID" or "customer:NO", the form stores use.
func (k Key) String() string { return string(k.Type) + ":" + k.ID }

// ParseKey is the inverse of Key.String for the keys a chat can be
// linked to (card:ID, customer:NO); it refuses EventsKey.
func ParseKey(s string) (Key, error) {
	t, id, ok := strings.Cut(s, ":")
	k := Key{Type: KeyType(t), ID: id}
	if !ok || !k.Linkable() {
		return Key{}, fmt.Errorf("parse key %q: want card:ID or customer:NO", s)
	}
	return k, nil
}

// Target is where a message goes: a chat and, in a forum group, a topic.
type Target struct {
	ChatID   int64 `json:"chat_id"`
	ThreadID int   `json:"thread_id,omitempty"` // forum topic; 0 = the chat itself
}

// String renders the target as "CHAT" or "CHAT/THREAD", the form stores use.
func (t Target) String() string {
	if t.ThreadID == 0 {
		return strconv.FormatInt(t.ChatID, 10)
	}
	return strconv.FormatInt(t.ChatID, 10) + "/" + strconv.Itoa(t.ThreadID)
}

// ParseTarget is the inverse of Target.String.
func ParseTarget(s string) (Target, error) {
	chat, thread, hasThread := strings.Cut(s, "/")
	id, err := strconv.ParseInt(chat, 10, 64)
	if err != nil {
		return Target{}, fmt.Errorf("parse target %q: %w", s, err)
	}
	t := Target{ChatID: id}
	if hasThread {
		if t.ThreadID, err = strconv.Atoi(thread); err != nil {
			return Target{}, fmt.Errorf("parse target %q: %w", s, err)
		}
	}
	return t, nil
}

// Link says that events for Key are delivered to Target.
type Link struct {
	Key       Key       `json:"key"`
	Target    Target    `json:"target"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy int64     `json:"created_by,omitempty"` // Telegram user id of the admin (0 for an invite)
	// Broken is set when Telegram refused the target for good (chat not
	// found, bot blocked or kicked). A broken link receives nothing until it
	// is linked again.
	Broken       bool   `json:"broken,omitempty"`
	BrokenReason string `json:"broken_reason,omitempty"`
	// Replies is set when the chat (topic) opted in with /replies on: a
	// history-only event of the key that shares its transaction (UPay
	// trace) with a code message already in that chat is added to it as a
	// reply. Off by default; a new link starts without it.
	Replies bool `json:"replies,omitempty"`
	// Name is what the chat calls the card ("Travel"), given with /link;
	// messages and history lines of the card show it. Empty for none.
	Name string `json:"name,omitempty"`
}

// Outcome says what became of a push, as history shows it.
type Outcome string

// The outcomes of a push.
const (
	OutcomeQueued   Outcome = "queued"   // deliveries written to the outbox
	OutcomeUnrouted Outcome = "unrouted" // a pushed kind, but no chat is linked
	OutcomeRecorded Outcome = "recorded" // a history-only event
	OutcomeRejected Outcome = "rejected" // authentic but invalid
	OutcomeExpired  Outcome = "expired"  // a code that was already expired on arrival
)

// HistoryEntry is one event as /history shows it. It never holds a code.
type HistoryEntry struct {
	// Event is the redacted event (Code and Link always empty).
	Event   Event   `json:"event"`
	Outcome Outcome `json:"outcome"`
}

// Invite is a one-time link that links the chat redeeming it to Key.
type Invite struct {
	// Hash is the SHA-256 of the token, hex encoded: the token itself is
	// never stored.
	Hash      string    `json:"hash"`
	Key       Key       `json:"key"`
	CreatedBy int64     `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
}
