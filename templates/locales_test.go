package templates

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	ttemplate "text/template"
	"time"

	"github.com/otpbot/otpbot"
)

// builtinLanguages are the languages compiled in.
var builtinLanguages = []string{"en", "es", "pt-BR", "ru", "tr", "zh"}

// definitionsOnly are the files that only define pieces for the others.
var definitionsOnly = map[string]bool{"partials": true, "words": true, "buttons": true, "answers": true, "menu": true, "ops_report": true}

// Every template and piece of every built-in language, rendered with its
// sample data, in testdata/<lang>/<name>.golden (go test ./templates
// -update rewrites them): the whole of each translation, reviewable in
// one place.
func TestLocalesGolden(t *testing.T) {
	s := mustLoad(t, Options{Answers: true})
	if got := s.Languages(); !slices.Equal(got, []string{"en", "es", "pt-BR", "ru", "tr", "zh"}) {
		t.Fatalf("languages %v", got)
	}
	sample := samples(true)
	for _, lang := range builtinLanguages {
		loc := s.For(lang, "")
		for _, name := range sortedKeys(sample) {
			t.Run(lang+"/"+name, func(t *testing.T) {
				var got string
				var err error
				if pieceNames[name] {
					got, err = loc.Text(name, sample[name])
				} else {
					got, err = loc.Render(name, sample[name])
				}
				if err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join(lang, name), got)
			})
		}
	}
}

// Each built-in language translates every template and piece English
// has: none falls back to English.
func TestTranslationsComplete(t *testing.T) {
	built, err := readBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	want := definedNames(t, built[base])
	for _, lang := range builtinLanguages[1:] {
		got := definedNames(t, built[lang])
		for _, name := range want {
			if !slices.Contains(got, name) {
				t.Errorf("%s does not translate %s", lang, name)
			}
		}
		for _, name := range got {
			if !slices.Contains(want, name) {
				t.Errorf("%s defines %s, which English does not have", lang, name)
			}
		}
	}
}

// definedNames lists the templates (files) and pieces ({{define}}) of files.
func definedNames(t *testing.T, files map[string]string) []string {
	t.Helper()
	var names []string
	for name, text := range files {
		tt, err := ttemplate.New(name).Funcs(ttemplate.FuncMap(stubFuncs())).Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range tt.Templates() {
			names = append(names, d.Name())
		}
	}
	slices.Sort(names)
	return names
}

func TestRussianPlural(t *testing.T) {
	ru := mustLoad(t, Options{}).For("ru", "")
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Minute, "1 минута"}, {2 * time.Minute, "2 минуты"}, {5 * time.Minute, "5 минут"},
		{11 * time.Minute, "11 минут"}, {21 * time.Minute, "21 минута"}, {22 * time.Minute, "22 минуты"},
		{time.Hour, "1 час"}, {3 * time.Hour, "3 часа"}, {24 * time.Hour, "24 часа"}, {25 * time.Hour, "25 часов"},
	} {
		if got, err := ru.Text("duration", tt.d); err != nil || got != tt.want {
			t.Errorf("duration %v in Russian = %q, %v; want %q", tt.d, got, err, tt.want)
		}
	}
	en := mustLoad(t, Options{}).Default()
	for d, want := range map[time.Duration]string{time.Minute: "1 minute", 5 * time.Minute: "5 minutes", 24 * time.Hour: "24 hours"} {
		if got, _ := en.Text("duration", d); got != want {
			t.Errorf("duration %v in English = %q, want %q", d, got, want)
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	s := mustLoad(t, Options{DefaultLanguage: "es", TimeZone: "Europe/Madrid"})
	for code, want := range map[string]string{
		"ru": "ru", "ru-RU": "ru", "pt-br": "pt-BR", "pt": "pt-BR", "zh-hans": "zh", "zh-TW": "zh", "tr": "tr",
		"kk":    "ru", // Kazakhstan reads Russian
		"en-GB": "en", "es-419": "es",
	} {
		if got, ok := s.Match(code); !ok || got != want {
			t.Errorf("Match(%q) = %q, %v; want %q", code, got, ok, want)
		}
	}
	for _, code := range []string{"uk", "de", "", "not a tag"} {
		if got, ok := s.Match(code); ok {
			t.Errorf("Match(%q) = %q, want no language", code, got)
		}
	}
	tests := []struct {
		name       string
		cs         otpbot.ChatSettings
		user       string
		lang, zone string
	}{
		{"nothing known: the defaults", otpbot.ChatSettings{}, "", "es", "Europe/Madrid"},
		{"the user's language", otpbot.ChatSettings{}, "ru", "ru", "Europe/Madrid"},
		{"a user's language that is not available", otpbot.ChatSettings{}, "de", "es", "Europe/Madrid"},
		{"the chat's choice over the user's", otpbot.ChatSettings{Language: "tr", TimeZone: "Asia/Shanghai"}, "ru", "tr", "Asia/Shanghai"},
		{"a zone that no longer loads", otpbot.ChatSettings{TimeZone: "Mars/Olympus"}, "", "es", "Europe/Madrid"},
	}
	for _, tt := range tests {
		l := s.ForChat(tt.cs, tt.user)
		if l.Language() != tt.lang || l.Zone().String() != tt.zone {
			t.Errorf("%s: %s %s, want %s %s", tt.name, l.Language(), l.Zone(), tt.lang, tt.zone)
		}
	}
	if _, err := Load(Options{DefaultLanguage: "de"}); err == nil || !strings.Contains(err.Error(), `"de"`) {
		t.Errorf("a default language with no templates: %v", err)
	}
	if _, err := Load(Options{TimeZone: "Mars/Olympus"}); err == nil {
		t.Error("an unknown zone was accepted")
	}
	if got := LanguageName("ru") + LanguageName("zh") + LanguageName("es"); got != "Русский简体中文Español" {
		t.Errorf("language names: %q", got)
	}
}

// Times are shown in the chat's zone with its abbreviation.
func TestTimesInZone(t *testing.T) {
	s := mustLoad(t, Options{})
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "c-77"}
	view := HistoryView{Key: key, Part: 1, Parts: 1, Entries: []otpbot.HistoryEntry{{Event: otpbot.Event{Name: "CC_CONSUME", CardID: "c-77",
		ReceivedAt: t0}, Outcome: otpbot.OutcomeRecorded}}}
	for zone, want := range map[string]string{"": "2024-03-14 10:30 UTC", "Asia/Shanghai": "2024-03-14 18:30 CST", "Europe/Madrid": "2024-03-14 11:30 CET"} {
		got, err := s.For("en", zone).Render("history", view)
		if err != nil || !strings.Contains(got, want) {
			t.Errorf("history in %q: %v\n%s", zone, err, got)
		}
	}
}

