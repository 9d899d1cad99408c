package otpbot

import (
	"context"
	"time"
)

// StoreOptions are the settings every store implementation honours.
type StoreOptions struct {
	// DedupeWindow is how long an event ID is remembered: a push with the
	// same ID within it is a repeat.
	DedupeWindow time.Duration
	// HistoryPerKey caps the history entries kept per card / customer.
	HistoryPerKey int
	// HistoryRetention drops history entries older than this.
	HistoryRetention time.Duration
	// InviteTTL is how long an invite can be redeemed.
	InviteTTL time.Duration
	// Now is the store's clock (time.Now when nil). Tests inject their own.
	Now func() time.Time
}

// IngestResult says what Ingest did with an event.
type IngestResult struct {
	// Duplicate is true when the event ID was seen within the dedupe window:
	// nothing was written.
	Duplicate bool
	Outcome   Outcome
	// Targets lists the chats a message was queued (or an existing message
	// updated) for.
	Targets []Target
}

// Ingester accepts provider events. Ingest returns only after everything it
// wrote is durable, so its caller may acknowledge the push.
type Ingester interface {
	// Ingest records ev in one transaction: the dedupe mark, a redacted
	// history entry under each of ev.Keys(), and, for a pushed kind that is
	// not yet expired, a Message and a send task (or, when the group's
	// Message already exists in that target, the updated event and an update
	// task) for every target of an unbroken link of any of ev.Keys() (card
	// and customer). Each target is served once: a chat linked to both the
	// card and its customer gets one message, while two topics of one chat
	// are two targets; a target still receives when its link under one key
	// is broken but its link under the other is not.
	Ingest(ctx context.Context, ev Event) (IngestResult, error)
}

// LinkStore keeps which chats receive which cards and customers.
type LinkStore interface {
	// Link adds or renews a link (clearing Broken). Idempotent.
	Link(ctx context.Context, l Link) error
	// Unlink removes the link of key to target; false if there was none.
	Unlink(ctx context.Context, key Key, target Target) (bool, error)
	// LinksForKey lists the links of a key, broken ones included.
	LinksForKey(ctx context.Context, key Key) ([]Link, error)
	// LinksForChat lists the links of a chat, every topic included.
	LinksForChat(ctx context.Context, chatID int64) ([]Link, error)
	// MarkBroken marks every link to target as broken with a reason.
	MarkBroken(ctx context.Context, target Target, reason string) error
}

// HistoryStore answers /history.
type HistoryStore interface {
	// History returns up to limit entries of key, newest first.
	History(ctx context.Context, key Key, limit int) ([]HistoryEntry, error)
}

// Queue is the outbox: durable Telegram work, claimed with a lease so that
// several processes share it and a dead one's work is taken over.
type Queue interface {
	// Claim leases up to max tasks due at now, most urgent priority first
	// and, within a priority, the earliest due first. Tasks leased by another
	// claim whose lease has not run out are skipped.
	Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Job, error)
	// NextDue returns when the earliest pending task becomes claimable (its
	// due time, or its lease's end); ok is false when the outbox is empty.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)
	// Complete finishes a job in one transaction: the task is removed, msg
	// (when not nil) replaces the stored message, and next is enqueued. A
	// message in a final state loses its code. It returns ErrLeaseLost when
	// the job's lease is no longer the current one.
	Complete(ctx context.Context, job Job, msg *Message, next ...Task) error
	// CompleteMessage finishes a job and saves its message in one
	// transaction: like UpdateMessage(prev, msg) followed by Complete(job,
	// nil, next...), but atomic, so finishing a job costs one commit.
	// Nothing is written when it fails: ErrLeaseLost when the job's lease is
	// no longer current (checked first), ErrNotFound when the message is
	// unknown, ErrConflict when the stored message's UpdatedAt is not prev.
	// The job's lease stays held after ErrNotFound and ErrConflict. As with
	// Complete, the task is removed before next is enqueued, and a message
	// in a final state loses its code.
	CompleteMessage(ctx context.Context, job Job, prev time.Time, msg Message, next ...Task) error
	// Retry releases a job to run again at `at`, counting the attempt and
	// keeping reason (never a code or token) as the task's LastError.
	Retry(ctx context.Context, job Job, at time.Time, reason string) error
	// Enqueue adds tasks, replacing pending tasks with the same ID.
	Enqueue(ctx context.Context, tasks ...Task) error
	// Wake delivers a value whenever tasks may have become claimable sooner
	// than the last NextDue said: enqueued by this process or, for a shared
	// store, another one. One consumer per process.
	Wake() <-chan struct{}
	// Pending counts pending tasks per priority and the oldest Created
	// among them, for metrics.
	Pending(ctx context.Context) (map[Priority]QueueStat, error)
}

