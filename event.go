package otpbot

import (
	"strings"
	"time"
)

// Provider names a card-issuing platform that pushes events to otpbot.
type Provider string

// The providers otpbot understands.
const (
	ProviderUPay      Provider = "upay"
	ProviderHyperCard Provider = "hypercard"
)

// Kind says what an event means to a cardholder, and so what otpbot does with it.
type Kind string

// The kinds of event.
const (
	// KindCode carries a one-time code (or a confirmation link) that is pushed
	// to every linked chat with a live expiry countdown.
	KindCode Kind = "code"
	// KindApproval is HyperCard's AUTH_3DS: a purchase waiting for the
	// cardholder's approval. Later pushes with the same auth id update the
	// message in place.
	KindApproval Kind = "approval"
	// KindInfo is a known event that is recorded in history and not pushed.
	KindInfo Kind = "info"
	// KindUnknown is an authentic, well-formed push whose event name we do not
	// know: recorded in history, not pushed.
	KindUnknown Kind = "unknown"
	// KindRejected is a push that cannot be delivered: a code or approval
	// request without its code (link, auth id) or without any routing key,
	// another known event missing a field its document marks required, or
	// any push with a value too long to be real. Acknowledged (the
	// provider cannot fix it by retrying), recorded for ops, not pushed.
	// A code missing only a field it displays is not rejected: it is
	// delivered without that field.
	KindRejected Kind = "rejected"
)

// Pushed reports whether events of this kind become Telegram messages.
func (k Kind) Pushed() bool { return k == KindCode || k == KindApproval }

// Event is one provider push, normalised. It is built by the webhooks package
// and is the unit the store ingests.
//
// Code and Link are secrets: they travel to the outbox so a code survives a
// crash, but never into history or logs (see Redacted).
type Event struct {
	// ID identifies the push for dedupe: the same ID within the dedupe window
	// is a repeat. It is derived from the provider's own identity where there
	// is one (UPay orderNo) or from a hash of the canonical body (HyperCard).
	ID string `json:"id"`
	// Group identifies the Telegram message an event belongs to. It equals ID
	// except for AUTH_3DS, where every push with the same auth id shares one
	// group so that a changed result edits the existing message.
	Group      string   `json:"group"`
	Provider   Provider `json:"provider"`
	Name       string   `json:"name"` // event / notify_type as received, e.g. "3DS_OTP"
	Kind       Kind     `json:"kind"`
	CardID     string   `json:"card_id,omitempty"`
	CustomerNo string   `json:"customer_no,omitempty"`
	// CardLast4 is the last four digits of the card number, the only part of
	// it otpbot ever keeps. Empty when the push has no card number.
	CardLast4 string `json:"card_last4,omitempty"`
	// Amount is a decimal in the currency's minor units (NormalizeAmount:
	// "12.50" for USD, "100" for JPY).
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	Merchant string `json:"merchant,omitempty"`
	Country  string `json:"country,omitempty"`
	// Status is a short status or result in words ("successful",
	// "failed", "frozen"...), read from the provider's codes. The English
	// word is a key: the templates (the piece "status") show it in each
	// chat's language, and an unknown one as it is.
	Status string `json:"status,omitempty"`
	// Trace ties together the events of one transaction (UPay `trace`).
	Trace string `json:"trace,omitempty"`
	// Code is the one-time code exactly as received. Secret.
	Code string `json:"code,omitempty"`
	// Link is a URL the cardholder opens instead of typing a code (UPay
	// NE_VERIFY of type 3DS_CONFIRM_LINK). Secret like a code.
	Link string `json:"link,omitempty"`
	// AuthID and AuthResult describe a HyperCard AUTH_3DS approval request;
	// AuthState is what AuthResult means, read through the one mapping of
	// the configuration (providers.hypercard.auth_results): whether the
	// request still waits for an answer or was decided.
	AuthID     string    `json:"auth_id,omitempty"`
	AuthResult int       `json:"auth_result,omitempty"`
	AuthState  AuthState `json:"auth_state,omitempty"`
	// Reason explains a KindRejected event (which field is missing or too
	// long), a code that expired on arrival, or a provider's failure
	// reason.
	Reason string `json:"reason,omitempty"`
	// Remark is a provider's free-text remark (HyperCard OPEN_CARD,
	// RECHARGE).
	Remark string `json:"remark,omitempty"`
	// Type is the event's own kind of thing, as the provider codes it:
	// the transaction type of a UPay card transaction ("6": management
	// fee), the NE_VERIFY type ("TX_WDR_PWD_MODIFY"), the KYC document
	// type ("2": passport). Templates put it in words.
	Type string `json:"type,omitempty"`
	// Direction is a UPay transaction's income / expenditure direction, as
	// received (its codes are unpublished).
	Direction string `json:"direction,omitempty"`
	// OriginalAmount and OriginalCurrency are a transaction's amount in
	// the currency it was made in, when that differs (UPay).
	OriginalAmount   string `json:"original_amount,omitempty"`
	OriginalCurrency string `json:"original_currency,omitempty"`
	// Tracking and Carrier are a dispatched card's logistics tracking
	// number and company (UPay MF_MATERIAL_FLOW).
	Tracking string `json:"tracking,omitempty"`
	Carrier  string `json:"carrier,omitempty"`
	// Alert says why an operator must hear of this history event, which
	// no cardholder chat may see ("card application failed": a HyperCard
	// OPEN_CARD names no card); empty for nearly every event.
	Alert string `json:"alert,omitempty"`
	// CardType is the card type id of an event about a kind of card
	// rather than one card (HyperCard OPEN_CARD, CARD_CONFIG_CHANGE).
	CardType string `json:"card_type,omitempty"`
	// OccurredAt is when the provider says the event happened (zero if the
	// push does not say).
	OccurredAt time.Time `json:"occurred_at,omitempty"`
	// ReceivedAt is when otpbot accepted the push.
	ReceivedAt time.Time `json:"received_at"`
	// ExpiresAt is when the code or approval request stops being valid; zero
	// for events that do not expire.
	ExpiresAt time.Time `json:"expires_at,omitempty"`
}

