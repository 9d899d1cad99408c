package chatpage

import (
	"html"
	"regexp"
	"strings"
)

// The bot writes in Telegram's HTML parse mode; the page shows it as
// Telegram would. toHTML rewrites it for the browser: the tags Telegram
// knows become their plain HTML look-alikes, every other tag and every
// attribute but a link's web address is dropped, and text is escaped again,
// so that nothing a provider put in a push can become markup or script.

// element is an open tag of the input and the closing tag written for it.
type element struct {
	name, closer string
}

// toHTML returns Telegram HTML as safe HTML for the page. It also makes
// web addresses and /commands in plain text clickable, as Telegram does.
func toHTML(s string) string {
	var b strings.Builder
	var open []element
	literal := 0 // inside a, code or pre: no links made there
	for i := 0; i < len(s); {
		if s[i] != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			writeText(&b, html.UnescapeString(s[i:i+j]), literal == 0)
			i += j
			continue
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			writeText(&b, html.UnescapeString(s[i:]), literal == 0)
			break
		}
		tag := strings.TrimSpace(s[i+1 : i+end])
		i += end + 1
		if name, ok := strings.CutPrefix(tag, "/"); ok {
			open, literal = closeTag(&b, open, strings.ToLower(strings.TrimSpace(name)), literal)
			continue
		}
		name, attrs, _ := strings.Cut(tag, " ")
		name = strings.ToLower(name)
		opener, closer := mapTag(name, attrs)
		b.WriteString(opener)
		open = append(open, element{name: name, closer: closer})
		if isLiteral(name) {
			literal++
		}
	}
	for k := len(open) - 1; k >= 0; k-- {
		b.WriteString(open[k].closer)
	}
	return b.String()
}

// closeTag closes name and whatever is open inside it; a closing tag with
// no open match is dropped.
func closeTag(b *strings.Builder, open []element, name string, literal int) ([]element, int) {
	k := len(open) - 1
	for k >= 0 && open[k].name != name {
		k--
	}
	if k < 0 {
		return open, literal
	}
	for j := len(open) - 1; j >= k; j-- {
		b.WriteString(open[j].closer)
		if isLiteral(open[j].name) {
			literal--
		}
	}
	return open[:k], literal
}

func isLiteral(name string) bool { return name == "a" || name == "code" || name == "pre" }

// mapTag is what the page writes for a Telegram tag: an opening and a
// closing tag ("" and "" for a tag shown as its text only).
func mapTag(name, attrs string) (opener, closer string) {
	switch name {
	case "b", "strong":
		return "<b>", "</b>"
	case "i", "em":
		return "<i>", "</i>"
	case "u", "ins":
		return "<u>", "</u>"
	case "s", "strike", "del":
		return "<s>", "</s>"
	case "code":
		return "<code>", "</code>"
	case "pre":
		return "<pre>", "</pre>"
	case "blockquote":
		return "<blockquote>", "</blockquote>"
	case "tg-spoiler":
		return `<span class="spoiler">`, "</span>"
	case "span":
		if attr(attrs, "class") == "tg-spoiler" {
			return `<span class="spoiler">`, "</span>"
		}
	case "a":
		if href := attr(attrs, "href"); webURL(href) {
			return `<a href="` + html.EscapeString(href) + `" target="_blank" rel="noopener noreferrer">`, "</a>"
		}
		return `<span class="link">`, "</span>"
	}
	return "", ""
}

// attrRE finds name="value" (or 'value') in a tag.
var attrRE = regexp.MustCompile(`([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')`)

// attr is the unescaped value of the attribute named name, "" if absent.
func attr(attrs, name string) string {
	for _, m := range attrRE.FindAllStringSubmatch(attrs, -1) {
		if strings.EqualFold(m[1], name) {
			return html.UnescapeString(m[2] + m[3])
		}
	}
	return ""
}

// webURL reports whether u is an http(s) address, the only links the page
// follows.
func webURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://")
}

// clickableRE finds what Telegram makes clickable in plain text: a web
// address, or a /command at the start of a word.
var clickableRE = regexp.MustCompile(`https?://[^\s<>"]+|(?:^|[\s(])(/[a-z][a-z0-9_]*)`)

// writeText writes plain text escaped, with its web addresses and
// /commands as links when links is true.
func writeText(b *strings.Builder, text string, links bool) {
	if !links {
		b.WriteString(html.EscapeString(text))
		return
	}
	last := 0
	for _, m := range clickableRE.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[0], m[1]
		if m[2] >= 0 { // a /command: the match may begin with its separator
			start = m[2]
		}
		b.WriteString(html.EscapeString(text[last:start]))
		word := html.EscapeString(text[start:end])
		if m[2] >= 0 {
			b.WriteString(`<a href="#" class="cmd" data-cmd="` + word + `">` + word + `</a>`)
		} else {
			b.WriteString(`<a href="` + word + `" target="_blank" rel="noopener noreferrer">` + word + `</a>`)
		}
		last = end
	}
	b.WriteString(html.EscapeString(text[last:]))
}

// escapeHTML escapes plain text (a user's message) for toHTML.
func escapeHTML(s string) string { return html.EscapeString(s) }
