// Package templates renders every text otpbot sends to Telegram: code and
// approval messages in each state, command replies, button labels, the
// answers to button presses, the command menu and ops notices, in each
// chat's language and time zone.
//
// Templates are Go html/template files (*.tmpl), one folder per language
// (load.go); English is complete and every other language falls back on
// it. The built-in ones are embedded in the binary; a folder
// (templates.dir) may hold files with the same names that replace them one
// by one, per language. Everything a template prints is escaped for
// Telegram's HTML parse mode, the output may only use the tags Telegram
// understands, and it is cut to Telegram's 4096 visible characters.
package templates

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/text/language"

	"github.com/otpbot/otpbot"
)

// Options configure a Set.
type Options struct {
	// Dir is the operator's folder of overrides (templates.dir); "" for
	// none.
	Dir string
	// DefaultLanguage is the language of groups and of users whose own is
	// not available (templates.default_language); "" means English.
	DefaultLanguage string
	// TimeZone is the IANA zone times are shown in unless a chat chose
	// its own (templates.timezone); "" means UTC.
	TimeZone string
	// Answers says that approval requests carry Approve and Decline
	// (providers.hypercard.api is set): a live request then tells a
	// cardholder who did not make the purchase to tap Decline.
	Answers bool
}

// Set is every language's parsed templates, safe for concurrent use.
type Set struct {
	// langs are the languages available, English first; tags the same
	// as language tags, for the matcher.
	langs   []string
	tags    []language.Tag
	matcher language.Matcher
	// master holds each language's parsed templates; it is only ever
	// cloned (a clone per time zone, with that zone's functions), never
	// executed, since html/template cannot clone what has run.
	master  map[string]*template.Template
	def     string
	zone    *time.Location
	answers bool

	mu      sync.Mutex
	locales map[localeKey]*Locale
	// defLocale is the default language in the default zone.
	defLocale *Locale
}

type localeKey struct{ lang, zone string }

// New parses the built-in templates and lays the overrides of dir over
// them (see Load), in English and UTC by default.
func New(dir string) (*Set, error) { return Load(Options{Dir: dir}) }

// Load parses every language's templates: the built-in ones and the
// overrides of opts.Dir. An override must have the name of a built-in
// template, so that a typo does not silently leave the built-in in place.
// Every template of every language is executed once with sample data, so
// a broken override is reported at start rather than when the first code
// arrives.
func Load(opts Options) (*Set, error) {
	built, err := readBuiltin()
	if err != nil {
		return nil, err
	}
	over, err := readDir(opts.Dir, built[base])
	if err != nil {
		return nil, err
	}
	s := &Set{master: map[string]*template.Template{}, locales: map[localeKey]*Locale{}, answers: opts.Answers}
	if s.zone, err = LoadZone(opts.TimeZone); err != nil {
		return nil, fmt.Errorf("templates: time zone: %w", err)
	}
	langs := map[string]bool{}
	for l := range built {
		langs[l] = true
	}
	for l := range over {
		langs[l] = true
	}
	s.langs = baseFirst(sortedKeys(langs))
	for _, l := range s.langs {
		s.tags = append(s.tags, language.Make(l))
		if s.master[l], err = parse(layers(l, built, over)); err != nil {
			return nil, err
		}
	}
	s.matcher = language.NewMatcher(s.tags)
	if s.def, err = defaultLanguage(s.langs, s.matcher, opts.DefaultLanguage); err != nil {
		return nil, err
	}
	for _, l := range s.langs {
		loc, err := s.locale(l, s.zone)
		if err != nil {
			return nil, err
		}
		if err := loc.check(); err != nil {
			return nil, err
		}
	}
	s.defLocale, _ = s.locale(s.def, s.zone)
	return s, nil
}

// ErrDefaultLanguage says that the default language is not one of the languages
// available (built in, or a folder of templates.dir).
var ErrDefaultLanguage = errors.New("default language not available")

// defaultLanguage picks the language of langs (matched by matcher) that
// code names; English for "".
func defaultLanguage(langs []string, matcher language.Matcher, code string) (string, error) {
	if code == "" {
		return base, nil
	}
	lang, ok := match(langs, matcher, code)
	if !ok {
		return "", fmt.Errorf("templates: %w: %q is not one of %v (add a folder of its templates to templates.dir)", ErrDefaultLanguage, code, langs)
	}
	return lang, nil
}

// CheckDefaultLanguage reports whether code names a language available
// with the overrides of dir (ErrDefaultLanguage when not), without
// parsing any template: configuration checks it before loading.
func CheckDefaultLanguage(dir, code string) error {
	built, err := fs.ReadDir(builtin, "builtin")
	if err != nil {
		return fmt.Errorf("templates: read built-in: %w", err)
	}
	langs := map[string]bool{}
	for _, e := range built {
		langs[e.Name()] = true
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("templates: dir: %w", err)
		}
		for _, e := range entries {
			if tag, err := language.Parse(e.Name()); err == nil && e.IsDir() {
				langs[tag.String()] = true
			}
		}
	}
	list := baseFirst(sortedKeys(langs))
	tags := make([]language.Tag, len(list))
	for i, l := range list {
		tags[i] = language.Make(l)
	}
	_, err = defaultLanguage(list, language.NewMatcher(tags), code)
	return err
}

