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
	// Decision says who answered an approval request, how and when
	// ("Approved by @ann at 12:03 UTC", see DecisionText); Declined is true
	// when the answer was a decline, so a template can pick its sign.
	Decision string
	Declined bool
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
}

// HelpView is the data of "help": which commands the user may run here.
type HelpView struct {
	Admin  bool
	Linked bool
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

// InviteView is the data of "invite": the one-time deep link an admin asked for.
type InviteView struct {
	Key       otpbot.Key
	URL       string
	ExpiresAt time.Time
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

// Card names the card of ev as a history line shows it: CardLabel with
// the name this chat gave the card.
func (v HistoryView) Card(ev otpbot.Event) string { return CardLabel(ev, v.Names[ev.CardID]) }

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

// ThreadView is the data of "thread_reply": an event that shares its
// transaction (UPay trace) with a code message, sent as a reply to it in a
// chat that opted in with /replies on. Event is redacted (never a code).
type ThreadView struct {
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

// OpsView is the data of the ops notices ("ops_unrouted", "ops_rejected",
// "ops_broken"): Event is redacted; Target and Reason are set for a broken
// link.
type OpsView struct {
	Event  otpbot.Event
	Keys   []otpbot.Key
	Target otpbot.Target
	Reason string
}
