package bot

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// The key argument of /link, /unlink and /invite ("card ID", "customer
// NO"), and what is refused in it.

// Errors of parseKey.
var (
	errKeyUsage = errors.New("want card ID or customer NO")
	// errCardNumber: the ID looks like a card number (looksLikePAN). The
	// key is returned with it, so a command may still accept a key the
	// chat already has.
	errCardNumber = errors.New("looks like a card number")
)

// confirmWord after "card ID" insists that an ID that looks like a card
// number is the platform's id: HyperCard's card ids are 19-digit numbers,
// and about one in ten passes the card number check digit.
const confirmWord = "confirm"

// parseKey reads "card ID" or "customer NO", optionally followed by
// confirmWord. An ID that looks like a card number is refused with
// errCardNumber unless confirmed: a full card number must never become a
// link key, which is stored and shown.
func parseKey(args []string) (otpbot.Key, error) {
	confirmed := len(args) == 3 && strings.EqualFold(args[2], confirmWord)
	if confirmed {
		args = args[:2]
	}
	if len(args) != 2 {
		return otpbot.Key{}, errKeyUsage
	}
	t := otpbot.KeyType(strings.ToLower(args[0]))
	if (t != otpbot.KeyCard && t != otpbot.KeyCustomer) || !validID(args[1]) {
		return otpbot.Key{}, errKeyUsage
	}
	key := otpbot.Key{Type: t, ID: args[1]}
	if !confirmed && looksLikePAN(key.ID) {
		return key, errCardNumber
	}
	return key, nil
}

// maxCardName bounds a card's name (/link card ID NAME), in characters: a
// name is a word or two, shown on every message of the card.
const maxCardName = 32

// errCardName: the name /link was given for a card cannot be one
// (too long, a control character, or a card number in it).
var errCardName = errors.New("not a card name")

// parseLink reads /link's arguments: parseKey's "card ID [confirm]" or
// "customer NO [confirm]", and for a card an optional name in the words
// after it ("/link card ID Travel", "/link card ID confirm Travel EU").
// The name is checked by cardName.
func parseLink(args []string) (otpbot.Key, string, error) {
	if len(args) < 3 {
		key, err := parseKey(args)
		return key, "", err
	}
	rest := args[2:]
	keyArgs := args[:2]
	if strings.EqualFold(rest[0], confirmWord) {
		keyArgs, rest = args[:3], rest[1:]
	}
	key, err := parseKey(keyArgs)
	if len(rest) == 0 || (err != nil && !errors.Is(err, errCardNumber)) {
		return key, "", err
	}
	if key.Type != otpbot.KeyCard {
		return otpbot.Key{}, "", errKeyUsage // only a card is named
	}
	name, nerr := cardName(strings.Join(rest, " "))
	if nerr != nil {
		return key, "", nerr
	}
	return key, name, err
}

// cardName checks a card's name: printable, at most maxCardName
// characters, and without anything shaped like a card number (a name is
// shown on every message; a number in it would be a card number shown in
// full). At most eight digits are allowed, enough for "Travel 2025".
func cardName(s string) (string, error) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" || utf8.RuneCountInString(s) > maxCardName {
		return "", errCardName
	}
	digits := 0
	for _, r := range s {
		switch {
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return "", errCardName // bidi overrides and the like
		case r >= '0' && r <= '9':
			digits++
		}
	}
	if digits > 8 {
		return "", errCardName
	}
	return s, nil
}

// looksLikePAN reports whether s is shaped like a payment card number: 13
// to 19 digits (dashes between groups allowed) whose last digit is the
// Luhn check digit of the others.
func looksLikePAN(s string) bool {
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c-'0')
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i])
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// cardNumber refuses a command whose argument looks like a card number.
// Neither the reply nor the log repeats the argument. confirm is the form
// of the command that insists on it ("" when there is none).
func (c *Commands) cardNumber(ctx context.Context, r *request, confirm string) error {
	c.log.Info("argument refused: it looks like a card number", "command", r.name, "target", r.target, "by", r.user)
	c.count(r.name, "refused")
	return c.reply(ctx, r, "card_number", templates.CardNumberView{Confirm: confirm})
}

// keyArg parses the key argument of /link, /unlink and /invite and
// answers a mistake (usage, or a card number); ok is false when it did.
func (c *Commands) keyArg(ctx context.Context, r *request, usage string) (key otpbot.Key, ok bool, err error) {
	key, err = parseKey(r.args)
	switch {
	case errors.Is(err, errCardNumber):
		return key, false, c.cardNumber(ctx, r, "/"+r.name+" "+string(key.Type)+" ID "+confirmWord)
	case err != nil:
		return key, false, c.usage(ctx, r, usage)
	}
	return key, true, nil
}

// validID accepts what card ids and customer numbers look like: up to 128
// printable characters without spaces.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
