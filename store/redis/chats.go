package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// Chat settings: "cs:CHAT" is a hash setting → value (one field per
// otpbot.ChatSetting, so two processes changing two settings at once
// both win), "cs" the set of chats that have one (for Export). They do
// not expire.

func (k keys) chatSettings(chat int64) string { return k.base + "cs:" + strconv.FormatInt(chat, 10) }
func (k keys) chats() string                  { return k.base + "cs" }

// setChatScript sets (or, for "", deletes) one field and keeps the index:
// KEYS[1] = the chat's hash, KEYS[2] = the set of chats; chat is the
// chat id.
var setChatScript = goredis.NewScript(luaSetChatArgs + `
if value == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, value) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], chat) else redis.call('SADD', KEYS[2], chat) end
return 1
`)

// ChatSettings returns the settings of chatID (only its id when it has
// none).
func (s *Store) ChatSettings(ctx context.Context, chatID int64) (otpbot.ChatSettings, error) {
	fields, err := s.client.HGetAll(ctx, s.k.chatSettings(chatID)).Result()
	if err != nil {
		return otpbot.ChatSettings{ChatID: chatID}, wrap("chat settings", err)
	}
	cs := otpbot.ChatSettings{ChatID: chatID}
	for f, v := range fields {
		cs = cs.Set(otpbot.ChatSetting(f), v)
	}
	return cs, nil
}

// SetChatSetting changes one setting of chatID.
func (s *Store) SetChatSetting(ctx context.Context, chatID int64, setting otpbot.ChatSetting, value string) error {
	if !setting.Valid() {
		return fmt.Errorf("redis set chat setting: unknown setting %q", setting)
	}
	id := strconv.FormatInt(chatID, 10)
	err := setChatScript.Run(ctx, s.client, []string{s.k.chatSettings(chatID), s.k.chats()},
		(&setChatArgs{Field: string(setting), Value: value, Chat: id}).argv()...).Err()
	return wrap("set chat setting", err)
}

// exportChats emits the settings of every chat that has some.
func (s *Store) exportChats(ctx context.Context, fn func(otpbot.Record) error) error {
	ids, err := s.client.SMembers(ctx, s.k.chats()).Result()
	if err != nil {
		return wrap("export chat settings", err)
	}
	slices.Sort(ids)
	for _, v := range ids {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("redis export chat settings: chat %q: %w", v, err)
		}
		cs, err := s.ChatSettings(ctx, id)
		if err != nil {
			return err
		}
		if cs.Empty() {
			continue
		}
		if err := fn(otpbot.Record{Chat: &cs}); err != nil {
			return err
		}
	}
	return nil
}

// importChat writes the settings of one chat, field by field.
func (s *Store) importChat(ctx context.Context, cs otpbot.ChatSettings) error {
	for _, f := range []struct {
		setting otpbot.ChatSetting
		value   string
	}{
		{otpbot.SettingLanguage, cs.Language}, {otpbot.SettingTimeZone, cs.TimeZone},
		{otpbot.SettingUserLanguage, cs.UserLanguage}, {otpbot.SettingMenu, cs.Menu},
	} {
		if f.value == "" {
			continue
		}
		if err := s.SetChatSetting(ctx, cs.ChatID, f.setting, f.value); err != nil {
			return err
		}
	}
	return nil
}