func TestCountry(t *testing.T) {
	s := mustLoad(t, Options{})
	for _, tt := range []struct{ lang, code, want string }{
		{"en", "US", "United States"}, {"en", "840", "United States"}, {"en", "DEU", "Germany"}, {"en", "de", "Germany"},
		{"ru", "DE", "Германия"}, {"zh", "CN", "中国"}, {"es", "276", "Alemania"}, {"tr", "TR", "Türkiye"}, {"pt-BR", "BR", "Brasil"},
		{"en", "76", "Brazil"}, // a numeric code without its leading zero
		{"en", "1", ""},        // a number that names no country: nothing
		{"en", "Atlantis", "Atlantis"},
		{"en", "", ""},
	} {
		if got := s.For(tt.lang, "").Country(tt.code); got != tt.want {
			t.Errorf("Country(%q) in %s = %q, want %q", tt.code, tt.lang, got, tt.want)
		}
	}
}

func TestLanguageOverrides(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	hidden := otpbot.Message{Event: otp(), State: otpbot.StateHidden}
	t.Run("one template of one language", func(t *testing.T) {
		s := mustLoad(t, Options{Dir: write(t, map[string]string{"ru/error.tmpl": "Ой."})})
		if got, _ := s.For("ru", "").Render("error", nil); got != "Ой." {
			t.Errorf("ru override: %q", got)
		}
		if got, _ := s.For("es", "").Render("error", nil); got == "Ой." || strings.Contains(got, "Something") {
			t.Errorf("es: %q", got)
		}
		if got, _ := s.For("ru", "").Render("invite_invalid", nil); strings.Contains(got, "invite link is not valid") {
			t.Errorf("the rest of ru fell back to English: %q", got)
		}
	})
	t.Run("a new language: its files over English", func(t *testing.T) {
		s := mustLoad(t, Options{Dir: write(t, map[string]string{"de/error.tmpl": "Etwas ging schief.", "en/error.tmpl": "Oops."}), DefaultLanguage: "de"})
		if got, ok := s.Match("de-AT"); !ok || got != "de" {
			t.Fatalf("Match(de-AT) = %q, %v", got, ok)
		}
		if got, _ := s.Render("error", nil); got != "Etwas ging schief." {
			t.Errorf("de override: %q", got)
		}
		if got, _ := s.Render("invite_invalid", nil); !strings.Contains(got, "invite link is not valid") {
			t.Errorf("de falls back to English: %q", got)
		}
		if got, _ := s.For("en", "").Render("error", nil); got != "Oops." {
			t.Errorf("en override: %q", got)
		}
		if got, _ := s.For("ru", "").Render("error", nil); got == "Oops." {
			t.Errorf("an English override replaced a Russian built-in: %q", got)
		}
	})
	t.Run("a piece of a file: the others stay", func(t *testing.T) {
		// The file of pieces overridden with one piece only: label and
		// the rest keep their built-in text.
		s := mustLoad(t, Options{Dir: write(t, map[string]string{"partials.tmpl": `{{define "details"}} [{{.Card}}]{{end}}`})})
		got, err := s.RenderMessage(hidden, t0)
		if err != nil || got != "🙈 <b>3-D Secure confirmation code</b>: code hidden [•••• 1234]" {
			t.Errorf("got %q, %v", got, err)
		}
	})
	t.Run("the code warning can be left out", func(t *testing.T) {
		s := mustLoad(t, Options{Dir: write(t, map[string]string{"en/partials.tmpl": `{{define "never_share"}}{{""}}{{end}}`})})
		got, err := s.RenderMessage(otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0)
		if err != nil || strings.Contains(got, "Never share") || !strings.Contains(got, "482913") {
			t.Errorf("got %q, %v", got, err)
		}
	})
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not a language", map[string]string{"russian!/error.tmpl": "x"}, "is not named by a language"},
		{"unknown name in a language", map[string]string{"ru/code.tmpl": "x"}, "overrides no built-in"},
		{"broken in one language", map[string]string{"tr/start.tmpl": "{{.Nope}}"}, "render start (tr)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(Options{Dir: write(t, tt.files)}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v, want %q", err, tt.want)
			}
		})
	}
}

func mustLoad(t *testing.T, opts Options) *Set {
	t.Helper()
	s, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckDefaultLanguage(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "de"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dir, code string
		ok        bool
	}{
		{"", "", true}, {"", "pt-BR", true}, {"", "ru-RU", true}, {"", "de", false}, {dir, "de", true}, {dir, "fr", false},
	} {
		err := CheckDefaultLanguage(tt.dir, tt.code)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrDefaultLanguage)) {
			t.Errorf("CheckDefaultLanguage(%q, %q) = %v", tt.dir, tt.code, err)
		}
	}
}
