// Package bolt is otpbot's embedded store: everything in one bbolt file,
// for one process. It is the default driver (store.driver: embedded).
//
// Ingest goes through a group commit (groupCommit): a push commits at once
// when no commit is running, pushes that arrive during a commit share the
// next transaction and fsync, and each push is acknowledged only after the
// commit that holds it reached the disk.
//
// Layout (messages, tasks and history entries in the binary form of
// codec.go, other values JSON unless noted; times in keys are big-endian
// nanoseconds with the sign bit flipped, so byte order is time order):
//
//	ids              event id or group → seen time [+ base]   (layout.go)
//	dedupe_by_time   seen time + event id → ∅                 (pruning)
//	hist             key + ^received time + sequence → HistoryEntry
//	                 (newest first within a key; see history.go)
//	links            key + 0x00 + target → Link
//	links_by_chat    chat + target + 0x00 + key → links key
//	msgs             base + target → Message, base + target + slot →
//	                 that slot's taskRecord (task and its generation;
//	                 claim leases are kept in memory, see claimLeases)
//	tasks            task id → taskRecord, for tasks of no message slot
//	messages_by_chat chat + message key → ∅
//	ready            priority + ready time + task ref → ∅       (Claim, NextDue)
//	created          priority + created time + task ref → ∅     (Pending)
//	task_count       priority → count (8 bytes)                 (Pending)
//	invites          hash → Invite
//	once             key → expiry (8 bytes); once_by_time expiry + key → ∅
//	leases           name → lease
//	chats            chat → ChatSettings (a chat's /language, /timezone...)
//	meta             "installation_key" → 32 random bytes (never pruned);
//	                 "ping" → time of Ping's last write check
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/otpbot/otpbot"
)

var _ otpbot.Store = (*Store)(nil)

// Bucket names.
var (
	bIDs            = []byte("ids")
	bDedupeByTime   = []byte("dedupe_by_time")
	bHist           = []byte("hist")
	bLinks          = []byte("links")
	bLinksByChat    = []byte("links_by_chat")
	bMsgs           = []byte("msgs")
	bMessagesByChat = []byte("messages_by_chat")
	bTasks          = []byte("tasks")
	bReady          = []byte("ready")
	bCreated        = []byte("created")
	bTaskCount      = []byte("task_count")
	bInvites        = []byte("invites")
	bOnce           = []byte("once")
	bOnceByTime     = []byte("once_by_time")
	bLeases         = []byte("leases")
	bMeta           = []byte("meta")
	bChats          = []byte("chats")

	allBuckets = [][]byte{
		bIDs, bDedupeByTime, bHist, bLinks, bLinksByChat, bMsgs,
		bMessagesByChat, bTasks, bReady, bCreated, bTaskCount, bInvites, bOnce, bOnceByTime, bLeases, bMeta, bChats,
	}

	// Buckets of earlier versions, migrated at Open.
	bHistoryV1      = []byte("history")
	bHistoryCountV1 = []byte("history_count")
	bDedupeV1       = []byte("dedupe")
	bMessagesV1     = []byte("messages")
)

const (
	// lockTimeout bounds the wait for the file lock: a second process on
	// the same file fails fast with a clear error instead of hanging.
	lockTimeout = time.Second
	// pruneInterval is how often expired marks, history, invites and old
	// final messages are deleted, so the file does not grow without bound.
	pruneInterval = 10 * time.Minute
	// minMessageGrace is the least time a final message is kept after its
	// last change, so late button presses and AUTH_3DS results still find it.
	minMessageGrace = time.Hour
	// pingEvery is how often Ping proves the file takes writes. /readyz
	// may be polled every second; one tiny commit (and fsync) every few
	// seconds costs nothing next to the pushes.
	pingEvery = 5 * time.Second
)

// metaPing is the meta key Ping writes.
var metaPing = []byte("ping")

