package templates

import (
	"time"

	"github.com/otpbot/otpbot"
)

// MessageTemplate returns the name of the template that shows a message of
// kind in state.
func MessageTemplate(kind otpbot.Kind, state otpbot.MessageState) string {
	switch state {
	case otpbot.StateLive:
		if kind == otpbot.KindApproval {
			return "approval_live"
		}
		return "code_live"
	case otpbot.StateExpired:
		if kind == otpbot.KindApproval {
			return "approval_expired"
		}
		return "code_expired"
	case otpbot.StateHidden:
		return "message_hidden"
	case otpbot.StateDecided:
		return "message_decided"
	default:
		return "message_failed"
	}
}

// RenderMessage renders a code or approval message as it should look at
// now. A live message whose expiry has passed is shown as expired, so a late
// refresh can never put a stale code back on screen; the code and link are
// handed to the template only while the message is live.
func (l *Locale) RenderMessage(msg otpbot.Message, now time.Time) (string, error) {
	state := msg.State
	if state == "" {
		state = otpbot.StateLive
	}
	ev := msg.Event
	if state == otpbot.StateLive && ev.Expired(now) {
		state = otpbot.StateExpired
	}
	if ev.Decided() && (state == otpbot.StateLive || state == otpbot.StateExpired) {
		// Its own push says the request was answered (the store decides
		// the message at ingest; a message stored before that rule, or one
		// rendered by otpbot render, shows it all the same).
		state = otpbot.StateDecided
	}
	view := l.messageView(msg, state, now)
	if state == otpbot.StateLive {
		if !ev.ExpiresAt.IsZero() {
			view.Left = ev.ExpiresAt.Sub(now)
			view.LeftText = Remaining(view.Left)
		}
		view.CanDecline = l.set.answers && ev.Kind == otpbot.KindApproval && msg.Decision == ""
	} else {
		ev = ev.Redacted()
	}
	view.Event = ev
	return l.Render(MessageTemplate(ev.Kind, state), view)
}

// messageView is the view of msg in state without its event and time
// left, which RenderMessage and RenderApproval set their way.
func (l *Locale) messageView(msg otpbot.Message, state otpbot.MessageState, now time.Time) MessageView {
	view := MessageView{State: state, Declined: declined(msg), Card: l.CardLabel(msg.Event, msg.CardName), Now: now}
	if msg.Decision != "" {
		view.Decision = l.DecisionLabel(msg.Decision)
		if d, ok := ParseDecision(msg.Decision); ok {
			view.Answer = &d
		}
	}
	return view
}

// The answers an approval step asks the user to confirm (MessageView.Confirm).
const (
	ConfirmApprove = "approve"
	ConfirmDecline = "decline"
)

// The problems an approval step reports (MessageView.Problem).
const (
	// ProblemUnreachable: HyperCard did not answer (network, timeout, 5xx);
	// the request is still open and a new tap tries again.
	ProblemUnreachable = "unreachable"
	// ProblemRefused: HyperCard answered the decision with an error.
	ProblemRefused = "refused"
)

// ApprovalStep is a transient view of a live approval request, shown only
// in the chat where someone tapped: the confirmation a first tap asks for,
// or the failure of the call to HyperCard. Exactly one field is set.
type ApprovalStep struct {
	Confirm string // ConfirmApprove or ConfirmDecline: approval_confirm
	Problem string // ProblemUnreachable or ProblemRefused: approval_problem
}

// RenderApproval renders an approval request at a step of its answer
// (approval_confirm or approval_problem). A message that is no longer a
// live, unexpired, unanswered approval request renders as RenderMessage
// shows it, so a late tap can never bring back a finished request.
func (l *Locale) RenderApproval(msg otpbot.Message, now time.Time, step ApprovalStep) (string, error) {
	state := msg.State
	if state == "" {
		state = otpbot.StateLive
	}
	ev := msg.Event
	if state != otpbot.StateLive || ev.Kind != otpbot.KindApproval || ev.Expired(now) || msg.Decision != "" || ev.Decided() ||
		(step.Confirm == "" && step.Problem == "") {
		return l.RenderMessage(msg, now)
	}
	view := l.messageView(msg, state, now)
	view.Event, view.Confirm, view.Problem = ev.Redacted(), step.Confirm, step.Problem
	if !ev.ExpiresAt.IsZero() {
		view.Left = ev.ExpiresAt.Sub(now)
		view.LeftText = Remaining(view.Left)
	}
	name := "approval_problem"
	if step.Confirm != "" {
		name, view.Problem = "approval_confirm", ""
	} else {
		view.CanDecline = l.set.answers
	}
	return l.Render(name, view)
}

// declined reports whether msg's request was declined: by an answer given
// here (its Decision), else by HyperCard's own result.
func declined(msg otpbot.Message) bool {
	if msg.Decision != "" {
		d, _ := ParseDecision(msg.Decision)
		return !d.Approved
	}
	return msg.Event.AuthState == otpbot.AuthDeclined
}
