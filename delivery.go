package otpbot

import "time"

// Priority orders Telegram work: a lower value runs first. A new code never
// waits behind an edit, and an edit that hides a code never waits behind a
// countdown refresh.
type Priority int

// The priorities, most urgent first.
const (
	PriorityCode    Priority = 0 // sending a new code or approval request
	PriorityUpdate  Priority = 1 // a changed AUTH_3DS result, a hide, the expiry edit
	PriorityRefresh Priority = 2 // countdown refreshes
	PriorityOther   Priority = 3 // ops reports and everything else
)

// Low reports whether p is countdown work or worse: it takes a call's slot
// only when codes and updates keep theirs, and never waits for one.
func (p Priority) Low() bool { return p > PriorityUpdate }

// TaskKind says what a task does to its message.
type TaskKind string

// The kinds of task.
const (
	// TaskSend sends the message of a group to a target (or edits it, if a
	// message is already there).
	TaskSend TaskKind = "send"
	// TaskUpdate re-renders an existing message after its state changed (a
	// new AUTH_3DS result, a hide, a decision).
	TaskUpdate TaskKind = "update"
	// TaskRefresh re-renders the time left of a live code.
	TaskRefresh TaskKind = "refresh"
	// TaskExpire edits the message at expiry so the code is gone.
	TaskExpire TaskKind = "expire"
	// TaskNotice sends Task.Text as a plain new message (ops reports, and
	// the replies that add an event to its code message's thread: those
	// answer Task.ReplyTo). It has no Message.
	TaskNotice TaskKind = "notice"
	// TaskDelete deletes the message Task.TelegramID in Task.Target: a
	// message that must not outlive the codes it shows (a /codes reply),
	// due when the first of them expires. A message Telegram will not
	// delete any more (older than 48 hours) is edited to a text without
	// the codes instead. It has no Message.
	TaskDelete TaskKind = "delete"
)

// MessageState is where a message is in its life.
type MessageState string

// The states of a message.
const (
	StateLive    MessageState = "live"    // the code or request is shown and valid
	StateHidden  MessageState = "hidden"  // the cardholder hid the code ("Used it")
	StateExpired MessageState = "expired" // the code expired and was redacted
	StateDecided MessageState = "decided" // an approval request was answered
	StateFailed  MessageState = "failed"  // Telegram refused the target for good
)

// Final reports whether nothing more will happen to a message in this state:
// its code is gone and it takes no more refreshes.
func (s MessageState) Final() bool { return s != StateLive }

// Message is one group's message in one target: what it shows, and where it
// is once Telegram accepted it. The store keeps it from ingest until the code
// is gone, so countdowns survive restarts and AUTH_3DS updates find it.
type Message struct {
	// ID is MessageKey(Group, Target).
	ID     string `json:"id"`
	Group  string `json:"group"`
	Target Target `json:"target"`
	// Event is the latest event of the group, code included while State is
	// StateLive; stores drop the code once the state is final.
	Event Event        `json:"event"`
	State MessageState `json:"state"`
	// TelegramID is the Telegram message id, 0 until it was sent.
	TelegramID int `json:"telegram_id,omitempty"`
	// Rendered is a hash of the text last sent, so an edit that would not
	// change what the cardholder sees is skipped.
	Rendered string `json:"rendered,omitempty"`
	// Decision records who answered an approval request and how.
	Decision string `json:"decision,omitempty"`
	// CardName is what the target's link calls the event's card
	// (Link.Name), copied when the message is created so that every
	// rendering of it names the card the chat's way; empty for none.
	CardName string `json:"card_name,omitempty"`
	// SentAt is when Telegram accepted the first send; zero until then.
	SentAt time.Time `json:"sent_at,omitempty"`
	// SendStarted is set, durably, just before a send is called and
	// cleared when its message id is recorded: a message that still has
	// it while TelegramID is 0 had a send whose outcome is unknown (the
	// process died during the call), so Telegram may show a copy whose id
	// nobody knows.
	SendStarted time.Time `json:"send_started,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// NextState is the state a group's message takes when ev arrives: cur for
// an existing message ("" for a new one, which starts live). An approval
// request whose push says it is decided is decided, live or expired
// before (a decision is worth showing even after the countdown ran out);
// an answered, hidden or failed message keeps its state. Both stores
// apply this one rule at ingest.
func NextState(cur MessageState, ev Event) MessageState {
	switch {
	case ev.Decided() && (cur == "" || cur == StateLive || cur == StateExpired):
		return StateDecided
	case cur == "":
		return StateLive
	}
	return cur
}

// MessageStates lists every state a stored message can be in.
func MessageStates() []MessageState {
	return []MessageState{StateLive, StateHidden, StateExpired, StateDecided, StateFailed}
}

// MessageKey is the ID of a group's message in a target.
func MessageKey(group string, t Target) string { return group + "@" + t.String() }

// Task is a unit of Telegram work waiting in the outbox.
type Task struct {
	// ID is unique per pending task; enqueueing a task whose ID is already
	// pending replaces it, which is how refreshes coalesce: TaskID(message,
	// kind) gives each message at most one pending task of each slot.
	ID        string    `json:"id"`
	Kind      TaskKind  `json:"kind"`
	Priority  Priority  `json:"priority"`
	MessageID string    `json:"message_id,omitempty"` // Message.ID; empty for TaskNotice
	Target    Target    `json:"target"`
	Due       time.Time `json:"due"`
	// Created is when the work first became due, for delivery-latency metrics
	// (for a send: the push's receipt time).
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// Text is the body of a TaskNotice (already rendered, never a code).
	Text string `json:"text,omitempty"`
	// TelegramID is the Telegram message id a TaskDelete deletes.
	TelegramID int `json:"telegram_id,omitempty"`
	// ReplyTo is the Telegram message id a TaskNotice answers (in
	// Target), 0 for none; the notice still goes out, without the reply,
	// when that message is gone.
	ReplyTo int `json:"reply_to,omitempty"`
}

// TaskID returns the ID of a message's task in a slot. Send and update have
// their own slots; refresh and expire share the "tick" slot, so a message has
// at most one pending countdown task.
func TaskID(messageID string, kind TaskKind) string {
	slot := string(kind)
	if kind == TaskRefresh || kind == TaskExpire {
		slot = "tick"
	}
	return messageID + "#" + slot
}

// Job is a task claimed by one worker, with its message, until the lease ends.
type Job struct {
	Task    Task     `json:"task"`
	Message *Message `json:"message,omitempty"` // nil for TaskNotice, or when the message is gone
	// Lease identifies this claim: Complete and Retry succeed only while it
	// is still the current one, so a job taken over by another process after
	// the lease ran out is not finished twice.
	Lease      string    `json:"lease"`
	LeaseUntil time.Time `json:"lease_until"`
}
