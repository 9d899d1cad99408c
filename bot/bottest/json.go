package bottest

import "strconv"

type jsonUser struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	UserName     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

type jsonChat struct {
	ID      int64  `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title,omitempty"`
	IsForum bool   `json:"is_forum,omitempty"`
}

type jsonEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

type jsonCopyText struct {
	Text string `json:"text"`
}

type jsonButton struct {
	Text         string        `json:"text"`
	CallbackData string        `json:"callback_data,omitempty"`
	URL          string        `json:"url,omitempty"`
	CopyText     *jsonCopyText `json:"copy_text,omitempty"`
}

type jsonMarkup struct {
	InlineKeyboard [][]jsonButton `json:"inline_keyboard"`
}

type jsonMessage struct {
	MessageID      int          `json:"message_id"`
	ThreadID       int          `json:"message_thread_id,omitempty"`
	IsTopic        bool         `json:"is_topic_message,omitempty"`
	From           *jsonUser    `json:"from,omitempty"`
	Date           int64        `json:"date"`
	EditDate       int64        `json:"edit_date,omitempty"`
	Chat           jsonChat     `json:"chat"`
	Text           string       `json:"text,omitempty"`
	Entities       []jsonEntity `json:"entities,omitempty"`
	ReplyMarkup    *jsonMarkup  `json:"reply_markup,omitempty"`
	HasProtected   bool         `json:"has_protected_content,omitempty"`
	ReplyToMessage *jsonMessage `json:"reply_to_message,omitempty"`
}

func user(id int64, username, lang string) *jsonUser {
	if username == "" {
		username = "user" + strconv.FormatInt(id, 10)
	}
	return &jsonUser{ID: id, FirstName: "User " + strconv.FormatInt(id, 10), UserName: username, LanguageCode: lang}
}

func (c *chat) json(forum bool) jsonChat {
	jc := jsonChat{ID: c.id, Type: c.typ, IsForum: forum}
	if c.typ != "private" {
		jc.Title = "Chat " + strconv.FormatInt(c.id, 10)
	}
	return jc
}

// SendCommand injects a text message from userID in chatID, as an update.
// A leading "/word" (or "/word@bot") gets a bot_command entity, as
// Telegram marks commands. It returns the message's id.
