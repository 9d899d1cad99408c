package telegram

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
)

// The fake Bot API checks every request against Telegram's published
// schema and refuses, as a strict Telegram would, what today's Bot API
// does not define: parameters Bot API 7.0 replaced (which the frozen
// library still sends), misspellings, unknown or missing fields anywhere
// inside a JSON-serialized parameter. A refused request changes nothing.
func TestFakeRefusesWhatTheBotAPIDoesNotDefine(t *testing.T) {
	const button = `{"text":"Copy","copy_text":{"text":"123456"}}`
	send := func(extra tgbotapi.Params) tgbotapi.Params {
		p := tgbotapi.Params{"chat_id": "5", "text": "Code 123456"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	cases := []struct {
		name   string
		method string
		params tgbotapi.Params
		code   int
		// want are words the refusal must contain: what is wrong, where.
		want []string
	}{
		{"link previews turned off the pre-7.0 way", "sendMessage",
			send(tgbotapi.Params{"disable_web_page_preview": "true"}), 400,
			[]string{"unknown parameter", "disable_web_page_preview"}},
		{"a reply the pre-7.0 way", "sendMessage",
			send(tgbotapi.Params{"reply_to_message_id": "3"}), 400,
			[]string{"unknown parameter", "reply_to_message_id"}},
		{"a reply to a deleted message the pre-7.0 way", "sendMessage",
			send(tgbotapi.Params{"allow_sending_without_reply": "true"}), 400,
			[]string{"unknown parameter", "allow_sending_without_reply"}},
		{"an edit without previews the pre-7.0 way", "editMessageText",
			tgbotapi.Params{"chat_id": "5", "message_id": "1", "text": "expired", "disable_web_page_preview": "true"}, 400,
			[]string{"unknown parameter", "disable_web_page_preview"}},
		{"a misspelt parameter", "sendMessage",
			send(tgbotapi.Params{"protect_contnet": "true"}), 400,
			[]string{"unknown parameter", "protect_contnet"}},
		{"an unknown field in a button", "sendMessage",
			send(tgbotapi.Params{"reply_markup": `{"inline_keyboard":[[` + button + `,{"text":"Hide","callback_data":"hide","colour":"red"}]]}`}), 400,
			[]string{"reply_markup.inline_keyboard[0][1]", "unknown field", "colour", "InlineKeyboardButton"}},
		{"an unknown field in the keyboard", "sendMessage",
			send(tgbotapi.Params{"reply_markup": `{"inline_keyboard":[[` + button + `]],"resize":true}`}), 400,
			[]string{"reply_markup", "unknown field", "resize", "InlineKeyboardMarkup"}},
		{"a misspelt field in a copy_text button", "sendMessage",
			send(tgbotapi.Params{"reply_markup": `{"inline_keyboard":[[{"text":"Copy","copy_text":{"txt":"123456"}}]]}`}), 400,
			[]string{"reply_markup.inline_keyboard[0][0].copy_text", "txt", "CopyTextButton"}},
		{"a button without its text", "editMessageReplyMarkup",
			tgbotapi.Params{"chat_id": "5", "message_id": "1", "reply_markup": `{"inline_keyboard":[[{"callback_data":"hide"}]]}`}, 400,
			[]string{"reply_markup.inline_keyboard[0][0]", "required field", `"text"`, "InlineKeyboardButton"}},
		{"link preview options misspelt", "sendMessage",
			send(tgbotapi.Params{"link_preview_options": `{"disabled":true}`}), 400,
			[]string{"link_preview_options", "unknown field", "disabled", "LinkPreviewOptions"}},
		{"a Boolean field given as a string", "sendMessage",
			send(tgbotapi.Params{"link_preview_options": `{"is_disabled":"true"}`}), 400,
			[]string{"link_preview_options.is_disabled", "Boolean"}},
		{"reply parameters without the message", "sendMessage",
			send(tgbotapi.Params{"reply_parameters": `{"allow_sending_without_reply":true}`}), 400,
			[]string{"reply_parameters", "required field", "message_id", "ReplyParameters"}},
		{"a missing required parameter", "sendMessage",
			tgbotapi.Params{"chat_id": "5"}, 400,
			[]string{"required parameter", `"text"`}},
		{"a parameter that is not a number", "deleteMessage",
			tgbotapi.Params{"chat_id": "5", "message_id": "first"}, 400,
			[]string{"message_id", "Integer"}},
		{"a JSON parameter that is not JSON", "sendMessage",
			send(tgbotapi.Params{"reply_markup": `inline_keyboard=hide`}), 400,
			[]string{"reply_markup", "can't parse"}},
		{"a command without its description", "setMyCommands",
			tgbotapi.Params{"commands": `[{"command":"start"}]`}, 400,
			[]string{"commands[0]", "required field", "description", "BotCommand"}},
		{"a command scope missing its chat", "setMyCommands",
			tgbotapi.Params{"commands": `[{"command":"start","description":"Start"}]`, "scope": `{"type":"chat"}`}, 400,
			[]string{"scope", "chat_id", "BotCommandScopeChat"}},
		{"a command scope of no kind", "setMyCommands",
			tgbotapi.Params{"commands": `[]`, "scope": `{"type":"everyone"}`}, 400,
			[]string{"scope.type", "BotCommandScope"}},
		{"a misspelt method", "sendMesage",
			send(nil), 404,
			[]string{"sendMesage"}},
	}
	s := bottest.New(t)
	c := newTestClient(t, s, nil)
	ctx := context.Background()
	// A message to edit, so that only the schema stands in the way.
	if _, err := c.Send(ctx, OutMessage{Target: otpbot.Target{ChatID: 5}, Text: "Code 123456", Buttons: [][]Button{{{Text: "Hide", Data: "hide"}}}}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Messages(5)
			_, err := c.call(ctx, tc.method, tc.params, 0)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("%s answered %v, want %d", tc.method, err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(ae.Description, w) {
					t.Errorf("refusal %q does not say %q", ae.Description, w)
				}
			}
			if tc.code == 400 && !strings.HasPrefix(ae.Description, "Bad Request: ") {
				t.Errorf("refusal %q is not Telegram's Bad Request", ae.Description)
			}
			refused := s.TakeRefused()
			if len(refused) != 1 || refused[0].Method != tc.method || refused[0].Refusal != ae.Description || refused[0].Code != tc.code {
				t.Fatalf("refused calls %+v, want this %s", refused, tc.method)
			}
			calls := s.Calls(tc.method)
			if last := calls[len(calls)-1]; last.Refusal != ae.Description {
				t.Errorf("the call is recorded with refusal %q", last.Refusal)
			}
			if after := s.Messages(5); len(after) != len(before) || after[0].Text != before[0].Text || after[0].Edits != before[0].Edits {
				t.Errorf("a refused request changed the chat: %+v, was %+v", after, before)
			}
		})
	}
}

