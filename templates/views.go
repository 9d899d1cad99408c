package templates

import (
	"time"

	"github.com/otpbot/otpbot"
)

// The views below are the data each built-in template is executed with. An
// override in templates.dir sees exactly the same fields, so these types are
// part of what operators may rely on.

// MessageView is the data of the code and approval templates (code_live,
// code_expired, message_hidden, approval_live, approval_confirm,
// approval_problem, approval_expired, message_decided, message_failed).
// Event.Code and Event.Link are empty unless the message is live and not
// yet expired.
type MessageView struct {
	Event otpbot.Event
	State otpbot.MessageState
	// Decision says who answered an approval request here, how and when,
	// in the chat's words and zone ("Approved by @ann at 12:03 UTC", the
	// piece "decision"); Answer is the same as data (nil when nobody
	// answered here). Declined is true when the request was declined,
	// here or at HyperCard, so a template can pick its sign.
	Decision string
	Answer   *Decision
	Declined bool
	// CanDecline is set on a live approval request that carries the
	// Decline button (providers.hypercard.api), so the message can tell a
	// cardholder who did not make the purchase to tap it.
	CanDecline bool
	// Confirm is set while the approval_confirm step asks the user who
	// tapped Approve or Decline to confirm: "approve" or "decline".
	Confirm string
	// Problem is set when the approval_problem view tells the user who
	// tapped that the answer did not reach HyperCard: ProblemUnreachable
	// (no answer, a timeout, a 5xx: trying again may work) or
	// ProblemRefused (HyperCard answered with an error).
	Problem string
	// Card names the card (CardLabel): "•••• 1234", "card …4505" when only
	// its id is known, with the name the chat gave it ("Travel •••• 1234");
	// "" when the event names none.
	Card string
	// Left is the time until the code or request expires (zero when it has
	// no expiry or it is gone); LeftText is Left as the message shows it.
	Left     time.Duration
	LeftText string
	Now      time.Time
}

// StartView is the data of "start" (/start without an invite).
type StartView struct {
	ChatID   int64
	ThreadID int
	Name     string // first name of the user, may be empty
	Admin    bool   // the user may run the ops commands
	Linked   bool   // the chat receives at least one card or customer
	Group    bool   // a group (or channel), not a private chat
}

// HelpView is the data of "help": which commands the user may run here.
// Settings is true where the user may change the chat's language and
// time zone (a private chat, or an admin in a group).
type HelpView struct {
	Admin    bool
	Linked   bool
	Settings bool
}

// The reasons a command is refused (RefusedView.Reason).
const (
	// RefusedAdmin: only admins (telegram.admins) may run it.
	RefusedAdmin = "admin"
	// RefusedLinked: it works in a chat that receives codes, and nothing
	// is linked to this one.
	RefusedLinked = "linked"
	// RefusedKey: the card or customer named is not this chat's.
	RefusedKey = "key"
	// RefusedGroupAdmin: in a group only admins may run it (/language,
	// /timezone); in a private chat anyone may.
	RefusedGroupAdmin = "group_admin"
)

// RefusedView is the data of "refused": a command this user may not run
// here, why (Reason, one of the Refused* constants) and who asked (their
// Telegram user id, which an admin adds to telegram.admins). It says
// nothing about any card.
type RefusedView struct {
	Command string // without the slash: "link"
	Reason  string
	UserID  int64
}

// UnknownView is the data of "unknown": a command otpbot does not have
// (Command, without the slash), and the closest one it has (Suggest, ""
// when none is close).
type UnknownView struct {
	Command string
	Suggest string
}

// LanguageView is the data of "language": the chat's language and the
// ones it may choose (with buttons). Changed is set once a choice was
// stored; Chosen when the chat chose its language itself (rather than
// following its user's Telegram language or the default).
type LanguageView struct {
	Current   LanguageOption
	Languages []LanguageOption
	Chosen    bool
	Changed   bool
	// Unknown is a /language argument that names no available language.
	Unknown string
}

// LanguageOption is one language: its code ("pt-BR") and its name in
// itself ("Português").
type LanguageOption struct {
	Code, Name string
}

