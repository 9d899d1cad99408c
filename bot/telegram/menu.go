package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
)

// The command menu Telegram shows under the message field
// (setMyCommands), per scope and language.

// Command is one entry of the command menu: the command without its
// slash, and what it does (plain text, 1 to 256 characters).
type Command struct {
	Name        string `json:"command"`
	Description string `json:"description"`
}

// MenuScope is whom a command menu is for: everyone (ChatID 0, the
// default scope), or one chat (BotCommandScopeChat: an admin's private
// chat).
type MenuScope struct {
	ChatID int64
}

// scopeJSON is the scope parameter as the Bot API defines it.
func (s MenuScope) scopeJSON() string {
	if s.ChatID == 0 {
		return `{"type":"default"}`
	}
	return `{"type":"chat","chat_id":` + strconv.FormatInt(s.ChatID, 10) + `}`
}

// SetMyCommands sets the command menu of scope for users whose Telegram
// language is lang (a two-letter ISO 639-1 code; "" for everyone whose
// language has no list of its own).
func (c *Client) SetMyCommands(ctx context.Context, cmds []Command, scope MenuScope, lang string) error {
	data, err := json.Marshal(cmds)
	if err != nil {
		return fmt.Errorf("setMyCommands: %w", err)
	}
	p := tgbotapi.Params{"commands": string(data), "scope": scope.scopeJSON()}
	p.AddNonEmpty("language_code", lang)
	_, err = c.call(ctx, "setMyCommands", p, 0)
	return err
}

// DeleteMyCommands removes the command menu of scope and lang, so the
// broader one applies again.
func (c *Client) DeleteMyCommands(ctx context.Context, scope MenuScope, lang string) error {
	p := tgbotapi.Params{"scope": scope.scopeJSON()}
	p.AddNonEmpty("language_code", lang)
	_, err := c.call(ctx, "deleteMyCommands", p, 0)
	return err
}

// MenuSetter is what sets the command menu: the Client, or a Paced
// around it.
type MenuSetter interface {
	SetMyCommands(ctx context.Context, cmds []Command, scope MenuScope, lang string) error
	DeleteMyCommands(ctx context.Context, scope MenuScope, lang string) error
}

// SetMyCommands sets a command menu under the budget; see Paced. A Paced
// around a Replier that cannot set menus answers an error.
func (p *Paced) SetMyCommands(ctx context.Context, cmds []Command, scope MenuScope, lang string) error {
	m, ok := p.next.(MenuSetter)
	if !ok {
		return fmt.Errorf("setMyCommands: %T cannot set the command menu", p.next)
	}
	// A menu puts nothing in a chat: the bot's global budget only.
	return p.do(ctx, otpbot.Target{}, "setMyCommands", func(ctx context.Context) error {
		return m.SetMyCommands(ctx, cmds, scope, lang)
	})
}

// DeleteMyCommands removes a command menu under the budget; see Paced.
func (p *Paced) DeleteMyCommands(ctx context.Context, scope MenuScope, lang string) error {
	m, ok := p.next.(MenuSetter)
	if !ok {
		return fmt.Errorf("deleteMyCommands: %T cannot set the command menu", p.next)
	}
	return p.do(ctx, otpbot.Target{}, "deleteMyCommands", func(ctx context.Context) error {
		return m.DeleteMyCommands(ctx, scope, lang)
	})
}
