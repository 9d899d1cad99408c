package bot

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/promreg"
	"github.com/otpbot/otpbot/templates"
)

// FollowUpStore is what FollowUps needs of the store: the links of a key (for
// the chats that opted in), the messages of a chat (for the code message
// to answer) and the outbox.
type FollowUpStore interface {
	LinksForKey(ctx context.Context, key otpbot.Key) ([]otpbot.Link, error)
	MessagesForChat(ctx context.Context, chatID int64) ([]otpbot.Message, error)
	Enqueue(ctx context.Context, tasks ...otpbot.Task) error
}

// FollowUpRenderer picks the templates a chat is written in, to render
// "follow_up" in its language and zone; templates.Chats implements it
// (templates.Set writes every chat in the defaults).
type FollowUpRenderer interface {
	Locale(ctx context.Context, chatID int64) *templates.Locale
}

// DefaultFollowUpTimeout bounds the store work of one FollowUp call: the
// provider waits for its answer meanwhile.
const DefaultFollowUpTimeout = 2 * time.Second

// FollowUpsOptions configure FollowUps.
type FollowUpsOptions struct {
	Store    FollowUpStore
	Renderer FollowUpRenderer
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds one FollowUp call; 0 means DefaultFollowUpTimeout.
	Timeout time.Duration
	// Registerer receives otpbot_thread_replies_total; nil registers
	// nothing.
	Registerer prometheus.Registerer
}

// FollowUps adds the later events of a transaction to the conversation of
// its code message: the CC_CONSUME (a payment) that follows a 3DS_OTP with
// the same UPay trace is sent as a reply to that 3DS_OTP's message, so the
// cardholder sees the code and what came of it together. Only chats that
// opted in get it (Link.Replies, set with /replies on); by default such
// events are only kept in history.
//
// It implements the webhooks FollowUps hook: the webhook handler calls
// FollowUp for each new info event with a trace once Ingest committed it,
// before answering the provider. FollowUp only reads the store and queues a
// TaskNotice (PriorityOther) that answers the code message (Task.ReplyTo);
// the Deliverer sends it.
//
// The reply is best-effort, by design: it is queued after the push was
// committed (the event is in history at that point), not in the same
// transaction, so a crash between the two, a store failure or an
// unanswered code message loses only this courtesy reply. A chat with no
// code message of that transaction that Telegram accepted (none sent, sent
// to another chat, or not sent yet) gets nothing: a reply needs something
// to answer.
//
// A repeated push never reaches FollowUp (Ingest reports it a duplicate),
// and the task ID is derived from the event and the target, so one event
// queues at most one reply per chat and topic, even when the chat is
// linked to both the card and its customer.
type FollowUps struct {
	store   FollowUpStore
	render  FollowUpRenderer
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	replies *prometheus.CounterVec
}

// NewFollowUps checks opts and creates FollowUps.
func NewFollowUps(opts FollowUpsOptions) (*FollowUps, error) {
	if opts.Store == nil || opts.Renderer == nil {
		return nil, errors.New("follow-ups: store and renderer are required")
	}
	t := &FollowUps{
		store:   opts.Store,
		render:  opts.Renderer,
		log:     opts.Logger,
		now:     opts.Now,
		timeout: opts.Timeout,
		replies: promreg.Register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			// The series keeps the name dashboards and alerts know.
			Name: "otpbot_thread_replies_total",
			Help: "Events of a code's transaction for chats that opted in to replies, by outcome: queued (a reply to the code message), no_message (no code message of that transaction in the chat to answer), error (the reply was lost; the event is in history).",
		}, []string{"outcome"})),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.timeout <= 0 {
		t.timeout = DefaultFollowUpTimeout
	}
	return t, nil
}

// FollowUpID is the ID of the reply task that adds event eventID to
// its code message in target: one per event and target, so a
// second enqueue of the same reply replaces the first instead of doubling
// it.
func FollowUpID(eventID string, target otpbot.Target) string {
	return "reply:" + eventID + "@" + target.String()
}