// AuthState is what an approval request's auth_result says.
type AuthState string

// The states of an approval request.
const (
	// AuthPending: the request waits for the cardholder's answer.
	AuthPending AuthState = "pending"
	// AuthApproved and AuthDeclined: the request was decided.
	AuthApproved AuthState = "approved"
	AuthDeclined AuthState = "declined"
	// AuthUnknown: a result the mapping does not know. It is treated as
	// pending; history shows its number.
	AuthUnknown AuthState = "unknown"
)

// Decided reports whether the request was answered (approved or
// declined): it then shows its decision and asks nothing more.
func (s AuthState) Decided() bool { return s == AuthApproved || s == AuthDeclined }

// Decided reports whether ev is an approval request that its own push
// says is decided.
func (e Event) Decided() bool { return e.Kind == KindApproval && e.AuthState.Decided() }

// Keys returns the routing keys of the event, most specific first: its card
// id and its customer number, whichever it has (HyperCard events name only
// a card). A code or approval request goes to every chat linked to any of
// them, each chat (topic) once, and history is kept under each of them.
func (e Event) Keys() []Key {
	var keys []Key
	if e.CardID != "" {
		keys = append(keys, Key{Type: KeyCard, ID: e.CardID})
	}
	if e.CustomerNo != "" {
		keys = append(keys, Key{Type: KeyCustomer, ID: e.CustomerNo})
	}
	return keys
}

// HistoryKeys returns the keys the event is kept under in history: its
// routing keys (Keys) and EventsKey, where every event is listed
// whatever it names, so that events without a card or customer (HyperCard
// OPEN_CARD, CARD_CONFIG_CHANGE) are visible to admins too.
func (e Event) HistoryKeys() []Key { return append(e.Keys(), EventsKey) }

// RouteKey returns the most specific key of the event, the one ops reports
// and logs name it by: the card when the event names one, else the
// customer. ok is false for events with neither.
//
// Deliveries are not routed by it alone: they go to the links of every key
// in Keys (a chat linked to the customer receives the codes of its cards).
// Code that decides who receives or may act on an event must use Keys.
func (e Event) RouteKey() (Key, bool) {
	keys := e.Keys()
	if len(keys) == 0 {
		return Key{}, false
	}
	return keys[0], true
}

// Redacted returns a copy without the secrets (code and link), fit for
// history, logs and anything else that outlives the code.
func (e Event) Redacted() Event {
	e.Code = ""
	e.Link = ""
	return e
}

// Expired reports whether the event has an expiry and it has passed at now.
func (e Event) Expired(now time.Time) bool {
	return !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt)
}

// MaskCard keeps only the last four digits of a card number ("103411******3333"
// → "3333"). It returns "" when fewer than four digits are present, so that a
// short or malformed number is never echoed.
func MaskCard(number string) string {
	digits := make([]byte, 0, 4)
	for i := len(number) - 1; i >= 0 && len(digits) < 4; i-- {
		if c := number[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) < 4 {
		return ""
	}
	digits[0], digits[3] = digits[3], digits[0]
	digits[1], digits[2] = digits[2], digits[1]
	return string(digits)
}

// MaskID shortens an identifier that may be a card number (a card id is not
// secret, but some platforms use the PAN as id) to "…" + its last four
// characters, for logs and ops reports.
func MaskID(id string) string {
	if len(id) <= 4 {
		return id
	}
	return "…" + id[len(id)-4:]
}

// NormalizeName upper-cases an event name so that configuration such as
// codes.ttl_by_event matches case-insensitively.
func NormalizeName(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }
