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

// measure returns the visible length of s in UTF-16 code units, checking
// that s is what Telegram parses: only its tags, every tag and entity
// terminated. It expects the output of html/template (every literal '<'
// and '&' escaped), so it does not need a full parser. It makes one pass
// and allocates nothing (unless s holds an unusual entity): nearly every
// rendered message is far below MaxLen, and splitting it into tokens only
// to find that out was most of a render's cost.
func measure(s string) (int, error) {
	n := 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '<':
			raw, _, err := tagAt(s, i)
			if err != nil {
				return 0, err
			}
			i += len(raw)
		case c == '&':
			raw, width, err := entityAt(s, i)
			if err != nil {
				return 0, err
			}
			n += width
			i += len(raw)
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			n += utf16.RuneLen(r)
			i += size
		}
	}
	return n, nil
}

// tagAt reads the tag that starts at s[i] ('<'): its raw text and its
// lower-case name, which must be one Telegram supports.
func tagAt(s string, i int) (raw, name string, err error) {
	end := strings.IndexByte(s[i:], '>')
	if end < 0 {
		return "", "", fmt.Errorf("unterminated tag at byte %d", i)
	}
	raw = s[i : i+end+1]
	name = strings.TrimPrefix(raw[1:len(raw)-1], "/")
	if j := strings.IndexAny(name, " \t\n"); j >= 0 {
		name = name[:j]
	}
	name = strings.ToLower(name)
	if !telegramTags[name] {
		return "", "", fmt.Errorf("tag <%s> is not supported by Telegram", name)
	}
	return raw, name, nil
}

// entityAt reads the entity that starts at s[i] ('&'): its raw text and
// its visible width.
func entityAt(s string, i int) (raw string, width int, err error) {
	end := strings.IndexByte(s[i:], ';')
	if end < 0 || end > 12 {
		return "", 0, fmt.Errorf("unterminated entity at byte %d", i)
	}
	raw = s[i : i+end+1]
	switch raw {
	case "&lt;", "&gt;", "&amp;", "&quot;", "&#39;", "&#34;":
		// What html/template writes: one character each, no need to
		// unescape (which allocates) to know it.
		return raw, 1, nil
	}
	return raw, utf16Len(html.UnescapeString(raw)), nil
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
func VisibleLen(s string) (int, error) { return measure(s) }

// Truncate cuts rendered HTML so that its visible length is at most max,
// never inside a tag or an entity; a cut text ends with "…" and every tag
// still open at the cut is closed, so Telegram can still parse it.
func Truncate(s string, max int) (string, error) {
	total, err := measure(s)
	if err != nil {
		return "", err
	}
	if total <= max {
		return s, nil
	}
	return cut(s, max-utf16Len(ellipsis)), nil
}

// cut returns the longest prefix of s, a text measure accepted, whose
// visible length is at most budget, followed by the ellipsis and the
// closing tags of the tags still open there. The tags right after the
// last character that fits are kept (they show nothing).
func cut(s string, budget int) string {
	var open []string
	used, i := 0, 0
	for i < len(s) {
		var raw string
		width := 0
		switch c := s[i]; {
		case c == '<':
			var name string
			raw, name, _ = tagAt(s, i)
			switch {
			case raw[1] == '/':
				if n := len(open); n > 0 && open[n-1] == name {
					open = open[:n-1]
				}
			default:
				open = append(open, name)
			}
		case c == '&':
			raw, width, _ = entityAt(s, i)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			raw, width = s[i:i+size], utf16.RuneLen(r)
		}
		if width > 0 && used+width > budget {
			break
		}
		used += width
		i += len(raw)
	}
	var b strings.Builder
	b.WriteString(s[:i])
	b.WriteString(ellipsis)
	for j := len(open) - 1; j >= 0; j-- {
		b.WriteString("</" + open[j] + ">")
	}
	return b.String()
}

// stripTags returns s without its tags (entities are kept); s itself when
// it does not parse. Every render calls it, so it copies the text between
// the tags rather than tokenising.
func stripTags(s string) string {
	if _, err := measure(s); err != nil {
		return s
	}
	if strings.IndexByte(s, '<') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		// measure saw every tag terminated.
		s = s[i+strings.IndexByte(s[i:], '>')+1:]
	}
}
