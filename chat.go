package otpbot

import "context"

// ChatSettings are one chat's choices of how otpbot writes to it, and
// what otpbot learned of its user. A zero field means "not chosen": the
// language then follows UserLanguage in a private chat, else the
// configured default, and the time zone the configured default.
type ChatSettings struct {
	ChatID int64 `json:"chat_id"`
	// Language is the language the chat chose with /language (a BCP 47
	// tag: "ru", "pt-BR").
	Language string `json:"language,omitempty"`
	// TimeZone is the IANA time zone the chat chose with /timezone
	// ("Europe/Madrid").
	TimeZone string `json:"time_zone,omitempty"`
	// UserLanguage is the Telegram language_code of a private chat's
	// user, as last seen when they talked to the bot; the code messages
	// (sent with no user at hand) follow it until the chat chooses one.
	UserLanguage string `json:"user_language,omitempty"`
	// Menu is the command menu this chat was given as an admin's private
	// chat (MenuAdmin), "" for none: a user removed from the admins has
	// theirs taken back the next time they talk to the bot.
	Menu string `json:"menu,omitempty"`
}

// MenuAdmin is ChatSettings.Menu of an admin's private chat.
const MenuAdmin = "admin"

// ChatSetting names one field of ChatSettings.
type ChatSetting string

// The fields of ChatSettings that SetChatSetting writes.
const (
	SettingLanguage     ChatSetting = "language"
	SettingTimeZone     ChatSetting = "time_zone"
	SettingUserLanguage ChatSetting = "user_language"
	SettingMenu         ChatSetting = "menu"
)

// Set returns s with setting changed to value; an unknown setting leaves
// s as it is. Both stores apply it.
func (s ChatSettings) Set(setting ChatSetting, value string) ChatSettings {
	switch setting {
	case SettingLanguage:
		s.Language = value
	case SettingTimeZone:
		s.TimeZone = value
	case SettingUserLanguage:
		s.UserLanguage = value
	case SettingMenu:
		s.Menu = value
	}
	return s
}

// Empty reports whether s holds nothing but its chat id: a store keeps
// no record of it.
func (s ChatSettings) Empty() bool { return s == ChatSettings{ChatID: s.ChatID} }

// Valid reports whether setting is one SetChatSetting writes.
func (c ChatSetting) Valid() bool {
	return c == SettingLanguage || c == SettingTimeZone || c == SettingUserLanguage || c == SettingMenu
}

// ChatSettingsStore keeps each chat's settings.
type ChatSettingsStore interface {
	// ChatSettings returns the settings of chatID; a chat that never set
	// anything gets ChatSettings{ChatID: chatID}.
	ChatSettings(ctx context.Context, chatID int64) (ChatSettings, error)
	// SetChatSetting changes one setting of chatID ("" clears it),
	// leaving the others as they are even when another process changes
	// them at the same time.
	SetChatSetting(ctx context.Context, chatID int64, setting ChatSetting, value string) error
}
