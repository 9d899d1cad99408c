package templates

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/otpbot/otpbot"
)

// CardView is the data of the piece "card_label": how a message names a
// card. Last4 is the card number's last four digits; ID the card id
// masked to its last four characters ("…4505", otpbot.MaskID), set only
// without Last4 (the tail of an id is not the tail of the number); Name
// what the chat called the card with /link card ID NAME.
type CardView struct {
	Last4, ID, Name string
}

// CardLabel names the card of ev the way l's chat sees it, with the name
// the chat gave it (Link.Name, "" for none): "•••• 1234", "card …4505"
// when only its id is known, "Travel •••• 1234", "Travel (card …4505)";
// "" when the event names no card and there is no name.
func (l *Locale) CardLabel(ev otpbot.Event, name string) string {
	v := CardView{Last4: ev.CardLast4, Name: name}
	if v.Last4 == "" && ev.CardID != "" {
		v.ID = otpbot.MaskID(ev.CardID)
	}
	if v == (CardView{}) {
		return ""
	}
	return l.Label("card_label", v)
}

// CardLabel is Locale.CardLabel in the default language.
func (s *Set) CardLabel(ev otpbot.Event, name string) string { return s.defLocale.CardLabel(ev, name) }

// Remaining formats the time left of a code as m:ss (h:mm:ss from an hour
// on). It rounds to the nearest second, so a refresh that runs a little
// early or late around a countdown step (expiry minus a multiple of
// codes.countdown_interval) shows the same round value, and a positive
// remainder never shows as 0:00.
func Remaining(d time.Duration) string {
	if d <= 0 {
		return "0:00"
	}
	sec := int64(d.Round(time.Second) / time.Second)
	if sec == 0 {
		sec = 1
	}
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// Money joins an amount and its currency ("12.50 USD"), the amount in
// the currency's minor units (otpbot.NormalizeAmount: history written
// before amounts were normalised reads the same); the currency may be
// empty. Without an amount (a push may lack it, or carry one so
// malformed that it was dropped) it is "", so that no "Amount" line
// shows a bare currency.
func Money(amount, currency string) string {
	if amount == "" {
		return ""
	}
	if a, ok := otpbot.NormalizeAmount(amount, currency); ok {
		amount = a
	}
	return strings.TrimSpace(amount + " " + currency)
}

// LanguageName is a language's name in that language, capitalised
// ("Русский", "Español"), from the Unicode CLDR data of x/text; Chinese
// without a script is named as Simplified Chinese, which its built-in
// templates are.
func LanguageName(lang string) string {
	tag := language.Make(lang)
	if b, _ := tag.Base(); b.String() == "zh" {
		if _, conf := tag.Script(); conf != language.Exact {
			tag = language.MustParse("zh-Hans")
		}
	}
	name := display.Self.Name(tag)
	if name == "" {
		return lang
	}
	return cases.Title(tag, cases.NoLower).String(name)
}

// Decision is an approval request answered here: how, by whom (their
// @username, else their name) and when. It is stored in the message
// (otpbot.Message.Decision) as DecisionText makes it.
type Decision struct {
	Approved bool
	By       string
	At       time.Time
}

// decisionSep separates the fields of a stored decision.
const decisionSep = "|"

// DecisionText is what otpbot stores as the Decision of an answered
// approval request: "approved|2024-03-14T12:03:00Z|@ann". Each chat's
// message shows it in its own words and zone (the piece "decision").
func DecisionText(approved bool, by string, at time.Time) string {
	word := "declined"
	if approved {
		word = "approved"
	}
	return word + decisionSep + at.UTC().Format(time.RFC3339) + decisionSep + by
}

// ParseDecision reads a stored Decision. One stored before decisions were
// written this way ("Approved by @ann at 12:03 UTC") is not read: ok is
// false, and Approved tells whether it starts with "Approved".
func ParseDecision(s string) (d Decision, ok bool) {
	word, rest, found := strings.Cut(s, decisionSep)
	at, by, found2 := strings.Cut(rest, decisionSep)
	t, err := time.Parse(time.RFC3339, at)
	if !found || !found2 || err != nil || (word != "approved" && word != "declined") {
		return Decision{Approved: strings.HasPrefix(s, "Approved")}, false
	}
	return Decision{Approved: word == "approved", By: by, At: t}, true
}

// DecisionLabel is how l's chat reads a stored decision: "Approved by
// @ann at 12:03 UTC" (the piece "decision"); an old one is shown as
// stored.
func (l *Locale) DecisionLabel(stored string) string {
	d, ok := ParseDecision(stored)
	if !ok {
		return stored
	}
	return l.Label("decision", d)
}

// MenuLanguage is the language_code of a language's command menu: its
// two-letter ISO 639-1 code ("pt-BR" has "pt"); ok is false for a
// language without one, which Telegram's menus cannot name.
func MenuLanguage(lang string) (code string, ok bool) {
	b, _ := language.Make(lang).Base()
	code = b.String()
	return code, len(code) == 2
}
