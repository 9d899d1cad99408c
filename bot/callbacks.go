package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// Callback data is "name" or "name:arg" (at most 64 bytes, Telegram's
// limit); name picks the handler. The approval buttons ("approve",
// "decline", with ":confirm:NONCE" or ":cancel:NONCE") are routed only
// when approvals are configured (approve.go, approve_confirm.go).

// callbackRequest is one button press.
type callbackRequest struct {
	query *tgbotapi.CallbackQuery
	// chatID and messageID locate the message under the button; the chat
	// is the one Telegram says the press came from, so a handler that only
	// looks inside this chat is authorised by construction.
	chatID    int64
	messageID int
	user      int64
	admin     bool
	arg       string
	// private is true in a private chat; loc is the chat's templates,
	// the answer's language (see Commands.chatLocale), settings the
	// chat's settings.
	private  bool
	loc      *templates.Locale
	settings otpbot.ChatSettings
	// answerData is the data of the answer's piece, when it takes some.
	answerData any
}

// callbackFunc handles a button press and returns the short answer shown
// to the user who pressed it (alert: as a dialog rather than a toast): the
// name of its piece (answers.tmpl), rendered with q.answerData in the
// chat's language.
type callbackFunc func(ctx context.Context, q *callbackRequest) (answer string, alert bool, err error)

// Answers to button presses: the names of their pieces.
const (
	answerHidden   = "answer_hidden"
	answerAlready  = "answer_already_hidden"
	answerGone     = "answer_gone"
	answerBroken   = "answer_broken"
	answerFailed   = "answer_failed"
	answerNotAdmin = "answer_not_admin"
	answerLanguage = "answer_language"
)

func (c *Commands) callbackRoutes() map[string]callbackFunc {
	routes := map[string]callbackFunc{
		telegram.CallbackHide: c.hide,
		callbackLanguage:      c.chooseLanguage,
	}
	if c.approvals != nil {
		routes[telegram.CallbackApprove] = c.approvalTap(true)
		routes[telegram.CallbackDecline] = c.approvalTap(false)
	}
	return routes
}

// handleCallback dispatches a button press and always answers it, so the
// user's client stops showing a spinner.
func (c *Commands) handleCallback(ctx context.Context, cq *tgbotapi.CallbackQuery) error {
	name, arg, _ := strings.Cut(cq.Data, ":")
	fn := c.callbacks[name]
	if fn == nil || cq.Message == nil || cq.Message.Chat == nil || cq.From == nil {
		// An unknown button (an old keyboard), or one under an inline
		// message we never sent.
		c.count("button", "refused")
		loc := c.tmpl.Default()
		if cq.Message != nil && cq.Message.Chat != nil {
			loc, _ = c.chatLocale(ctx, cq.Message.Chat.ID, cq.Message.Chat.IsPrivate(), cq.From)
		}
		return c.answer(ctx, cq, loc.Label(answerBroken, nil), false, nil)
	}
	q := &callbackRequest{
		query: cq, chatID: cq.Message.Chat.ID, messageID: cq.Message.MessageID,
		user: cq.From.ID, admin: c.admins[cq.From.ID], arg: arg, private: cq.Message.Chat.IsPrivate(),
	}
	q.loc, q.settings = c.chatLocale(ctx, q.chatID, q.private, cq.From)
	answer, alert, err := fn(ctx, q)
	if err != nil {
		c.count("button_"+name, "error")
		return c.answer(ctx, cq, q.loc.Label(answerFailed, nil), false, fmt.Errorf("button %q in chat %d: %w", name, q.chatID, err))
	}
	c.count("button_"+name, "ok")
	return c.answer(ctx, cq, q.loc.Label(answer, q.answerData), alert, nil)
}

// answer queues the answer to a button press (see replyQueue), in order
// with the replies of the chat it came from, and returns err.
func (c *Commands) answer(_ context.Context, cq *tgbotapi.CallbackQuery, text string, alert bool, err error) error {
	var chat int64
	if cq.Message != nil && cq.Message.Chat != nil {
		chat = cq.Message.Chat.ID
	}
	id := cq.ID
	c.outq.push(chat, func(ctx context.Context) {
		if aerr := c.client.AnswerCallback(ctx, id, text, alert); aerr != nil {
			c.log.Warn("callback answer not sent", "chat", chat, "err", aerr)
		}
	})
	return err
}

// hide redacts a live code for the chat that holds the message: it marks the
// message hidden and queues an update task, in one store transaction, so the
// deliverer re-renders it without the code (at PriorityUpdate, ahead of any
// countdown refresh). Only messages of the pressing chat are looked at, so
// a press can never touch another chat's code.
func (c *Commands) hide(ctx context.Context, q *callbackRequest) (string, bool, error) {
	msgs, err := c.store.MessagesForChat(ctx, q.chatID)
	if err != nil {
		return "", false, fmt.Errorf("messages of chat: %w", err)
	}
	id := ""
	for _, m := range msgs {
		if m.TelegramID == q.messageID && m.Target.ChatID == q.chatID {
			id = m.ID
			break
		}
	}
	if id == "" {
		return answerGone, false, nil
	}
	// UpdateMessage fails with ErrConflict when the deliverer changed the
	// message meanwhile (a countdown refresh); read it again and retry.
	for attempt := 0; ; attempt++ {
		m, ok, err := c.store.Message(ctx, id)
		if err != nil {
			return "", false, fmt.Errorf("message: %w", err)
		}
		if !ok {
			return answerGone, false, nil
		}
		if m.State != otpbot.StateLive {
			return answerAlready, false, nil
		}
		now := c.now()
		prev := m.UpdatedAt
		m.State, m.UpdatedAt = otpbot.StateHidden, now
		if !now.After(prev) {
			// The version must change even when the clock did not move,
			// or a deliverer still holding prev would overwrite the hide.
			m.UpdatedAt = prev.Add(time.Nanosecond)
		}
		m.Event = m.Event.Redacted()
		task := otpbot.Task{
			ID: otpbot.TaskID(m.ID, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: m.ID, Target: m.Target, Due: now, Created: now,
		}
		err = c.store.UpdateMessage(ctx, prev, m, task)
		if err == nil {
			c.log.Info("code hidden", "target", m.Target, "message", m.TelegramID, "by", q.user)
			return answerHidden, false, nil
		}
		if !errors.Is(err, otpbot.ErrConflict) || attempt >= 4 {
			return "", false, fmt.Errorf("hide: %w", err)
		}
	}
}
