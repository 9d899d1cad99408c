package bolt

import (
	"context"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
	bbolt "go.etcd.io/bbolt"
)

// redactExpired drops the code and link of a live message whose expiry
// passed at now, and reports whether it did. The message stays live: its
// pending work (the expiry tick, or a send retried while Telegram was
// away) still edits the Telegram message into its expired form, which
// needs no code. It gets a new version (UpdatedAt), so that a writer
// holding the copy with the code loses to ErrConflict.
func redactExpired(m *otpbot.Message, now time.Time) bool {
	if m.State != otpbot.StateLive || !m.Event.Expired(now) || (m.Event.Code == "" && m.Event.Link == "") {
		return false
	}
	m.Event = m.Event.Redacted()
	if now.After(m.UpdatedAt) {
		m.UpdatedAt = now
	} else {
		m.UpdatedAt = m.UpdatedAt.Add(time.Nanosecond)
	}
	return true
}

// getMessage loads a message; ok is false when there is none.
func getMessage(tx *bbolt.Tx, id string) (otpbot.Message, bool, error) {
	k, ok := messageKey(tx, id)
	if !ok {
		return otpbot.Message{}, false, nil
	}
	return getMessageAt(tx, k)
}

// getMessageAt loads the message at msgs key k.
func getMessageAt(tx *bbolt.Tx, k []byte) (otpbot.Message, bool, error) {
	v := tx.Bucket(bMsgs).Get(k)
	if v == nil {
		return otpbot.Message{}, false, nil
	}
	m, err := decodeMessage(v)
	return m, err == nil, err
}

// putMessage stores m, without its code once it is final. A message that
// becomes final also loses a Rendered carried over from its live version:
// that is a hash of a text that showed the code. (A Rendered the
// deliverer computed for the final text differs from the live one and is
// kept, so an edit that would change nothing is still skipped.)
func putMessage(tx *bbolt.Tx, m otpbot.Message) error {
	k, err := newMessageKey(tx, m.ID)
	if err != nil {
		return err
	}
	b := tx.Bucket(bMsgs)
	old := b.Get(k)
	if m.State.Final() {
		m.Event = m.Event.Redacted()
		if m.Rendered != "" && old != nil {
			prev, err := decodeMessage(old)
			if err != nil {
				return err
			}
			if !prev.State.Final() && prev.Rendered == m.Rendered {
				m.Rendered = ""
			}
		}
	}
	v := encodeMessage(m)
	if old == nil {
		// Indexed once, when new: an unchanged index entry rewritten at
		// every update would dirty its page for nothing.
		if err := tx.Bucket(bMessagesByChat).Put(append(chatKey(m.Target.ChatID), k...), nil); err != nil {
			return fmt.Errorf("index message: %w", err)
		}
	}
	if err := b.Put(k, v); err != nil {
		return fmt.Errorf("put message: %w", err)
	}
	return nil
}

// deleteMessage removes the message at msgs key k, and its group's base
// when nothing is left under it.
func deleteMessage(tx *bbolt.Tx, k []byte, m otpbot.Message) error {
	if err := tx.Bucket(bMessagesByChat).Delete(append(chatKey(m.Target.ChatID), k...)); err != nil {
		return fmt.Errorf("unindex message: %w", err)
	}
	if err := tx.Bucket(bMsgs).Delete(k); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	if group, _, ok := splitMessageID(m.ID); ok {
		if err := dropBase(tx, group, k[:baseLen]); err != nil {
			return fmt.Errorf("delete message: %w", err)
		}
	}
	return nil
}

// forEachMessage calls fn for every stored message with its msgs key.
func forEachMessage(tx *bbolt.Tx, fn func(k []byte, m otpbot.Message) error) error {
	return tx.Bucket(bMsgs).ForEach(func(k, v []byte) error {
		if len(k) != msgKeyLen {
			return nil // a task
		}
		m, err := decodeMessage(v)
		if err != nil {
			return err
		}
		return fn(k, m)
	})
}

// Message returns the message id.
func (s *Store) Message(ctx context.Context, id string) (otpbot.Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return otpbot.Message{}, false, fmt.Errorf("store: message: %w", err)
	}
	var (
		m  otpbot.Message
		ok bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		m, ok, err = getMessage(tx, id)
		return err
	})
	if err != nil {
		return otpbot.Message{}, false, wrap("message", err)
	}
	return m, ok, nil
}

// MessagesForChat lists the messages of chat, every topic included.
func (s *Store) MessagesForChat(ctx context.Context, chatID int64) ([]otpbot.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: messages for chat: %w", err)
	}
	var out []otpbot.Message
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := chatKey(chatID)
		c := tx.Bucket(bMessagesByChat).Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			m, ok, err := getMessageAt(tx, k[len(prefix):])
			if err != nil {
				return err
			}
			if ok {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("messages for chat", err)
	}
	return out, nil
}

// LiveMessages lists the messages in StateLive.
func (s *Store) LiveMessages(ctx context.Context) ([]otpbot.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: live messages: %w", err)
	}
	var out []otpbot.Message
	err := s.db.View(func(tx *bbolt.Tx) error {
		return forEachMessage(tx, func(_ []byte, m otpbot.Message) error {
			if m.State == otpbot.StateLive {
				out = append(out, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, wrap("live messages", err)
	}
	return out, nil
}

// UpdateMessage stores msg if the stored version is still prev, and
// enqueues next with it.
func (s *Store) UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: update message: %w", err)
	}
	// Through the group commit: a deliverer marks every send as started
	// here, so these writes are as frequent as pushes.
	err := s.commits.Update(func(tx *bbolt.Tx) error {
		stored, ok, err := getMessage(tx, msg.ID)
		if err != nil {
			return err
		}
		if !ok {
			return otpbot.ErrNotFound
		}
		if !stored.UpdatedAt.Equal(prev) {
			return otpbot.ErrConflict
		}
		if err := putMessage(tx, msg); err != nil {
			return err
		}
		for _, t := range next {
			if err := putTask(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap("update message", err)
	}
	if len(next) > 0 {
		s.notify()
	}
	return nil
}