// Every request the bot makes passes the schema check, and speaks today's
// Bot API: link previews are turned off with link_preview_options, a
// reply goes with reply_parameters, and none of the parameters Bot API
// 7.0 replaced is sent.
func TestBotCallsPassTheSchema(t *testing.T) {
	s := bottest.New(t)
	c := newTestClient(t, s, nil) // getMe
	ctx := context.Background()
	target := otpbot.Target{ChatID: -1005, ThreadID: 12}
	id, err := c.Send(ctx, OutMessage{
		Target: target, Text: "Code <code>123456</code> for •••• 1234", Protect: true, ReplyTo: 3,
		Buttons: [][]Button{
			{{Text: "Copy", CopyText: "123456"}, {Text: "Used it — hide", Data: "hide"}},
			{{Text: "Open", URL: "https://pay.example/confirm?x=1"}},
		},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := c.Send(ctx, OutMessage{Target: otpbot.Target{ChatID: 5}, Text: "plain", Plain: true}); err != nil {
		t.Fatalf("Send plain: %v", err)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"edit keeping buttons", func() error {
			return c.Edit(ctx, id, OutMessage{Target: target, Text: "expires in 4:00", Buttons: [][]Button{{{Text: "Copy", CopyText: "123456"}}}})
		}},
		{"clear buttons", func() error {
			if cleared, text, err := c.ClearButtons(ctx, target, id); err != nil || !cleared || text != "expires in 4:00" {
				return fmt.Errorf("cleared %t, text %q: %w", cleared, text, err)
			}
			return nil
		}},
		{"edit without buttons", func() error { return c.Edit(ctx, id, OutMessage{Target: target, Text: "expired"}) }},
		{"answer a button", func() error {
			return c.AnswerCallback(ctx, s.PressButton(-1005, 42, id, "hide"), "Hidden", true)
		}},
		{"poll updates", func() error { _, err := c.GetTopicUpdates(ctx, 0, 0); return err }},
		{"delete", func() error { return c.Delete(ctx, target, id) }},
		{"set the webhook", func() error { return c.SetWebhook(ctx, "https://otp.example/telegram/x", "s3cret") }},
		{"delete the webhook", func() error { return c.DeleteWebhook(ctx) }},
		{"set the default menu", func() error {
			return c.SetMyCommands(ctx, []Command{{Name: "start", Description: "Greeting"}}, MenuScope{}, "")
		}},
		{"set an admin's menu in Russian", func() error {
			return c.SetMyCommands(ctx, []Command{{Name: "link", Description: "Привязать карту"}}, MenuScope{ChatID: 42}, "ru")
		}},
		{"delete an admin's menu", func() error { return c.DeleteMyCommands(ctx, MenuScope{ChatID: 42}, "ru") }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if refused := s.TakeRefused(); len(refused) != 0 {
		t.Fatalf("the bot's own requests were refused: %+v", refused)
	}
	methods := map[string]bool{}
	legacy := []string{"disable_web_page_preview", "reply_to_message_id", "allow_sending_without_reply"}
	for _, call := range s.Calls("") {
		methods[call.Method] = true
		if call.Code != 0 {
			t.Errorf("%s answered %d", call.Method, call.Code)
		}
		for _, p := range legacy {
			if _, ok := call.Params[p]; ok {
				t.Errorf("%s sent %s, which Bot API 7.0 replaced", call.Method, p)
			}
		}
		switch call.Method {
		case "sendMessage", "editMessageText":
			if got := call.Params["link_preview_options"]; got != `{"is_disabled":true}` {
				t.Errorf("%s link_preview_options = %q, want previews disabled", call.Method, got)
			}
		}
	}
	for _, m := range []string{"getMe", "sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage",
		"answerCallbackQuery", "getUpdates", "setWebhook", "deleteWebhook", "setMyCommands", "deleteMyCommands"} {
		if !methods[m] {
			t.Errorf("%s was not exercised", m)
		}
	}
	first := s.Calls("sendMessage")[0]
	if got := first.Params["reply_parameters"]; got != `{"message_id":3,"allow_sending_without_reply":true}` {
		t.Errorf("reply_parameters = %q, want message 3, sent even if it was deleted", got)
	}
}