// Store is the embedded otpbot.Store on one bbolt file.
type Store struct {
	db     *bbolt.DB
	path   string
	opts   otpbot.StoreOptions
	now    func() time.Time
	logger *slog.Logger
	wake   chan struct{}
	// commits runs Ingest's transactions in shared commits.
	commits groupCommit
	// leases are the claim leases, kept in memory (see claimLeases).
	leases claimLeases

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Ping's cache: the result of its last write and when (real time).
	pingMu    sync.Mutex
	pingEvery time.Duration
	pingAt    time.Time
	pingErr   error
}

// Open opens (creating if needed) the store file at path. It fails within
// about a second when another process holds the file. It starts a
// background pruner that Close stops.
func Open(path string, opts otpbot.StoreOptions, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The file holds live codes until they expire: only its owner should
	// read it. An existing file others can read is the operator's choice
	// (a backup group, say), so it is a warning, not a refusal.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("store file is readable by group or others; it holds live codes (chmod 600 it)",
			"path", path, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: lockTimeout,
		// The freelist is rebuilt at open instead of written at every
		// commit: smaller commits, same durability.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is in use by another otpbot process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := migrateHistory(tx); err != nil {
			return err
		}
		return migrateOutbox(tx)
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{
		db: db, path: path, opts: opts, now: now, logger: logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		pingEvery: pingEvery, commits: groupCommit{db: db},
	}
	go s.pruneLoop()
	return s, nil
}

// Close stops the pruner and closes the file. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Ping reports whether the store takes writes, which is what a push needs:
// on a full or read-only disk the file still reads, and a read-only check
// would keep /readyz at 200 while every push gets 503. It commits a tiny
// meta key (the time of the check) at most once per pingEvery (5 s) and
// answers the last result in between, so frequent probes cost nothing.
// A failure wraps otpbot.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if !s.pingAt.IsZero() && time.Since(s.pingAt) < s.pingEvery {
		return s.pingErr
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMeta).Put(metaPing, appendTime(nil, time.Now()))
	})
	s.pingAt, s.pingErr = time.Now(), wrap("ping", err)
	return s.pingErr
}

// Wake delivers a value when work was enqueued.
func (s *Store) Wake() <-chan struct{} { return s.wake }

// notify wakes the consumer without blocking: one pending value is enough
// for it to look again.
func (s *Store) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pruneLoop prunes periodically until Close.
func (s *Store) pruneLoop() {
	defer close(s.done)
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), pruneInterval)
			if _, err := s.Prune(ctx, s.now()); err != nil {
				s.logger.Error("store prune failed", "err", err)
			}
			cancel()
		}
	}
}

// wrap adds context to a store error. Anything but the domain's sentinel
// errors and context cancellation means the file cannot be used, which the
// callers answer with 503 (ErrUnavailable).
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, otpbot.ErrNotFound), errors.Is(err, otpbot.ErrLeaseLost),
		errors.Is(err, otpbot.ErrConflict), errors.Is(err, otpbot.ErrSecretConflict), errors.Is(err, errBadSecret), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %s: %w", op, err)
	default:
		return fmt.Errorf("store: %s: %w: %w", op, otpbot.ErrUnavailable, err)
	}
}

// Key encodings.

// timeKey encodes t so that byte order is time order; the zero time sorts
// first.
func timeKey(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano() // saturates outside 1678..2262, which keeps the order
	return uint64(n) ^ (1 << 63)
}

// keyTime is the inverse of timeKey.
func keyTime(k uint64) time.Time {
	if k == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(k^(1<<63))).UTC()
}

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendTime(b []byte, t time.Time) []byte { return appendUint64(b, timeKey(t)) }

// prioKey encodes a priority so that byte order is priority order.
func prioKey(p otpbot.Priority) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(p))^(1<<31))
}

func keyPrio(b []byte) otpbot.Priority {
	return otpbot.Priority(int32(binary.BigEndian.Uint32(b) ^ (1 << 31)))
}

// chatKey encodes a chat id so that all rows of one chat share a prefix.
func chatKey(chat int64) []byte {
	return appendUint64(nil, uint64(chat)^(1<<63))
}

func getUint64(b *bbolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint64(b *bbolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, appendUint64(nil, v))
}

// clone copies a key or value out of a transaction's memory.
func clone(b []byte) []byte { return append([]byte(nil), b...) }

// hasPrefix reports whether k starts with prefix.
func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}
