package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/promreg"
	"github.com/otpbot/otpbot/templates"
)

// Answering HyperCard's AUTH_3DS approval requests from Telegram.
//
// A live request carries Approve and Decline. A first tap asks for a
// confirming tap in that chat only (the message is edited there; the other
// chats keep their buttons), by the same user in the same direction
// (approve_confirm.go). The confirming tap calls HyperCard once: a
// lease on the request's message group, in the shared store, lets one tap
// through while a double tap or another chat's tap waits its turn, and the
// winner marks every chat's message decided before it lets go. Whoever comes
// next finds the request answered and calls nothing. When the call fails,
// the lease is released at once and the tapping chat is told so, with the
// buttons back: only the user's next tap (and its confirmation) tries
// again. The accepted answer is recorded in the card's history.

// The arguments of the approval buttons (CallbackApprove,
// CallbackDecline): the name alone asks for confirmation;
// ":confirm:NONCE" sends the answer; ":cancel:NONCE" goes back. NONCE
// names the first tap's confirmation.
const (
	argConfirm = "confirm"
	argCancel  = "cancel"
)

// decisionLeasePrefix + a message group names the lease held while one
// tap's answer is on its way to HyperCard.
const decisionLeasePrefix = "auth-decision:"

// DefaultApprovalTimeout bounds one call to HyperCard when
// ApprovalOptions.Timeout is zero.
const DefaultApprovalTimeout = 10 * time.Second

// Answers to taps on the approval buttons: the names of their pieces
// (answers.tmpl; Telegram shows at most 200 characters).
const (
	answerAskApprove   = "answer_ask_approve"
	answerAskDecline   = "answer_ask_decline"
	answerCancelled    = "answer_cancelled"
	answerApproved     = "answer_approved"
	answerDeclined     = "answer_declined"
	answerUnreachable  = "answer_unreachable"
	answerAPIRefused   = "answer_api_refused"
	answerBusy         = "answer_busy"
	answerExpired      = "answer_expired"
	answerAnswered     = "answer_answered"
	answerAnsweredHere = "answer_answered_here"
	answerNotLinked    = "answer_not_linked"
	answerNotAllowed   = "answer_not_allowed"
	answerNotDisplayed = "answer_not_displayed"
)

// Approver answers a HyperCard approval request: auth_result result for
// request authID of card cardID. *hyperpay.Client implements it. An error
// means HyperCard did not confirm the answer.
type Approver interface {
	Decide(ctx context.Context, authID, cardID string, result int) error
}

// ApprovalStore is what answering approval requests needs of the store: the
// links of a card (to find every chat the request was shown in), the
// messages, the coordinator's leases (the decision, and each first tap's
// confirmation), and the history.
type ApprovalStore interface {
	LinksForKey(ctx context.Context, key otpbot.Key) ([]otpbot.Link, error)
	Message(ctx context.Context, id string) (otpbot.Message, bool, error)
	MessagesForChat(ctx context.Context, chatID int64) ([]otpbot.Message, error)
	UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
	// Ingest records who answered a request in the card's history.
	Ingest(ctx context.Context, ev otpbot.Event) (otpbot.IngestResult, error)
}

