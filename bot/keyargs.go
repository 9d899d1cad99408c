package bot

import (
	"context"
	"errors"
	"strings"

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
