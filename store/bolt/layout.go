package bolt

import (
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// Where a push's records live, so that a shared commit dirties few pages.
//
// Event ids and message groups are keyed hashes: keyed by them, every push
// of a shared commit landed on a leaf of its own in each bucket (the dedupe
// mark, the message, its index by chat, the task). Now one lookup by id is
// left, in ids, and what a push writes besides is keyed by a sequence
// number, so it is appended to the last leaves, and the writes that follow
// (the send mark, the sent message, its next task) find them there:
//
//	ids   id → seen (8 bytes; 0: no mark) [+ base (8 bytes)]
//	      An event id carries its dedupe mark; a group carries the base
//	      of its messages. A code's group is its event id, so one entry
//	      serves both.
//	msgs  base + target (24 bytes)        → Message (codec.go)
//	      base + target + slot (25 bytes) → the message's task in that
//	      slot (taskRecord, codec.go), next to its message
//
// base is the msgs bucket's sequence number when the group got its first
// message. A task that names no message, or a message whose group has no
// base yet, is kept in tasks by its id ("loose"), as all tasks were.

// Sizes of the parts of a msgs key.
const (
	baseLen    = 8
	msgKeyLen  = baseLen + 16
	taskKeyLen = msgKeyLen + 1
)

// idEntry is the value of an ids entry.
type idEntry struct {
	seen uint64 // timeKey of the dedupe mark; 0 for none
	base []byte // the group's base; nil for none
}

func getID(tx *bbolt.Tx, id string) idEntry {
	v := tx.Bucket(bIDs).Get([]byte(id))
	var e idEntry
	if len(v) >= 8 {
		e.seen = uint64FromBytes(v)
	}
	if len(v) >= 8+baseLen {
		e.base = clone(v[8 : 8+baseLen])
	}
	return e
}

// putID stores e, or deletes the entry when it holds nothing.
func putID(tx *bbolt.Tx, id string, e idEntry) error {
	b := tx.Bucket(bIDs)
	if e.seen == 0 && e.base == nil {
		return b.Delete([]byte(id))
	}
	v := appendUint64(make([]byte, 0, 8+baseLen), e.seen)
	return b.Put([]byte(id), append(v, e.base...))
}

// targetKey encodes a target in a msgs key.
func targetKey(t otpbot.Target) []byte {
	return appendUint64(chatKey(t.ChatID), uint64(int64(t.ThreadID))^(1<<63))
}

// splitMessageID is the inverse of otpbot.MessageKey; ok is false for an
// id that is not of that form.
func splitMessageID(id string) (group string, target otpbot.Target, ok bool) {
	i := strings.LastIndexByte(id, '@')
	if i < 0 {
		return "", otpbot.Target{}, false
	}
	t, err := otpbot.ParseTarget(id[i+1:])
	if err != nil || t.String() != id[i+1:] {
		return "", otpbot.Target{}, false
	}
	return id[:i], t, true
}

// messageKey is where message id lives in msgs; ok is false when its
// group has no base (so it has no message).
func messageKey(tx *bbolt.Tx, id string) ([]byte, bool) {
	group, target, ok := splitMessageID(id)
	if !ok {
		return nil, false
	}
	base := getID(tx, group).base
	if base == nil {
		return nil, false
	}
	return append(base, targetKey(target)...), true
}

// newMessageKey is where message id lives or is to live, giving its group
// a base when it has none.
func newMessageKey(tx *bbolt.Tx, id string) ([]byte, error) {
	group, target, ok := splitMessageID(id)
	if !ok {
		return nil, fmt.Errorf("message id %q is not of the form group@target", otpbot.Ref(id))
	}
	e := getID(tx, group)
	if e.base == nil {
		seq, err := tx.Bucket(bMsgs).NextSequence()
		if err != nil {
			return nil, fmt.Errorf("message base: %w", err)
		}
		e.base = appendUint64(nil, seq)
		if err := putID(tx, group, e); err != nil {
			return nil, fmt.Errorf("message base: %w", err)
		}
	}
	return append(e.base, targetKey(target)...), nil
}

// slotOf is the byte a task slot adds to its message's key, and false for
// a task that is not its message's task in a slot.
func slotOf(t otpbot.Task) (byte, bool) {
	if t.MessageID == "" || t.ID != otpbot.TaskID(t.MessageID, t.Kind) {
		return 0, false
	}
	switch t.Kind {
	case otpbot.TaskSend:
		return 's', true
	case otpbot.TaskUpdate:
		return 'u', true
	case otpbot.TaskRefresh, otpbot.TaskExpire:
		return 't', true
	}
	return 0, false
}

// taskLoc is where a task record is: next to its message (msgKey, the
// 25-byte key in msgs) or loose in tasks under id.
type taskLoc struct {
	msgKey []byte
	id     string
}

// ref is the task's reference in the ready and created indexes.
func (l taskLoc) ref() []byte {
	if l.msgKey != nil {
		return append([]byte{'m'}, l.msgKey...)
	}
	return append([]byte{'l'}, l.id...)
}

// refLoc is the inverse of ref.
func refLoc(ref []byte) (taskLoc, bool) {
	switch {
	case len(ref) == 1+taskKeyLen && ref[0] == 'm':
		return taskLoc{msgKey: clone(ref[1:])}, true
	case len(ref) > 0 && ref[0] == 'l':
		return taskLoc{id: string(ref[1:])}, true
	}
	return taskLoc{}, false
}

func (l taskLoc) get(tx *bbolt.Tx) []byte {
	if l.msgKey != nil {
		return tx.Bucket(bMsgs).Get(l.msgKey)
	}
	return tx.Bucket(bTasks).Get([]byte(l.id))
}

func (l taskLoc) put(tx *bbolt.Tx, v []byte) error {
	if l.msgKey != nil {
		return tx.Bucket(bMsgs).Put(l.msgKey, v)
	}
	return tx.Bucket(bTasks).Put([]byte(l.id), v)
}

func (l taskLoc) delete(tx *bbolt.Tx) error {
	if l.msgKey != nil {
		return tx.Bucket(bMsgs).Delete(l.msgKey)
	}
	return tx.Bucket(bTasks).Delete([]byte(l.id))
}

// taskLocs lists where task t may be: next to its message when its group
// has a base, and loose (a task enqueued before its message had a base
// stays loose).
func taskLocs(tx *bbolt.Tx, t otpbot.Task) []taskLoc {
	loose := taskLoc{id: t.ID}
	slot, ok := slotOf(t)
	if !ok {
		return []taskLoc{loose}
	}
	k, ok := messageKey(tx, t.MessageID)
	if !ok {
		return []taskLoc{loose}
	}
	return []taskLoc{{msgKey: append(k, slot)}, loose}
}

// newTaskLoc is where task t is to be written: next to its message when
// it is one of its slots, giving the group a base if it has none.
func newTaskLoc(tx *bbolt.Tx, t otpbot.Task) (taskLoc, error) {
	slot, ok := slotOf(t)
	if !ok {
		return taskLoc{id: t.ID}, nil
	}
	if _, _, ok := splitMessageID(t.MessageID); !ok {
		return taskLoc{id: t.ID}, nil
	}
	k, err := newMessageKey(tx, t.MessageID)
	if err != nil {
		return taskLoc{}, err
	}
	return taskLoc{msgKey: append(k, slot)}, nil
}

// dropBase removes the base of group when no message or task is left
// under it, so that ids does not keep groups whose messages were pruned.
func dropBase(tx *bbolt.Tx, group string, base []byte) error {
	if k, _ := tx.Bucket(bMsgs).Cursor().Seek(base); k != nil && hasPrefix(k, base) {
		return nil
	}
	e := getID(tx, group)
	if string(e.base) != string(base) {
		return nil
	}
	e.base = nil
	return putID(tx, group, e)
}

// seenAt is the time of a dedupe mark.
func seenAt(e idEntry) time.Time { return keyTime(e.seen) }

// idsValueLen reports whether v is an ids value.
func idsValueLen(v []byte) bool { return len(v) == 8 || len(v) == 8+baseLen }
