package templates

import (
	"fmt"
	"html"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxLen is Telegram's limit on a message's text, counted after entity
// parsing: what the reader sees, not the HTML markup.
const MaxLen = 4096

// ellipsis ends a text that was cut.
const ellipsis = "…"

// telegramTags are the tags Telegram's HTML parse mode understands. Any other
// tag makes Telegram refuse the whole message ("can't parse entities").
var telegramTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "tg-emoji": true, "code": true, "pre": true, "blockquote": true,
}

// token is one piece of rendered HTML: a tag, an entity or a single
// character of text.
type token struct {
	raw   string
	tag   string // tag name for a tag token, "" otherwise
	close bool   // a closing tag
	width int    // visible length in UTF-16 code units (0 for tags)
}

// scan splits html into tokens. It expects the output of html/template
// (every literal '<' and '&' escaped), so it does not need a full parser.
func scan(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return nil, fmt.Errorf("unterminated tag at byte %d", i)
			}
			raw := s[i : i+end+1]
			name := strings.TrimPrefix(raw[1:len(raw)-1], "/")
			if j := strings.IndexAny(name, " \t\n"); j >= 0 {
				name = name[:j]
			}
			name = strings.ToLower(name)
			if !telegramTags[name] {
				return nil, fmt.Errorf("tag <%s> is not supported by Telegram", name)
			}
			toks = append(toks, token{raw: raw, tag: name, close: raw[1] == '/'})
			i += end + 1
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 12 {
				return nil, fmt.Errorf("unterminated entity at byte %d", i)
			}
			raw := s[i : i+end+1]
			toks = append(toks, token{raw: raw, width: utf16Len(html.UnescapeString(raw))})
			i += end + 1
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			toks = append(toks, token{raw: s[i : i+size], width: utf16.RuneLen(r)})
			i += size
		}
	}
	return toks, nil
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// VisibleLen returns the length of a rendered message as Telegram counts it
// against MaxLen: text after entity parsing, in UTF-16 code units.
func VisibleLen(s string) (int, error) {
	toks, err := scan(s)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range toks {
		n += t.width
	}
	return n, nil
}

// Truncate cuts rendered HTML so that its visible length is at most max,
// never inside a tag or an entity; a cut text ends with "…" and every tag
// still open at the cut is closed, so Telegram can still parse it.
func Truncate(s string, max int) (string, error) {
	toks, err := scan(s)
	if err != nil {
		return "", err
	}
	total := 0
	for _, t := range toks {
		total += t.width
	}
	if total <= max {
		return s, nil
	}
	budget := max - utf16Len(ellipsis)
	var b strings.Builder
	var open []string
	used := 0
	for _, t := range toks {
		if t.width > 0 && used+t.width > budget {
			break
		}
		used += t.width
		b.WriteString(t.raw)
		switch {
		case t.tag == "":
		case t.close:
			if n := len(open); n > 0 && open[n-1] == t.tag {
				open = open[:n-1]
			}
		default:
			open = append(open, t.tag)
		}
	}
	b.WriteString(ellipsis)
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteString("</" + open[i] + ">")
	}
	return b.String(), nil
}

// stripTags returns s without its tags (entities are kept).
func stripTags(s string) string {
	toks, err := scan(s)
	if err != nil {
		return s
	}
	var b strings.Builder
	for _, t := range toks {
		if t.tag == "" {
			b.WriteString(t.raw)
		}
	}
	return b.String()
}