// TimeZoneView is the data of "timezone": the chat's time zone (an IANA
// name), its abbreviation now ("CET"), the time there now (Now, in that
// zone), and whether the chat chose it itself. Changed is set once a choice was stored;
// Unknown is an argument that names no zone; Default is the zone of a
// chat that chose none (templates.timezone).
type TimeZoneView struct {
	Zone    string
	Abbr    string
	Now     time.Time
	Chosen  bool
	Changed bool
	Unknown string
	Default string
}

// LinkView is the data of "link_ok", "unlink_ok", "unlink_missing" and
// "invite_redeemed". Name is the name /link gave the card ("" for none).
type LinkView struct {
	Key    otpbot.Key
	Target otpbot.Target
	Name   string
}

// LinksView is the data of "links": the links of the chat the command came from.
type LinksView struct {
	ChatID int64
	Links  []otpbot.Link
}

// UsageView is the data of "usage": the command was called with wrong arguments.
type UsageView struct {
	Usage string // e.g. "/link card ID"
}

// CardNumberView is the data of "card_number": a command argument looked
// like a card number and was refused. Confirm is the command that insists
// the argument is the platform's id ("/link card ID confirm"), empty when
// the command has no such form.
type CardNumberView struct {
	Confirm string
}

// InviteView is the data of "invite": the one-time deep link an admin
// asked for, valid for Valid (until ExpiresAt).
type InviteView struct {
	Key       otpbot.Key
	URL       string
	ExpiresAt time.Time
	Valid     time.Duration
}

// HistoryView is the data of "history": one page of /history. Entries hold
// redacted events only. Part counts from 1; Parts > 1 when a long history
// is split over several messages. Key is the key listed (zero for "the
// keys of this chat"; otpbot.EventsKey for every event). Names are the
// names this chat gave its cards, by card id.
type HistoryView struct {
	Key     otpbot.Key
	Entries []otpbot.HistoryEntry
	Part    int
	Parts   int
	Names   map[string]string
}

// Name is the name this chat gave the card of ev ("" for none): a
// history line names the card {{card .Event ($.Name .Event)}}.
func (v HistoryView) Name(ev otpbot.Event) string { return v.Names[ev.CardID] }

// Events reports whether the view lists every event (/history events).
func (v HistoryView) Events() bool { return v.Key == otpbot.EventsKey }

// CodesView is the data of "codes": the live messages of the chat. The
// reply is deleted when the first code it lists expires, so that no code
// stays on screen past its expiry; DeleteIn says when ("4:30"; empty when
// no listed code expires).
type CodesView struct {
	Codes    []CodeLine
	Part     int
	Parts    int
	DeleteIn string
}

// CodeLine is one live code or approval request in /codes, with its code
// (or confirmation link) while it is valid.
type CodeLine struct {
	Event otpbot.Event // redacted: the code and link are in Code and Link
	// Code and Link are the code and the confirmation link of a live code
	// ("" for an approval request): shown like in the code message.
	Code     string
	Link     string
	Card     string // as MessageView.Card
	Left     time.Duration
	LeftText string
}

// FollowUpView is the data of "follow_up": an event that shares its
// transaction (UPay trace) with a code message, sent as a reply to it in a
// chat that opted in with /replies on. Event is redacted (never a code).
type FollowUpView struct {
	Event otpbot.Event
	Card  string // as MessageView.Card
}

// RepliesView is the data of "replies": /replies on or off in Target.
// Links is how many links of that chat and topic were changed; 0 means
// nothing is linked there.
type RepliesView struct {
	On     bool
	Target otpbot.Target
	Links  int
}

// OpsRepeatView is the data of the piece "ops_repeat": one problem of an
// ops report happened Count times since Since.
type OpsRepeatView struct {
	Count int
	Since time.Time
}

// OpsView is the data of the ops notices ("ops_unrouted", "ops_rejected",
// "ops_broken"): Event is redacted; Target and Reason are set for a broken
// link.
type OpsView struct {
	Event  otpbot.Event
	Keys   []otpbot.Key
	Target otpbot.Target
	Reason string
}
