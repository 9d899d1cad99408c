package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/promreg"
	"github.com/otpbot/otpbot/templates"
)

// CommandStore is what the bot commands need of the store: links, history,
// the messages behind live codes, and invites.
type CommandStore interface {
	Link(ctx context.Context, l otpbot.Link) error
	Unlink(ctx context.Context, key otpbot.Key, target otpbot.Target) (bool, error)
	LinksForChat(ctx context.Context, chatID int64) ([]otpbot.Link, error)
	History(ctx context.Context, key otpbot.Key, limit int) ([]otpbot.HistoryEntry, error)
	Message(ctx context.Context, id string) (otpbot.Message, bool, error)
	MessagesForChat(ctx context.Context, chatID int64) ([]otpbot.Message, error)
	UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error
	CreateInvite(ctx context.Context, inv otpbot.Invite) error
	RedeemInvite(ctx context.Context, hash string, target otpbot.Target, now time.Time) (otpbot.Invite, error)
	// Enqueue schedules the deletion of a /codes reply (TaskDelete).
	Enqueue(ctx context.Context, tasks ...otpbot.Task) error
	// ChatSettings and SetChatSetting keep each chat's language and time
	// zone, and the language of a private chat's user.
	otpbot.ChatSettingsStore
}

// replier is the part of the Telegram client that answers users.
type replier interface {
	Send(ctx context.Context, m telegram.OutMessage) (int, error)
	Edit(ctx context.Context, messageID int, m telegram.OutMessage) error
	Delete(ctx context.Context, target otpbot.Target, messageID int) error
	AnswerCallback(ctx context.Context, callbackID, text string, alert bool) error
}

// Limits of the commands.
const (
	// DefaultInviteTTL is how long an invite can be redeemed
	// (docs/contract.md#bot-commands).
	DefaultInviteTTL = 24 * time.Hour
	// historyDefault and historyMax bound /history's N: the default, and a
	// cap that keeps one command from flooding a chat with messages.
	historyDefault = 10
	historyMax     = 50
	// inviteBytes of randomness per invite token: 192 bits, 32 base64url
	// characters, well within Telegram's 64 for a start parameter.
	inviteBytes = 24
)

// CommandsOptions configure Commands.
type CommandsOptions struct {
	Store     CommandStore
	Client    replier
	Templates *templates.Set
	// Chats is the deliverer's view of the chats' settings: Commands
	// tells it of each change, so this process writes in the new
	// language at once. nil builds one of its own.
	Chats *templates.Chats
	// Admins are the Telegram user ids allowed to run the ops commands.
	Admins []int64
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// InviteTTL is how long an invite works; 0 means DefaultInviteTTL.
	InviteTTL time.Duration
	// Username returns the bot's username (for invite links), known once
	// the client called getMe.
	Username func() string
	// Registerer receives otpbot_bot_commands_total; nil registers nothing.
	Registerer prometheus.Registerer
	// Approvals answers the Approve and Decline buttons of HyperCard
	// approval requests; nil when providers.hypercard.api is not set (the
	// buttons are then never shown).
	Approvals *Approvals
	// Budget is the bot's rate budget, shared with the Deliverer: every
	// reply, edit and callback answer takes its slot there. nil means no
	// pacing (429s are still obeyed).
	Budget telegram.Budget
}

// access says who may run a command.
type access int

const (
	anyone        access = iota
	linkedOrAdmin        // a chat with at least one link, or an admin
	adminOnly
	privateOrAdmin // anyone in a private chat, an admin in a group: the chat's settings
)

// command is one bot command.
type command struct {
	who access
	run func(ctx context.Context, r *request) error
}

// request is one command invocation.
type request struct {
	name   string
	msg    *tgbotapi.Message
	target otpbot.Target
	user   int64
	admin  bool
	args   []string
	// private is true in a private chat (the user's own with the bot).
	private bool
	// loc writes the replies: the chat's language and time zone (see
	// chatLocale); settings are the chat's, as read for it.
	loc      *templates.Locale
	settings otpbot.ChatSettings
	// links of the chat, loaded at most once per request.
	links  []otpbot.Link
	loaded bool
}

