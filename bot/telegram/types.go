package telegram

import (
	"context"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
)

// OutMessage is a message otpbot sends or edits, already rendered. It covers
// what the library cannot express itself (forum topics, protect_content,
// copy_text buttons), which is why the client sends it as raw parameters.
type OutMessage struct {
	Target otpbot.Target
	// Text is HTML (parse_mode HTML), escaped by the templates.
	Text string
	// Buttons is an inline keyboard, one slice per row; nil for none. On an
	// edit, nil removes the keyboard.
	Buttons [][]Button
	// Protect sets protect_content: no forwarding or saving of code messages.
	Protect bool
	// ReplyTo is the Telegram message id this one answers; 0 for none.
	ReplyTo int
	// Plain sends Text without parse mode (no HTML): the fallback after
	// Telegram refused the HTML of a message.
	Plain bool
}

// Button is one inline keyboard button. Exactly one of Data, URL and
// CopyText is set.
type Button struct {
	Text     string
	Data     string // callback_data, at most 64 bytes
	URL      string
	CopyText string // copy_text: copies the value to the clipboard on tap
}

// UpdateHandler handles one Telegram update (a command, a callback query).
// The poll loop and the webhook endpoint both feed it, each update once.
type UpdateHandler interface {
	HandleUpdate(ctx context.Context, upd tgbotapi.Update) error
}