// FollowUp queues ev as a reply to the code message of its transaction in
// every chat (topic) linked to one of its keys by an unbroken link with
// Replies on. Only new info events with a trace are considered; anything
// else is ignored. Failures are logged and counted, never returned: the
// push is acknowledged whatever happens here.
func (t *FollowUps) FollowUp(ctx context.Context, ev otpbot.Event) {
	if t == nil || ev.Kind != otpbot.KindInfo || ev.Trace == "" {
		return
	}
	ev = ev.Redacted()
	// The provider's request may end the moment it has its answer; the
	// reply is queued within its own short budget instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
	defer cancel()

	targets, err := t.optedIn(ctx, ev)
	if err != nil {
		t.fail(ev, err)
		return
	}
	if len(targets) == 0 {
		return // the default: history only
	}
	// The reply names the card as the code message it answers does (the
	// chat's name for it, Message.CardName), in the chat's language:
	// rendered once per language, zone and name.
	texts := map[threadText]string{}
	now := t.now()
	created := ev.ReceivedAt
	if created.IsZero() {
		created = now
	}
	msgs := map[int64][]otpbot.Message{} // per chat, loaded once
	var tasks []otpbot.Task
	for _, target := range targets {
		chat, ok := msgs[target.ChatID]
		if !ok {
			if chat, err = t.store.MessagesForChat(ctx, target.ChatID); err != nil {
				t.fail(ev, err)
				return
			}
			msgs[target.ChatID] = chat
		}
		m, ok := codeMessage(chat, target, ev)
		if !ok {
			t.replies.WithLabelValues("no_message").Inc()
			t.log.Debug("no code message to reply to", "event", ev.Name, "id", otpbot.Ref(ev.ID), "target", target)
			continue
		}
		loc := t.render.Locale(ctx, target.ChatID)
		key := threadText{loc, m.CardName}
		text, ok := texts[key]
		if !ok {
			if text, err = loc.Render("follow_up", templates.FollowUpView{Event: ev, Card: loc.CardLabel(ev, m.CardName)}); err != nil {
				t.fail(ev, err)
				return
			}
			texts[key] = text
		}
		tasks = append(tasks, otpbot.Task{
			ID: FollowUpID(ev.ID, target), Kind: otpbot.TaskNotice, Priority: otpbot.PriorityOther,
			Target: target, Due: now, Created: created, Text: text, ReplyTo: m.TelegramID,
		})
	}
	if len(tasks) == 0 {
		return
	}
	if err := t.store.Enqueue(ctx, tasks...); err != nil {
		t.fail(ev, err)
		return
	}
	t.replies.WithLabelValues("queued").Add(float64(len(tasks)))
	for _, task := range tasks {
		attrs := []any{"event", ev.Name, "id", otpbot.Ref(ev.ID), "target", task.Target, "reply_to", task.ReplyTo}
		if ev.CardLast4 != "" {
			attrs = append(attrs, "card", otpbot.CardNumber(ev.CardLast4))
		}
		t.log.Info("reply to a code message queued", attrs...)
	}
}

// threadText is what a follow-up's text depends on besides its event.
type threadText struct {
	loc  *templates.Locale
	name string
}

// optedIn returns the targets of ev's keys whose link is unbroken and has
// Replies on, each once, in the order of the keys.
func (t *FollowUps) optedIn(ctx context.Context, ev otpbot.Event) ([]otpbot.Target, error) {
	var targets []otpbot.Target
	seen := map[otpbot.Target]bool{}
	for _, key := range ev.Keys() {
		links, err := t.store.LinksForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if l.Replies && !l.Broken && !seen[l.Target] {
				seen[l.Target] = true
				targets = append(targets, l.Target)
			}
		}
	}
	return targets, nil
}

// codeMessage finds in a chat's messages the one ev answers: a code or
// approval message in exactly target (same topic) of the same provider and
// transaction, that Telegram accepted. Of several (a 3DS_OTP and then a
// 3DS_CONFIRM of one purchase) it is the latest sent.
func codeMessage(msgs []otpbot.Message, target otpbot.Target, ev otpbot.Event) (otpbot.Message, bool) {
	var best otpbot.Message
	found := false
	for _, m := range msgs {
		if m.Target != target || m.TelegramID == 0 || !m.Event.Kind.Pushed() ||
			m.Event.Provider != ev.Provider || m.Event.Trace != ev.Trace || m.Group == ev.Group {
			continue
		}
		if !found || m.SentAt.After(best.SentAt) || (m.SentAt.Equal(best.SentAt) && m.TelegramID > best.TelegramID) {
			best, found = m, true
		}
	}
	return best, found
}

// fail logs and counts a reply that could not be queued. The event itself
// is safe in history.
func (t *FollowUps) fail(ev otpbot.Event, err error) {
	t.replies.WithLabelValues("error").Inc()
	t.log.Warn("reply to a code message not queued; the event is in history", "event", ev.Name, "id", otpbot.Ref(ev.ID), "err", err)
}
