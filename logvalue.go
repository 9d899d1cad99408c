package otpbot

import "log/slog"

// The types below decide how a value appears in a log line (they are
// slog.LogValuer), so that masking is done where the value is logged, by
// what it is, rather than guessed afterwards from its text. The log
// handler (package logs) shows them as they render themselves; only free
// text (messages, errors, plain strings) goes through its last net for
// card numbers.
//
// One card mask is used everywhere a card is named — logs, messages, ops
// reports: "•••• 1234". A routing key's id is shortened to "…" and its last
// four characters (MaskID), as chats and ops reports show a key.

// Redacted is what a secret shows in a log line.
const Redacted = "[REDACTED]"

// CardNumber is a card number (PAN): whole, masked the way platforms mask
// it ("103411******3333"), or only its last four digits (Event.CardLast4).
// It prints and logs as "•••• 3333", or "••••" when it holds fewer than
// four digits.
type CardNumber string

// String returns the masked number.
func (c CardNumber) String() string {
	if last4 := MaskCard(string(c)); last4 != "" {
		return "•••• " + last4
	}
	return "••••"
}

// LogValue implements slog.LogValuer with the masked number.
func (c CardNumber) LogValue() slog.Value { return slog.StringValue(c.String()) }

// CardID is a card's id at its platform. Some platforms use the card
// number as id, so it prints and logs like a card number, by its last four
// characters: "•••• 3333" ("•••• c-7" for an id that short).
type CardID string

// String returns the masked id.
func (c CardID) String() string {
	r := []rune(c)
	if len(r) > 4 {
		r = r[len(r)-4:]
	}
	return "•••• " + string(r)
}

// LogValue implements slog.LogValuer with the masked id.
func (c CardID) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Secret is a value no log line may show: a code, a token, a password, a
// signature. It prints and logs as [REDACTED], or as "" when empty, so
// that a log can still show that one was missing.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// LogValue implements slog.LogValuer, hiding the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MaskedID is an id that may be a card number, such as a routing key's id
// logged apart from its type ("key_type=card key=…RD-A"): it logs by its
// last four characters, as MaskID writes them.
type MaskedID string

// LogValue implements slog.LogValuer with the shortened id.
func (m MaskedID) LogValue() slog.Value { return slog.StringValue(MaskID(string(m))) }

// LogValue implements slog.LogValuer: "card:…RD-A" (a card id shortened
// by MaskID) or "customer:CU-77" (a customer number whole). String keeps
// the whole id, for the stores.
func (k Key) LogValue() slog.Value {
	if k.Type == KeyCard {
		return slog.StringValue(string(k.Type) + ":" + MaskID(k.ID))
	}
	return slog.StringValue(k.String())
}

// LogValue implements slog.LogValuer: a target logs whole, as String
// writes it ("-1001234567890/42"), so that an operator can grep the logs
// for their group.
func (t Target) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Ref is an identifier otpbot makes and logs whole, so that an operator
// can grep for it: a task id ("upay:ORD-1@-1001234567890#send"), a message
// id, an event id. Its parts are provider reference numbers, chat ids and
// hashes, never a card number or a code.
type Ref string

// LogValue implements slog.LogValuer with the identifier as it is.
func (r Ref) LogValue() slog.Value { return slog.StringValue(string(r)) }
