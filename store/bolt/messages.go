package bolt

import (
	"context"
	"encoding/json"
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
	v := tx.Bucket(bMessages).Get([]byte(id))
	if v == nil {
		return otpbot.Message{}, false, nil
	}
	var m otpbot.Message
	if err := json.Unmarshal(v, &m); err != nil {
		return otpbot.Message{}, false, fmt.Errorf("decode message: %w", err)
	}
	return m, true, nil
}

// putMessage stores m, without its code once it is final. A message that
// becomes final also loses a Rendered carried over from its live version:
// that is a hash of a text that showed the code. (A Rendered the
// deliverer computed for the final text differs from the live one and is
// kept, so an edit that would change nothing is still skipped.)
func putMessage(tx *bbolt.Tx, m otpbot.Message) error {
	if m.State.Final() {
		m.Event = m.Event.Redacted()
		if m.Rendered != "" {
			old, ok, err := getMessage(tx, m.ID)
			if err != nil {
				return err
			}
			if ok && !old.State.Final() && old.Rendered == m.Rendered {
				m.Rendered = ""
			}
		}
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if err := tx.Bucket(bMessages).Put([]byte(m.ID), v); err != nil {
		return fmt.Errorf("put message: %w", err)
	}
	if err := tx.Bucket(bMessagesByChat).Put(append(chatKey(m.Target.ChatID), m.ID...), nil); err != nil {
		return fmt.Errorf("index message: %w", err)
	}
	return nil
}

// deleteMessage removes message m.
func deleteMessage(tx *bbolt.Tx, m otpbot.Message) error {
	if err := tx.Bucket(bMessagesByChat).Delete(append(chatKey(m.Target.ChatID), m.ID...)); err != nil {
		return fmt.Errorf("unindex message: %w", err)
	}
	if err := tx.Bucket(bMessages).Delete([]byte(m.ID)); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	return nil
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
			m, ok, err := getMessage(tx, string(k[len(prefix):]))
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
		return tx.Bucket(bMessages).ForEach(func(_, v []byte) error {
			var m otpbot.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message: %w", err)
			}
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
