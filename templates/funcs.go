package templates

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"

	"github.com/otpbot/otpbot"
)

// The functions every template may call. Those that depend on the
// language or the time zone are bound to each Locale (Locale.funcs); at
// parse time they are stubs of the same names.

// staticFuncs are the same in every language and zone.
func staticFuncs() template.FuncMap {
	return template.FuncMap{
		"weblink": WebLink,
		"left":    Remaining,
		// money joins an amount and its currency ("1.00 EUR"); without
		// an amount it is "", so that no "Amount" line shows a bare
		// currency.
		"money": Money,
		// eventTime is when an event happened, or when it arrived if the
		// push does not say.
		"eventTime": func(ev otpbot.Event) time.Time {
			if !ev.OccurredAt.IsZero() {
				return ev.OccurredAt
			}
			return ev.ReceivedAt
		},
		"maskID":     otpbot.MaskID,
		"hasPrefix":  strings.HasPrefix,
		"trimPrefix": strings.TrimPrefix,
		// minutes is a duration in whole minutes, rounded (at least 1 for
		// a positive duration); wholeHours is it in hours when it is a
		// whole number of them, else 0.
		"minutes": func(d time.Duration) int {
			m := int(d.Round(time.Minute) / time.Minute)
			if m == 0 && d > 0 {
				m = 1
			}
			return m
		},
		"wholeHours": func(d time.Duration) int {
			if d < time.Hour || d%time.Hour != 0 {
				return 0
			}
			return int(d / time.Hour)
		},
	}
}

// localeFuncNames are the functions bound to a Locale.
var localeFuncNames = []string{"plural", "when", "clock", "inZone", "country", "key", "card", "target"}

// stubFuncs are the functions templates are parsed with.
func stubFuncs() template.FuncMap {
	fm := staticFuncs()
	for _, name := range localeFuncNames {
		fm[name] = func(...any) string { return "" }
	}
	return fm
}

// funcs are the functions of l's language and zone.
func (l *Locale) funcs() template.FuncMap {
	return template.FuncMap{
		// plural picks the form of a number its language's plural rules
		// (CLDR) call for: {{plural .N "one=# minute" "other=# minutes"}};
		// "#" is the number; a form the language needs and the call
		// does not give is "other".
		"plural": l.plural,
		// when prints a time in the locale's zone to the minute, with the
		// zone's abbreviation ("2024-03-14 10:30 CET"); clock with seconds;
		// inZone with a Go layout of its own.
		"when":  func(t time.Time) string { return l.format(t, "2006-01-02 15:04 MST") },
		"clock": func(t time.Time) string { return l.format(t, "2006-01-02 15:04:05 MST") },
		"inZone": func(t time.Time, layout string) string {
			return l.format(t, layout)
		},
		// country names a country in the locale's language from its ISO
		// 3166 code, alpha ("DE", "DEU") or numeric ("276").
		"country": l.Country,
		// key names a link key ("card …3333", "customer NO"), card an
		// event's card ("•••• 1234", "card …4505"; with the name the chat
		// gave it when there is one: card .Event "Travel"), target a chat and
		// topic: the words come from the pieces "key", "card_label" and
		// "target".
		"key": func(k otpbot.Key) string { return l.Label("key", k) },
		"card": func(ev otpbot.Event, name ...string) string {
			return l.CardLabel(ev, strings.Join(name, " "))
		},
		"target": func(t otpbot.Target) string { return l.Label("target", t) },
	}
}

// format prints t in the locale's zone; the zero time is "".
func (l *Locale) format(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.In(l.zone).Format(layout)
}

// plural is the "plural" function.
func (l *Locale) plural(n any, forms ...string) (string, error) {
	i, err := wholeNumber(n)
	if err != nil {
		return "", fmt.Errorf("plural: %w", err)
	}
	abs := i
	if abs < 0 {
		abs = -abs
	}
	want := formNames[plural.Cardinal.MatchPlural(l.tag, abs, 0, 0, 0, 0)]
	var other string
	for _, f := range forms {
		cat, text, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("plural: %q is not category=text (one=# minute)", f)
		}
		switch cat {
		case want:
			return strings.ReplaceAll(text, "#", strconv.Itoa(i)), nil
		case "other":
			other = text
		}
	}
	return strings.ReplaceAll(other, "#", strconv.Itoa(i)), nil
}

// formNames are the CLDR names of the plural forms.
var formNames = map[plural.Form]string{
	plural.Other: "other", plural.Zero: "zero", plural.One: "one",
	plural.Two: "two", plural.Few: "few", plural.Many: "many",
}

func wholeNumber(n any) (int, error) {
	switch v := n.(type) {
	case int:
		return v, nil
	case int64:
		return int(v), nil
	case int32:
		return int(v), nil
	case uint:
		return int(v), nil
	case string:
		return strconv.Atoi(v)
	}
	return 0, fmt.Errorf("%v (%T) is not a whole number", n, n)
}

// Country names a country in l's language from its ISO 3166 code:
// alpha-2 ("DE"), alpha-3 ("DEU") or numeric ("276", "76"). A code that
// names no country is shown as received, except a number (a region code
// such as "1", the world): that means nothing to a person and is "".
func (l *Locale) Country(code string) string {
	c := strings.TrimSpace(code)
	if c == "" {
		return ""
	}
	numeric := strings.Trim(c, "0123456789") == ""
	if numeric && len(c) < 3 {
		c = strings.Repeat("0", 3-len(c)) + c
	}
	r, err := language.ParseRegion(c)
	if err != nil || !r.IsCountry() {
		if numeric {
			return ""
		}
		return code
	}
	if name := l.regions.Name(r); name != "" {
		return name
	}
	return code
}