// Commands turns Telegram updates (commands and button presses) into
// actions on the store and replies. It implements UpdateHandler.
type Commands struct {
	store     CommandStore
	client    replier
	menu      telegram.MenuSetter
	tmpl      *templates.Set
	chats     *templates.Chats
	admins    map[int64]bool
	now       func() time.Time
	log       *slog.Logger
	inviteTTL time.Duration
	username  func() string
	commands  map[string]command
	callbacks map[string]callbackFunc
	handled   *prometheus.CounterVec
	approvals *Approvals
	// outq sends the answers in the background (see replyQueue).
	outq *replyQueue
}

var _ telegram.UpdateHandler = (*Commands)(nil)

// NewCommands checks opts and builds the command handler.
func NewCommands(opts CommandsOptions) (*Commands, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("commands: store is required")
	case opts.Client == nil:
		return nil, errors.New("commands: client is required")
	case opts.Templates == nil:
		return nil, errors.New("commands: templates are required")
	}
	paced := telegram.NewPaced(opts.Client, opts.Budget, opts.Logger)
	c := &Commands{
		store:     opts.Store,
		client:    paced,
		menu:      paced,
		tmpl:      opts.Templates,
		chats:     opts.Chats,
		admins:    map[int64]bool{},
		now:       opts.Now,
		log:       opts.Logger,
		inviteTTL: opts.InviteTTL,
		username:  opts.Username,
		approvals: opts.Approvals,
		handled: promreg.Register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpbot_bot_commands_total",
			Help: "Bot commands and button presses handled, by name and outcome (ok, refused, usage, error).",
		}, []string{"command", "outcome"})),
	}
	for _, id := range opts.Admins {
		c.admins[id] = true
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.outq = newReplyQueue(c.log, c.now)
	if c.inviteTTL <= 0 {
		c.inviteTTL = DefaultInviteTTL
	}
	if c.username == nil {
		c.username = func() string { return "" }
	}
	if c.chats == nil {
		c.chats = templates.NewChats(templates.ChatsOptions{Set: c.tmpl, Store: c.store, Logger: c.log, Now: c.now})
	}
	c.commands = map[string]command{
		"start":    {anyone, c.start},
		"help":     {anyone, c.help},
		"link":     {adminOnly, c.link},
		"unlink":   {adminOnly, c.unlink},
		"links":    {linkedOrAdmin, c.links},
		"invite":   {adminOnly, c.invite},
		"history":  {linkedOrAdmin, c.history},
		"codes":    {linkedOrAdmin, c.codes},
		"replies":  {adminOnly, c.replies},
		"language": {privateOrAdmin, c.language},
		"timezone": {privateOrAdmin, c.timezone},
	}
	c.callbacks = c.callbackRoutes()
	return c, nil
}

// HandleUpdate handles one command or button press. Other updates (plain
// messages, edits, channel posts) are ignored. An error means the update
// could not be fully handled; the user has already been told when possible.
func (c *Commands) HandleUpdate(ctx context.Context, upd tgbotapi.Update) error {
	switch {
	case upd.CallbackQuery != nil:
		return c.handleCallback(ctx, upd.CallbackQuery)
	case upd.Message != nil:
		return c.handleMessage(ctx, upd.Message)
	}
	return nil
}

func (c *Commands) handleMessage(ctx context.Context, m *tgbotapi.Message) error {
	if m.From == nil || m.Chat == nil {
		return nil // channel posts and anonymous senders run no commands
	}
	name, at, _ := strings.Cut(m.CommandWithAt(), "@")
	if name == "" {
		return nil
	}
	if at != "" && !strings.EqualFold(at, c.username()) {
		return nil // "/links@otherbot" in a group is not for us
	}
	r := &request{
		name:    strings.ToLower(name),
		msg:     m,
		target:  otpbot.Target{ChatID: m.Chat.ID, ThreadID: telegram.ThreadFrom(ctx)},
		user:    m.From.ID,
		admin:   c.admins[m.From.ID],
		args:    strings.Fields(m.CommandArguments()),
		private: m.Chat.IsPrivate(),
	}
	cmd, ok := c.commands[r.name]
	if !ok && !r.private && at == "" {
		// In a group, other bots' commands without @suffix reach us too;
		// only answer an unknown command said to us directly.
		return nil
	}
	r.loc, r.settings = c.chatLocale(ctx, m.Chat.ID, r.private, m.From)
	if !ok {
		return c.unknown(ctx, r)
	}
	allowed, reason, err := c.allowed(ctx, cmd.who, r)
	if err == nil && !allowed {
		return c.refuse(ctx, r, reason)
	}
	if err == nil {
		err = cmd.run(ctx, r)
	}
	if err != nil {
		c.count(r.name, "error")
		if rerr := c.reply(ctx, r, "error", nil); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("command /%s in chat %d: %w", r.name, r.target.ChatID, err)
	}
	return nil
}