// ApprovalOptions configure Approvals (providers.hypercard.api).
type ApprovalOptions struct {
	Approver Approver
	Store    ApprovalStore
	// ApproveResult and DeclineResult are the auth_result values sent for
	// each answer. HyperCard accepts 2 and 3 without saying which is
	// which, so both come from configuration; they must differ.
	ApproveResult int
	DeclineResult int
	// Timeout bounds one call to HyperCard; DefaultApprovalTimeout when 0.
	// The decision lease outlives it, so a slow call never lets a second
	// one start.
	Timeout time.Duration
	// ConfirmTTL is how long a first tap waits for its confirming tap;
	// DefaultConfirmTTL when 0.
	ConfirmTTL time.Duration
	// AllowedUsers, when not empty, are the only Telegram users who may
	// answer in a group; in a private chat its owner always may. Empty
	// means any member of a linked chat.
	AllowedUsers []int64
	// Retryable tells a failure that may pass (no answer, timeout, 5xx)
	// from a refusal; hyperpay.Retryable fits. nil treats every failure
	// as retryable. It only chooses the words the user sees: either way a
	// new tap tries again.
	Retryable func(error) bool
	// Now is the clock; time.Now when nil.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Approvals puts Approve and Decline under live HyperCard approval requests
// and answers the taps (see CommandsOptions.Approvals and Buttons).
type Approvals struct {
	approver   Approver
	store      ApprovalStore
	approve    int
	decline    int
	timeout    time.Duration
	leaseTTL   time.Duration
	confirmTTL time.Duration
	allowed    map[int64]bool
	retryable  func(error) bool
	now        func() time.Time
	log        *slog.Logger
	decisions  *prometheus.CounterVec
}

// NewApprovals checks opts and builds Approvals.
func NewApprovals(opts ApprovalOptions) (*Approvals, error) {
	switch {
	case opts.Approver == nil:
		return nil, errors.New("approvals: approver is required")
	case opts.Store == nil:
		return nil, errors.New("approvals: store is required")
	case opts.ApproveResult == 0 || opts.DeclineResult == 0:
		return nil, errors.New("approvals: approve and decline results are required")
	case opts.ApproveResult == opts.DeclineResult:
		return nil, errors.New("approvals: approve and decline results must differ")
	case opts.Timeout < 0:
		return nil, errors.New("approvals: timeout must not be negative")
	case opts.ConfirmTTL < 0:
		return nil, errors.New("approvals: confirmation lifetime must not be negative")
	}
	a := &Approvals{
		approver: opts.Approver, store: opts.Store,
		approve: opts.ApproveResult, decline: opts.DeclineResult,
		timeout: opts.Timeout, confirmTTL: opts.ConfirmTTL, allowed: map[int64]bool{},
		retryable: opts.Retryable, now: opts.Now, log: opts.Logger,
		decisions: promreg.Register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpbot_approval_decisions_total",
			Help: "Confirmed answers to HyperCard approval requests, by answer (approve, decline) and outcome (ok, unreachable, refused, busy).",
		}, []string{"answer", "outcome"})),
	}
	for _, id := range opts.AllowedUsers {
		a.allowed[id] = true
	}
	if a.timeout == 0 {
		a.timeout = DefaultApprovalTimeout
	}
	if a.confirmTTL == 0 {
		a.confirmTTL = DefaultConfirmTTL
	}
	// Past the call's own bound, with room for the store writes after it:
	// while the lease lives no second call can start.
	a.leaseTTL = a.timeout + 20*time.Second
	if a.retryable == nil {
		a.retryable = func(error) bool { return true }
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Buttons is the keyboard of a live message for
// DelivererOptions.ExtraButtons: Approve and Decline, in loc's language,
// under an unanswered HyperCard approval request, nothing for everything
// else. The Deliverer asks only for live messages that have not expired,
// so a decided or expired request is shown without buttons wherever it
// was sent.
func (a *Approvals) Buttons(loc *templates.Locale, msg otpbot.Message) [][]telegram.Button {
	if !answerable(msg) {
		return nil
	}
	return approvalKeyboard(loc)
}

// answerable reports whether msg is an approval request this bot can answer
// (live, undecided here and by HyperCard's own result, naming the request
// and its card), whatever the time.
func answerable(msg otpbot.Message) bool {
	ev := msg.Event
	return ev.Kind == otpbot.KindApproval && ev.Provider == otpbot.ProviderHyperCard &&
		ev.AuthID != "" && ev.CardID != "" && msg.State == otpbot.StateLive && msg.Decision == "" && !ev.Decided()
}

func approvalKeyboard(loc *templates.Locale) [][]telegram.Button {
	return [][]telegram.Button{{
		{Text: loc.Label("button_approve", nil), Data: telegram.CallbackApprove},
		{Text: loc.Label("button_decline", nil), Data: telegram.CallbackDecline},
	}}
}

// confirmKeyboard is the confirmation step of a first tap: its buttons
// carry the confirmation's nonce.
func confirmKeyboard(loc *templates.Locale, approve bool, nonce string) [][]telegram.Button {
	name, text := telegram.CallbackApprove, loc.Label("button_confirm_approve", nil)
	if !approve {
		name, text = telegram.CallbackDecline, loc.Label("button_confirm_decline", nil)
	}
	return [][]telegram.Button{
		{{Text: text, Data: name + ":" + argConfirm + ":" + nonce}},
		{{Text: loc.Label("button_cancel", nil), Data: name + ":" + argCancel + ":" + nonce}},
	}
}

func answerWord(approve bool) string {
	if approve {
		return "approve"
	}
	return "decline"
}

// approvalTap returns the callback of the Approve (approve true) or Decline
// button and of their confirm and cancel steps.
func (c *Commands) approvalTap(approve bool) callbackFunc {
	return func(ctx context.Context, q *callbackRequest) (string, bool, error) {
		return c.answerApproval(ctx, q, approve)
	}
}

func (c *Commands) answerApproval(ctx context.Context, q *callbackRequest, approve bool) (string, bool, error) {
	a := c.approvals
	step, nonce, _ := strings.Cut(q.arg, ":")
	if (step == "" && q.arg != "") || (step != "" && step != argConfirm && step != argCancel) {
		return answerBroken, false, nil
	}
	m, found, err := c.messageUnder(ctx, q)
	if err != nil {
		return "", false, err
	}
	if !found {
		return answerGone, false, nil
	}
	if m.Event.Kind != otpbot.KindApproval {
		return answerBroken, false, nil
	}
	if text, ok, err := a.check(ctx, q, m); err != nil || !ok {
		return text, true, err
	}
	if step == "" {
		return c.askConfirmation(ctx, q, m, approve)
	}
	f := confirmation{message: m.ID, user: q.user, approve: approve, nonce: nonce}
	pending, err := a.pending(ctx, f)
	if err != nil {
		return "", false, err
	}
	if !pending {
		a.refused(m, q, f, step)
		return answerBroken, false, nil
	}
	if step == argCancel {
		a.endConfirmation(ctx, f)
		if err := c.showStep(ctx, q, m, templates.ApprovalStep{}, approvalKeyboard(q.loc)); err != nil {
			return "", false, err
		}
		return answerCancelled, false, nil
	}
	return c.decide(ctx, q, m, f)
}

// askConfirmation answers a first tap: it starts the user's confirmation
// and shows its buttons in the tapping chat.
func (c *Commands) askConfirmation(ctx context.Context, q *callbackRequest, m otpbot.Message, approve bool) (string, bool, error) {
	f, err := c.approvals.startConfirmation(ctx, m, q.user, approve)
	if err != nil {
		return "", false, err
	}
	step := templates.ApprovalStep{Confirm: templates.ConfirmApprove}
	answer := answerAskApprove
	if !approve {
		step.Confirm, answer = templates.ConfirmDecline, answerAskDecline
	}
	if err := c.showStep(ctx, q, m, step, confirmKeyboard(q.loc, approve, f.nonce)); err != nil {
		return "", false, err
	}
	return answer, false, nil
}

// refused logs a confirming or cancelling tap that matches no pending
// confirmation of its user and direction (another user's button, a forged
// or stale one): it changes nothing.
func (a *Approvals) refused(m otpbot.Message, q *callbackRequest, f confirmation, step string) {
	a.log.Info("approval tap without its confirmation refused", "auth_id", otpbot.Ref(m.Event.AuthID),
		"card", otpbot.CardID(m.Event.CardID), "answer", answerWord(f.approve), "step", step,
		"by", q.user, "target", m.Target)
}

// messageUnder finds the message under the tapped button: by the chat the
// tap came from and the Telegram message id, as the hide button does, so a
// tap can only ever reach a message of its own chat.
func (c *Commands) messageUnder(ctx context.Context, q *callbackRequest) (otpbot.Message, bool, error) {
	msgs, err := c.store.MessagesForChat(ctx, q.chatID)
	if err != nil {
		return otpbot.Message{}, false, fmt.Errorf("messages of chat: %w", err)
	}
	for _, m := range msgs {
		if m.TelegramID == q.messageID && m.Target.ChatID == q.chatID {
			return m, true, nil
		}
	}
	return otpbot.Message{}, false, nil
}

// check decides whether the tap may answer m: the request is still open,
// the chat is still linked to the card, and in a group the user is allowed.
// When it may not, text says why. A tap on a finished request also has its
// message re-rendered, in case a stale keyboard is still on screen.
func (a *Approvals) check(ctx context.Context, q *callbackRequest, m otpbot.Message) (text string, ok bool, err error) {
	now := a.now()
	switch {
	case m.Decision != "" || m.State == otpbot.StateDecided || m.Event.Decided():
		a.repair(ctx, m)
		if m.Decision == "" {
			return answerAnswered, false, nil
		}
		q.answerData = q.loc.DecisionLabel(m.Decision)
		return answerAnsweredHere, false, nil
	case m.State != otpbot.StateLive:
		a.repair(ctx, m)
		return answerExpired, false, nil
	case m.Event.Expired(now):
		// The deliverer's expiry edit takes the buttons away.
		return answerExpired, false, nil
	case !answerable(m):
		return answerBroken, false, nil
	}
	linked, err := a.linked(ctx, m)
	if err != nil {
		return "", false, err
	}
	if !linked {
		return answerNotLinked, false, nil
	}
	chat := q.query.Message.Chat
	if !chat.IsPrivate() && len(a.allowed) > 0 && !a.allowed[q.user] {
		return answerNotAllowed, false, nil
	}
	return "", true, nil
}

// linked reports whether m's target is still linked (and not broken) to
// the request's card.
func (a *Approvals) linked(ctx context.Context, m otpbot.Message) (bool, error) {
	key, ok := m.Event.RouteKey()
	if !ok {
		return false, nil
	}
	links, err := a.store.LinksForKey(ctx, key)
	if err != nil {
		return false, fmt.Errorf("links of card: %w", err)
	}
	for _, l := range links {
		if l.Target == m.Target && !l.Broken {
			return true, nil
		}
	}
	return false, nil
}

// showStep edits the tapped message, in its chat only, to a step of the
// answer (a zero step is the request as the deliverer shows it). Such
// edits bypass the outbox: they answer a tap at once and concern one chat,
// and they are not recorded, so the next countdown refresh shows the
// request with Approve and Decline again (a confirmation left alone lapses
// within codes.countdown_interval; the user taps again).
// If the request was answered or expired meanwhile, the stored message is
// re-rendered over the step, so a step is never left on a finished request.
func (c *Commands) showStep(ctx context.Context, q *callbackRequest, m otpbot.Message, step templates.ApprovalStep, kb [][]telegram.Button) error {
	a := c.approvals
	now := a.now()
	var text string
	var err error
	if step == (templates.ApprovalStep{}) {
		text, err = q.loc.RenderMessage(m, now)
	} else {
		text, err = q.loc.RenderApproval(m, now, step)
	}
	if err != nil {
		return fmt.Errorf("render approval step: %w", err)
	}
	if err := c.client.Edit(ctx, q.messageID, telegram.OutMessage{Target: m.Target, Text: text, Buttons: kb}); err != nil {
		return fmt.Errorf("edit approval step: %w", err)
	}
	fresh, ok, err := a.store.Message(ctx, m.ID)
	if err == nil && ok && !answerable(fresh) {
		a.repair(ctx, fresh)
	}
	return nil
}

// userLabel names who tapped, as the decided message shows it: their
// @username, else their name, else their user id.
func userLabel(q *callbackRequest) string {
	u := q.query.From
	if u.UserName != "" {
		return "@" + u.UserName
	}
	if name := strings.TrimSpace(u.FirstName + " " + u.LastName); name != "" {
		return name
	}
	return strconv.FormatInt(u.ID, 10)
}