// SendMarker is a Queue that marks a send as started in its Claim, so that
// the bracket around a send (Message.SendStarted) costs no write of its
// own. When ClaimMarksSends is true, Claim, for every TaskSend whose
// message has no TelegramID and has not failed, stores that message with
// a new version whose UpdatedAt is also its SendStarted (the mark), in
// the claim's own write; the job carries the message of that version but
// with the SendStarted it had before the claim, so that a resend still
// sees an earlier attempt's mark. The worker then writes no mark before
// the send; one that hands the job back without calling Telegram puts
// the earlier SendStarted back (CompleteMessage), so that the next
// attempt is not taken for a resend.
type SendMarker interface {
	ClaimMarksSends() bool
}

// QueueStat describes the pending tasks of one priority.
type QueueStat struct {
	Count  int
	Oldest time.Time
}

// MessageStore looks up the messages behind codes and approval requests.
type MessageStore interface {
	// Message returns the message with the given ID; ok is false when it is
	// unknown (never sent, or forgotten after its code was gone).
	Message(ctx context.Context, id string) (msg Message, ok bool, err error)
	// MessagesForChat lists a chat's messages, every topic included.
	MessagesForChat(ctx context.Context, chatID int64) ([]Message, error)
	// LiveMessages lists the messages still in StateLive, in every chat:
	// a starting deliverer resumes their countdowns from them.
	LiveMessages(ctx context.Context) ([]Message, error)
	// UpdateMessage changes a message and enqueues follow-up work in one
	// transaction, provided the stored message still has the UpdatedAt of
	// msg's previous version (prev); ErrConflict otherwise.
	UpdateMessage(ctx context.Context, prev time.Time, msg Message, next ...Task) error
}

// InviteStore keeps one-time invites.
type InviteStore interface {
	// CreateInvite stores an invite under its hash.
	CreateInvite(ctx context.Context, inv Invite) error
	// RedeemInvite consumes the invite with the given hash and links target
	// to its key, atomically: of two chats racing for one invite exactly one
	// wins. ErrNotFound when it does not exist, was used or has expired.
	RedeemInvite(ctx context.Context, hash string, target Target, now time.Time) (Invite, error)
}

// Coordinator lets several processes agree on who does what.
type Coordinator interface {
	// Once returns true the first time it is called with key within ttl,
	// and false after that: Telegram update ids are handled once.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// AcquireLease takes or renews the named lease for owner for ttl; false
	// when another owner holds it.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// InstallationSecretSize is the length of an installation secret in bytes.
const InstallationSecretSize = 32

// SecretStore keeps the installation secret: a random secret shared by every
// process on one store and kept across restarts. It keys the identities
// derived from push bodies (a HyperCard push carries no id), so that an id
// seen in logs, history or a backup cannot be hashed back to the code in
// the body it came from.
type SecretStore interface {
	// InstallationSecret returns the store's secret (InstallationSecretSize random
	// bytes), creating it at the first call: every later call, from this
	// or any other process on the same store, returns the same key. Of two
	// processes racing to create it, both get the one that was stored.
	InstallationSecret(ctx context.Context) ([]byte, error)
}

// Record is one item of a store's contents, for backup and migration
// between store drivers. Exactly one field is set.
type Record struct {
	Link    *Link         `json:"link,omitempty"`
	History *HistoryEntry `json:"history,omitempty"`
	Message *Message      `json:"message,omitempty"`
	Task    *Task         `json:"task,omitempty"`
	Invite  *Invite       `json:"invite,omitempty"`
	Chat    *ChatSettings `json:"chat,omitempty"`
	// Dedupe is an event ID still inside the dedupe window, with when it
	// was seen.
	Dedupe *DedupeMark `json:"dedupe,omitempty"`
	// InstallationSecret is the store's SecretStore secret. Export emits it
	// first (when the store has one), so that Import meets it before any
	// dedupe mark made with it. The JSON name is the one every backup so
	// far was written with.
	InstallationSecret []byte `json:"installation_key,omitempty"`
}

// DedupeMark is a remembered event ID.
type DedupeMark struct {
	ID   string    `json:"id"`
	Seen time.Time `json:"seen"`
}

// Porter exports and imports a store's whole contents.
type Porter interface {
	// Export calls fn for every record, in an order Import accepts. It
	// never creates an installation secret: a store without one exports none.
	Export(ctx context.Context, fn func(Record) error) error
	// Import writes records, keeping their ids and times.
	//
	// An InstallationSecret record is applied before the other records of the
	// call. It is stored when the store has no key yet, and is a no-op when
	// the store has the same key. A store with a different key takes the
	// imported one only while it holds no dedupe mark inside the window
	// (the ids of its marks were derived with its own key and would no
	// longer match a repeated push); otherwise Import writes nothing and
	// returns ErrKeyConflict.
	Import(ctx context.Context, recs []Record) error
}

// Store is everything otpbot keeps. Both the embedded (bbolt) and the Redis
// store implement it and pass the same conformance suite.
type Store interface {
	Ingester
	LinkStore
	HistoryStore
	Queue
	MessageStore
	InviteStore
	ChatSettingsStore
	Coordinator
	Porter
	SecretStore
	// Ping reports whether the store answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