// allowed reports whether r may run a command with access who, and when
// it may not, why (templates.RefusedView.Reason).
func (c *Commands) allowed(ctx context.Context, who access, r *request) (bool, string, error) {
	switch {
	case who == anyone || r.admin:
		return true, "", nil
	case who == adminOnly:
		return false, templates.RefusedAdmin, nil
	case who == privateOrAdmin:
		return r.private, templates.RefusedGroupAdmin, nil
	}
	links, err := c.chatLinks(ctx, r)
	return len(links) > 0, templates.RefusedLinked, err
}

// chatLinks returns the links of the request's chat (every topic).
func (c *Commands) chatLinks(ctx context.Context, r *request) ([]otpbot.Link, error) {
	if !r.loaded {
		links, err := c.store.LinksForChat(ctx, r.target.ChatID)
		if err != nil {
			return nil, fmt.Errorf("links of chat: %w", err)
		}
		r.links, r.loaded = links, true
	}
	return r.links, nil
}

func (c *Commands) count(name, outcome string) { c.handled.WithLabelValues(name, outcome).Inc() }

// reply renders the named template and sends it to the request's chat and
// topic, as an answer to the command message.
func (c *Commands) reply(ctx context.Context, r *request, name string, data any) error {
	text, err := r.loc.Render(name, data)
	if err != nil {
		return err
	}
	return c.send(ctx, r, text, nil)
}

// send queues text (with buttons, nil for none) as the reply to r. The
// command's work is done by then: a reply Telegram refuses, or cannot take
// for ReplyMaxAge, is logged and never turns the command into a failure.
func (c *Commands) send(_ context.Context, r *request, text string, buttons [][]telegram.Button) error {
	m := telegram.OutMessage{Target: r.target, Text: text, ReplyTo: r.msg.MessageID, Buttons: buttons}
	name := r.name
	c.outq.push(r.target.ChatID, func(ctx context.Context) {
		if _, err := c.client.Send(ctx, m); err != nil {
			c.log.Error("command reply not sent", "command", name, "chat", m.Target.ChatID, "err", err)
		}
	})
	return nil
}

// Close stops taking replies and waits until the queued ones are sent or
// ctx ends (then they are cut off). serve calls it at shutdown.
func (c *Commands) Close(ctx context.Context) { c.outq.close(ctx) }

// ok counts a successful command and sends its reply.
func (c *Commands) ok(ctx context.Context, r *request, name string, data any) error {
	c.count(r.name, "ok")
	return c.reply(ctx, r, name, data)
}

// okPages counts a successful command and sends its n items (history
// entries, live codes) over as many messages as Telegram's length limit
// needs; page builds the view of one message (see templates.RenderPages).
func (c *Commands) okPages(ctx context.Context, r *request, name string, n int, page func(from, to, part, parts int) any) error {
	pages, err := r.loc.RenderPages(name, n, page)
	if err != nil {
		return err
	}
	c.count(r.name, "ok")
	for _, p := range pages {
		if err := c.send(ctx, r, p, nil); err != nil {
			return err
		}
	}
	return nil
}

// okButtons counts a successful command and sends its reply with buttons.
func (c *Commands) okButtons(ctx context.Context, r *request, name string, data any, buttons [][]telegram.Button) error {
	c.count(r.name, "ok")
	text, err := r.loc.Render(name, data)
	if err != nil {
		return err
	}
	return c.send(ctx, r, text, buttons)
}

// errSettingNotSaved: the store did not take a chat's setting (the
// reason is logged); the user is told to try again.
var errSettingNotSaved = errors.New("chat setting not saved")

func (c *Commands) usage(ctx context.Context, r *request, usage string) error {
	c.count(r.name, "usage")
	return c.reply(ctx, r, "usage", templates.UsageView{Usage: usage})
}
