package bottest

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

func (s *Server) sendMessage(p map[string]string) (any, *apiError) {
	c, _, aerr := s.target(p)
	if aerr != nil {
		return nil, aerr
	}
	if c.blocked {
		return nil, &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
	}
	if aerr := migrated(c); aerr != nil {
		return nil, aerr
	}
	if aerr := validateText(p["text"], p["parse_mode"]); aerr != nil {
		return nil, aerr
	}
	kb, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	m := &Message{ChatID: c.id, Text: p["text"], ParseMode: p["parse_mode"], Buttons: kb, SentAt: time.Now()}
	if v := p["message_thread_id"]; v != "" {
		if m.ThreadID, _ = strconv.Atoi(v); m.ThreadID <= 0 {
			return nil, &apiError{code: 400, desc: "Bad Request: message thread not found"}
		}
	}
	m.Protect = p["protect_content"] == "true"
	if v := p["reply_parameters"]; v != "" {
		var rp struct {
			MessageID int `json:"message_id"`
		}
		if json.Unmarshal([]byte(v), &rp) != nil {
			return nil, &apiError{code: 400, desc: "Bad Request: can't parse reply parameters JSON object"}
		}
		m.ReplyTo = rp.MessageID
	}
	if aerr := s.flood(c); aerr != nil {
		return nil, aerr
	}
	c.nextID++
	m.ID = c.nextID
	c.msgs[m.ID] = m
	c.order = append(c.order, m.ID)
	return s.render(c, m), nil
}

func (s *Server) editMessage(method string, p map[string]string) (any, *apiError) {
	if p["inline_message_id"] != "" {
		return nil, &apiError{code: 400, desc: "Bad Request: inline messages are not supported by the fake"}
	}
	c, m, aerr := s.target(p)
	if aerr != nil {
		return nil, aerr
	}
	if c.blocked {
		return nil, &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
	}
	if aerr := migrated(c); aerr != nil {
		return nil, aerr
	}
	if m == nil {
		return nil, &apiError{code: 400, desc: "Bad Request: message to edit not found"}
	}
	kb, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	text := m.Text
	if method == "editMessageText" {
		if aerr := validateText(p["text"], p["parse_mode"]); aerr != nil {
			return nil, aerr
		}
		text = p["text"]
	}
	if text == m.Text && sameButtons(kb, m.Buttons) {
		return nil, &apiError{code: 400, desc: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}
	}
	if aerr := s.flood(c); aerr != nil {
		return nil, aerr
	}
	m.Text, m.Buttons = text, kb
	if method == "editMessageText" {
		m.ParseMode = p["parse_mode"]
	}
	m.Edits++
	m.EditedAt = time.Now()
	return s.render(c, m), nil
}

func sameButtons(a, b [][]Button) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

// render is the JSON Telegram returns for one of the bot's messages.
func (s *Server) render(c *chat, m *Message) jsonMessage {
	jm := jsonMessage{
		MessageID:    m.ID,
		ThreadID:     m.ThreadID,
		IsTopic:      m.ThreadID != 0,
		From:         &jsonUser{ID: BotID, IsBot: true, FirstName: "otpbot test", UserName: BotUsername},
		Date:         m.SentAt.Unix(),
		Chat:         c.json(m.ThreadID != 0),
		Text:         stripHTML(m.Text),
		HasProtected: m.Protect,
	}
	if !m.EditedAt.IsZero() {
		jm.EditDate = m.EditedAt.Unix()
	}
	if m.Buttons != nil {
		mk := &jsonMarkup{}
		for _, row := range m.Buttons {
			var jr []jsonButton
			for _, b := range row {
				jb := jsonButton{Text: b.Text, CallbackData: b.Data, URL: b.URL}
				if b.CopyText != "" {
					jb.CopyText = &jsonCopyText{Text: b.CopyText}
				}
				jr = append(jr, jb)
			}
			mk.InlineKeyboard = append(mk.InlineKeyboard, jr)
		}
		jm.ReplyMarkup = mk
	}
	return jm
}

// parseMarkup reads an inline keyboard; an absent or empty one is nil.
func parseMarkup(raw string) ([][]Button, *apiError) {
	if raw == "" {
		return nil, nil
	}
	var mk jsonMarkup
	if err := json.Unmarshal([]byte(raw), &mk); err != nil {
		return nil, &apiError{code: 400, desc: "Bad Request: can't parse reply keyboard markup JSON object"}
	}
	var out [][]Button
	for _, row := range mk.InlineKeyboard {
		var r []Button
		for _, b := range row {
			nb := Button{Text: b.Text, Data: b.CallbackData, URL: b.URL}
			if b.CopyText != nil {
				nb.CopyText = b.CopyText.Text
			}
			set := 0
			for _, v := range []string{nb.Data, nb.URL, nb.CopyText} {
				if v != "" {
					set++
				}
			}
			switch {
			case nb.Text == "":
				return nil, &apiError{code: 400, desc: "Bad Request: text buttons are unallowed in the inline keyboard"}
			case set != 1:
				return nil, &apiError{code: 400, desc: "Bad Request: can't parse inline keyboard button: exactly one of the optional fields must be used"}
			case len(nb.Data) > 64:
				return nil, &apiError{code: 400, desc: "Bad Request: BUTTON_DATA_INVALID"}
			case nb.URL != "" && !validURL(nb.URL):
				return nil, &apiError{code: 400, desc: "Bad Request: BUTTON_URL_INVALID"}
			case len(nb.CopyText) > 256:
				return nil, &apiError{code: 400, desc: "Bad Request: COPY_TEXT_INVALID"}
			}
			r = append(r, nb)
		}
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "tg") && (u.Host != "" || u.Scheme == "tg")
}
