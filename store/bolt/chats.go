package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// ChatSettings returns the settings of chatID (only its id when it has
// none).
func (s *Store) ChatSettings(ctx context.Context, chatID int64) (otpbot.ChatSettings, error) {
	cs := otpbot.ChatSettings{ChatID: chatID}
	if err := ctx.Err(); err != nil {
		return cs, fmt.Errorf("store: chat settings: %w", err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		cs, err = chatSettings(tx, chatID)
		return err
	})
	return cs, wrap("chat settings", err)
}

// SetChatSetting changes one setting of chatID in one transaction; a chat
// left with no setting has no record.
func (s *Store) SetChatSetting(ctx context.Context, chatID int64, setting otpbot.ChatSetting, value string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: set chat setting: %w", err)
	}
	if !setting.Valid() {
		return fmt.Errorf("store: set chat setting: unknown setting %q", setting)
	}
	return wrap("set chat setting", s.db.Update(func(tx *bbolt.Tx) error {
		cs, err := chatSettings(tx, chatID)
		if err != nil {
			return err
		}
		return putChatSettings(tx, cs.Set(setting, value))
	}))
}

func chatSettings(tx *bbolt.Tx, chatID int64) (otpbot.ChatSettings, error) {
	cs := otpbot.ChatSettings{ChatID: chatID}
	v := tx.Bucket(bChats).Get(chatKey(chatID))
	if v == nil {
		return cs, nil
	}
	if err := json.Unmarshal(v, &cs); err != nil {
		return cs, fmt.Errorf("decode chat settings: %w", err)
	}
	cs.ChatID = chatID
	return cs, nil
}

// putChatSettings stores cs, or deletes the record of a chat left with
// no setting.
func putChatSettings(tx *bbolt.Tx, cs otpbot.ChatSettings) error {
	b := tx.Bucket(bChats)
	if cs.Empty() {
		return b.Delete(chatKey(cs.ChatID))
	}
	v, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("encode chat settings: %w", err)
	}
	return b.Put(chatKey(cs.ChatID), v)
}

// exportChats emits the settings of every chat that has some.
func exportChats(tx *bbolt.Tx, fn func(otpbot.Record) error) error {
	return tx.Bucket(bChats).ForEach(func(_, v []byte) error {
		var cs otpbot.ChatSettings
		if err := json.Unmarshal(v, &cs); err != nil {
			return fmt.Errorf("decode chat settings: %w", err)
		}
		return fn(otpbot.Record{Chat: &cs})
	})
}
