package bottest

import (
	"html"
	"strconv"
	"strings"
	"unicode/utf8"
)

// allowedTags are the tags Telegram's HTML parse mode accepts.
var allowedTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "code": true, "pre": true, "blockquote": true, "tg-emoji": true,
}

// validateText checks a message text as Telegram does: not empty, at most
// 4096 characters after entity parsing, and, in HTML mode, only supported
// tags, balanced, with every '&' and '<' escaped.
func validateText(text, parseMode string) *apiError {
	plain := text
	if strings.EqualFold(parseMode, "HTML") {
		if msg := checkHTML(text); msg != "" {
			return &apiError{code: 400, desc: "Bad Request: can't parse entities: " + msg}
		}
		plain = stripHTML(text)
	}
	if strings.TrimSpace(plain) == "" {
		return &apiError{code: 400, desc: "Bad Request: message text is empty"}
	}
	if utf8.RuneCountInString(plain) > 4096 {
		return &apiError{code: 400, desc: "Bad Request: message is too long"}
	}
	return nil
}

// checkHTML returns what is wrong with an HTML text, "" when nothing is.
func checkHTML(s string) string {
	var stack []string
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "unclosed start tag at byte offset " + strconv.Itoa(i)
			}
			tag := s[i+1 : i+end]
			i += end + 1
			if strings.HasPrefix(tag, "/") {
				name := strings.ToLower(strings.TrimSpace(tag[1:]))
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "can't find end tag corresponding to start tag \"" + name + "\""
				}
				stack = stack[:len(stack)-1]
				continue
			}
			name, _, _ := strings.Cut(tag, " ")
			name = strings.ToLower(name)
			if !allowedTags[name] {
				return "unsupported start tag \"" + name + "\""
			}
			stack = append(stack, name)
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || html.UnescapeString(s[i:i+end+1]) == s[i:i+end+1] {
				return "unsupported HTML entity at byte offset " + strconv.Itoa(i)
			}
			i += end + 1
		case '>':
			// Telegram tolerates a bare '>' but templates should escape it.
			i++
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return "can't find end tag corresponding to start tag \"" + stack[len(stack)-1] + "\""
	}
	return ""
}

// stripHTML is the text a user sees: tags removed, entities decoded.
func stripHTML(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '<' {
			if end := strings.IndexByte(s[i:], '>'); end >= 0 {
				i += end + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return html.UnescapeString(b.String())
}

// Plain is the text of a message as the user sees it (tags removed,
// entities decoded).
func (m Message) Plain() string { return stripHTML(m.Text) }