// baseFirst puts English first: the matcher's fallback.
func baseFirst(langs []string) []string {
	return append([]string{base}, slices.DeleteFunc(langs, func(l string) bool { return l == base })...)
}

// match returns the language of langs closest to a language tag; ok is
// false when none is close enough to read.
func match(langs []string, matcher language.Matcher, code string) (string, bool) {
	tag, err := language.Parse(code)
	if err != nil {
		return "", false
	}
	_, i, conf := matcher.Match(tag)
	if conf == language.No {
		return "", false
	}
	return langs[i], true
}

// parse parses a language's files in order: a later file replaces an
// earlier one of the same name, and what it defines replaces only those
// pieces ({{define}}).
func parse(files []layer) (*template.Template, error) {
	root := template.New("").Funcs(stubFuncs()).Option("missingkey=error")
	for _, f := range files {
		if _, err := root.New(f.name).Parse(f.text); err != nil {
			return nil, fmt.Errorf("templates: parse %s%s (%s): %w", f.name, ext, f.where, err)
		}
	}
	return root, nil
}

// LoadZone loads an IANA time zone ("Europe/Madrid"); "" is UTC. The
// zone names of the operating system's "Local" are refused: they would
// mean the server's zone.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return time.LoadLocation(name)
}

// Languages returns the languages available, English first: the
// built-in ones and those templates.dir adds.
func (s *Set) Languages() []string { return slices.Clone(s.langs) }

// DefaultLanguage is the language of a chat that chose none and whose
// user's language is not available.
func (s *Set) DefaultLanguage() string { return s.def }

// DefaultZone is the time zone of a chat that chose none.
func (s *Set) DefaultZone() *time.Location { return s.zone }

// Match returns the available language closest to a language tag
// (Telegram's language_code: "ru", "pt-br", "zh-hans"); ok is false when
// none is close enough to read.
func (s *Set) Match(code string) (lang string, ok bool) { return match(s.langs, s.matcher, code) }

// For returns the templates of a language in a time zone. A language
// that is not available (Match it first) is the default language; a zone
// that does not load is the default zone.
func (s *Set) For(lang, zone string) *Locale {
	if !slices.Contains(s.langs, lang) {
		lang = s.def
	}
	if zone == "" {
		zone = s.zone.String()
	}
	s.mu.Lock()
	l := s.locales[localeKey{lang, zone}]
	s.mu.Unlock()
	if l != nil {
		return l // the zone loaded before: no second read of the database
	}
	loc, err := LoadZone(zone)
	if err != nil {
		loc = s.zone
	}
	if l, err = s.locale(lang, loc); err != nil {
		// Cloning parsed templates fails only if they ran, which masters
		// never do; the default locale exists since Load.
		return s.defLocale
	}
	return l
}

// ForChat returns the templates a chat is written in: the language it
// chose with /language, else (userLang: in a private chat, its user's
// language_code) the user's language when available, else the default;
// the zone it chose with /timezone, else the default.
func (s *Set) ForChat(cs otpbot.ChatSettings, userLang string) *Locale {
	lang := s.def
	for _, code := range []string{cs.Language, userLang} {
		if code == "" {
			continue
		}
		if l, ok := s.Match(code); ok {
			lang = l
			break
		}
	}
	return s.For(lang, cs.TimeZone)
}

// Locale returns the default templates whatever the chat: a Set stands
// in for a Chats that knows no chat's settings.
func (s *Set) Locale(context.Context, int64) *Locale { return s.defLocale }

// Default is the default language in the default time zone.
func (s *Set) Default() *Locale { return s.defLocale }

// locale returns (building once) the templates of lang in zone.
func (s *Set) locale(lang string, zone *time.Location) (*Locale, error) {
	key := localeKey{lang, zone.String()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.locales[key]; l != nil {
		return l, nil
	}
	t, err := s.master[lang].Clone()
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", lang, err)
	}
	l := newLocale(s, lang, zone, t)
	s.locales[key] = l
	return l, nil
}

// Render executes the named template in the default language; see
// Locale.Render.
func (s *Set) Render(name string, data any) (string, error) { return s.defLocale.Render(name, data) }

// RenderMessage renders a message in the default language; see
// Locale.RenderMessage.
func (s *Set) RenderMessage(msg otpbot.Message, now time.Time) (string, error) {
	return s.defLocale.RenderMessage(msg, now)
}

// RenderApproval renders an approval step in the default language; see
// Locale.RenderApproval.
func (s *Set) RenderApproval(msg otpbot.Message, now time.Time, step ApprovalStep) (string, error) {
	return s.defLocale.RenderApproval(msg, now, step)
}

// RenderPages renders pages in the default language; see
// Locale.RenderPages.
func (s *Set) RenderPages(name string, n int, page func(from, to, part, parts int) any) ([]string, error) {
	return s.defLocale.RenderPages(name, n, page)
}

// WebLink reports whether link is an http(s) address: only such a link is
// shown as a link or a URL button (Telegram refuses a button with another
// scheme, and the whole message with it); anything else is shown like a
// code.
func WebLink(link string) bool {
	u, err := url.Parse(link)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// PlainText turns rendered HTML into the text it shows (tags removed,
// entities decoded), for a message sent without parse mode after
// Telegram refused the HTML.
func PlainText(s string) string { return html.UnescapeString(stripTags(s)) }
