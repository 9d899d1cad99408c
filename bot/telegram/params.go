package telegram

import (
	"encoding/json"
	"fmt"
)

// The parameters otpbot sends that are JSON objects, built as the current
// Bot API defines them (bottest checks each against its published schema).

// noLinkPreview is link_preview_options turning link previews off:
// otpbot's messages are codes and notices, and a preview of a link in one
// (a merchant's site) would only push the text out of view.
const noLinkPreview = `{"is_disabled":true}`

// replyParameters is reply_parameters answering messageID in the same
// chat; a reply whose original was deleted still goes out.
func replyParameters(messageID int) string {
	return fmt.Sprintf(`{"message_id":%d,"allow_sending_without_reply":true}`, messageID)
}

// keyboardJSON renders an inline keyboard; an empty one removes the
// keyboard on an edit.
func keyboardJSON(rows [][]Button) (string, error) {
	type copyText struct {
		Text string `json:"text"`
	}
	type button struct {
		Text         string    `json:"text"`
		CallbackData string    `json:"callback_data,omitempty"`
		URL          string    `json:"url,omitempty"`
		CopyText     *copyText `json:"copy_text,omitempty"`
	}
	kb := struct {
		InlineKeyboard [][]button `json:"inline_keyboard"`
	}{InlineKeyboard: [][]button{}}
	for _, row := range rows {
		if len(row) == 0 {
			continue
		}
		out := make([]button, 0, len(row))
		for _, b := range row {
			nb := button{Text: b.Text, CallbackData: b.Data, URL: b.URL}
			if b.CopyText != "" {
				nb.CopyText = &copyText{Text: b.CopyText}
			}
			set := 0
			for _, v := range []string{b.Data, b.URL, b.CopyText} {
				if v != "" {
					set++
				}
			}
			if set != 1 || b.Text == "" {
				return "", &APIError{Class: ClassBadRequest, Description: "button needs a text and exactly one of data, url, copy_text"}
			}
			if len(b.Data) > 64 {
				return "", &APIError{Class: ClassBadRequest, Description: "button data longer than 64 bytes"}
			}
			out = append(out, nb)
		}
		kb.InlineKeyboard = append(kb.InlineKeyboard, out)
	}
	data, err := json.Marshal(kb)
	if err != nil {
		return "", fmt.Errorf("keyboard: %w", err)
	}
	return string(data), nil
}
