package templates

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Locale is the templates of one language in one time zone: what one
// chat is written in. Safe for concurrent use.
type Locale struct {
	set     *Set
	lang    string
	tag     language.Tag
	zone    *time.Location
	t       *template.Template
	regions display.Namer
}

func newLocale(s *Set, lang string, zone *time.Location, t *template.Template) *Locale {
	tag := language.Make(lang)
	l := &Locale{set: s, lang: lang, tag: tag, zone: zone, t: t, regions: display.Regions(tag)}
	t.Funcs(l.funcs())
	return l
}

// Language is the locale's language ("en", "pt-BR").
func (l *Locale) Language() string { return l.lang }

// Zone is the locale's time zone.
func (l *Locale) Zone() *time.Location { return l.zone }

// execute runs the named template (or piece) with data.
func (l *Locale) execute(name string, data any) (string, error) {
	t := l.t.Lookup(name)
	if t == nil {
		return "", fmt.Errorf("templates: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("templates: render %s (%s): %w", name, l.lang, err)
	}
	return strings.TrimSpace(buf.String()), nil
}

// Render executes the named template (the file name without ".tmpl") with
// data, one of the views of this package, and returns HTML ready for
// Telegram: escaped, only Telegram's tags, at most MaxLen visible characters.
func (l *Locale) Render(name string, data any) (string, error) {
	text, err := l.execute(name, data)
	if err != nil {
		return "", err
	}
	out, err := Truncate(text, MaxLen)
	if err != nil {
		return "", fmt.Errorf("templates: render %s (%s): %w", name, l.lang, err)
	}
	if strings.TrimSpace(html.UnescapeString(stripTags(out))) == "" {
		// Telegram refuses an empty message; say which template did it.
		return "", fmt.Errorf("templates: render %s (%s): empty text", name, l.lang)
	}
	return out, nil
}

// Text executes the named template or piece as plain text, for what
// Telegram shows without parse mode: button labels, the answer to a
// button press, the command menu. Tags are dropped and entities decoded;
// an empty text is an error.
func (l *Locale) Text(name string, data any) (string, error) {
	text, err := l.execute(name, data)
	if err != nil {
		return "", err
	}
	text = strings.TrimSpace(PlainText(text))
	if text == "" {
		return "", fmt.Errorf("templates: render %s (%s): empty text", name, l.lang)
	}
	return text, nil
}

// Label is Text for a piece that cannot fail once the set loaded (Load
// renders each with its sample data): should it fail all the same, the
// piece's name stands in, so a button never goes out without a label.
func (l *Locale) Label(name string, data any) string {
	text, err := l.Text(name, data)
	if err != nil {
		return name
	}
	return text
}

// RenderPages renders n items (history entries, live codes) with the named
// template over as few messages as needed to keep each within MaxLen, in
// order. page builds the view of one message from items[from:to], its part
// number (from 1) and the number of parts. With n == 0 it renders one
// message with no items. A single item too long for a message on its own is
// cut like any other text.
func (l *Locale) RenderPages(name string, n int, page func(from, to, part, parts int) any) ([]string, error) {
	fits := func(from, to int) (bool, error) {
		// n as part and parts is at least as wide as the final numbers.
		text, err := l.execute(name, page(from, to, n, n))
		if err != nil {
			return false, err
		}
		size, err := VisibleLen(text)
		if err != nil {
			return false, fmt.Errorf("templates: render %s (%s): %w", name, l.lang, err)
		}
		return size <= MaxLen, nil
	}
	// Greedy: grow each page while it fits. A page is rendered once per
	// item it holds, which is cheap for the few dozen items of a command
	// reply.
	var bounds [][2]int
	for from := 0; from < n; {
		to := from + 1
		for to < n {
			ok, err := fits(from, to+1)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			to++
		}
		bounds = append(bounds, [2]int{from, to})
		from = to
	}
	if n == 0 {
		bounds = [][2]int{{0, 0}}
	}
	out := make([]string, 0, len(bounds))
	for i, b := range bounds {
		text, err := l.Render(name, page(b[0], b[1], i+1, len(bounds)))
		if err != nil {
			return nil, err
		}
		out = append(out, text)
	}
	return out, nil
}

// check renders every template and piece that has sample data (see
// samples), so that an override that refers to a missing field or
// prints a tag Telegram rejects fails at start.
func (l *Locale) check() error {
	sample := samples(l.set.answers)
	for _, name := range sortedKeys(sample) {
		if l.t.Lookup(name) == nil {
			return fmt.Errorf("templates: %s: %s is missing (a file that defines it was overridden without it)", l.lang, name)
		}
		var err error
		if pieceNames[name] {
			_, err = l.Text(name, sample[name])
		} else {
			_, err = l.Render(name, sample[name])
		}
		if err != nil {
			return err
		}
	}
	return nil
}
