package bot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
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
	// DefaultInviteTTL is how long an invite can be redeemed (CONTRACT §6).
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
	// links of the chat, loaded at most once per request.
	links  []otpbot.Link
	loaded bool
}

// Commands turns Telegram updates (commands and button presses) into
// actions on the store and replies. It implements UpdateHandler.
type Commands struct {
	store     CommandStore
	client    replier
	tmpl      *templates.Set
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
	c := &Commands{
		store:     opts.Store,
		client:    telegram.NewPaced(opts.Client, opts.Budget, opts.Logger),
		tmpl:      opts.Templates,
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
	c.commands = map[string]command{
		"start":   {anyone, c.start},
		"help":    {anyone, c.help},
		"link":    {adminOnly, c.link},
		"unlink":  {adminOnly, c.unlink},
		"links":   {linkedOrAdmin, c.links},
		"invite":  {adminOnly, c.invite},
		"history": {linkedOrAdmin, c.history},
		"codes":   {linkedOrAdmin, c.codes},
		"replies": {adminOnly, c.replies},
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
		name:   strings.ToLower(name),
		msg:    m,
		target: otpbot.Target{ChatID: m.Chat.ID, ThreadID: telegram.ThreadFrom(ctx)},
		user:   m.From.ID,
		admin:  c.admins[m.From.ID],
		args:   strings.Fields(m.CommandArguments()),
	}
	cmd, ok := c.commands[r.name]
	if !ok {
		// In a group, other bots' commands without @suffix reach us too;
		// only answer an unknown command said to us directly.
		if m.Chat.IsPrivate() || at != "" {
			r.name = "unknown" // the metric label stays bounded
			return c.refuse(ctx, r)
		}
		return nil
	}
	allowed, err := c.allowed(ctx, cmd.who, r)
	if err == nil && !allowed {
		return c.refuse(ctx, r)
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

func (c *Commands) allowed(ctx context.Context, who access, r *request) (bool, error) {
	switch who {
	case anyone:
		return true, nil
	case adminOnly:
		return r.admin, nil
	}
	if r.admin {
		return true, nil
	}
	links, err := c.chatLinks(ctx, r)
	return len(links) > 0, err
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
	text, err := c.tmpl.Render(name, data)
	if err != nil {
		return err
	}
	return c.send(ctx, r, text)
}

// send queues text as the reply to r. The command's work is done by then:
// a reply Telegram refuses, or cannot take for ReplyMaxAge, is logged and
// never turns the command into a failure.
func (c *Commands) send(_ context.Context, r *request, text string) error {
	m := telegram.OutMessage{Target: r.target, Text: text, ReplyTo: r.msg.MessageID}
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
	pages, err := c.tmpl.RenderPages(name, n, page)
	if err != nil {
		return err
	}
	c.count(r.name, "ok")
	for _, p := range pages {
		if err := c.send(ctx, r, p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Commands) usage(ctx context.Context, r *request, usage string) error {
	c.count(r.name, "usage")
	return c.reply(ctx, r, "usage", templates.UsageView{Usage: usage})
}

func (c *Commands) refuse(ctx context.Context, r *request) error {
	c.count(r.name, "refused")
	return c.reply(ctx, r, "refused", nil)
}

// --- /start, /help ---

func (c *Commands) start(ctx context.Context, r *request) error {
	if len(r.args) > 0 {
		return c.redeem(ctx, r, r.args[0])
	}
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	return c.ok(ctx, r, "start", templates.StartView{
		ChatID: r.target.ChatID, ThreadID: r.target.ThreadID, Name: r.msg.From.FirstName,
		Admin: r.admin, Linked: len(links) > 0,
	})
}

func (c *Commands) help(ctx context.Context, r *request) error {
	linked := false
	if !r.admin {
		links, err := c.chatLinks(ctx, r)
		if err != nil {
			return err
		}
		linked = len(links) > 0
	}
	return c.ok(ctx, r, "help", templates.HelpView{Admin: r.admin, Linked: linked})
}

// --- /link, /unlink, /links ---

const (
	linkUsage   = "/link card ID [NAME] | /link customer NO"
	unlinkUsage = "/unlink card ID | /unlink customer NO"
	inviteUsage = "/invite card ID | /invite customer NO"
	historyHelp = "/history [ID] [N]"
	repliesHelp = "/replies on | /replies off"
)

func (c *Commands) link(ctx context.Context, r *request) error {
	key, name, err := parseLink(r.args)
	switch {
	case errors.Is(err, errCardName):
		// A name with a card number in it is refused like a card number
		// (and not repeated); any other bad name gets the usage.
		if digitsIn(strings.Join(r.args[2:], "")) > 8 {
			return c.cardNumber(ctx, r, "")
		}
		return c.usage(ctx, r, linkUsage)
	case errors.Is(err, errCardNumber):
		return c.cardNumber(ctx, r, "/"+r.name+" "+string(key.Type)+" ID "+confirmWord)
	case err != nil:
		return c.usage(ctx, r, linkUsage)
	}
	l := otpbot.Link{Key: key, Target: r.target, CreatedAt: c.now(), CreatedBy: r.user, Name: name}
	// A new link starts with replies off; renewing one (after it broke,
	// say) keeps the chat's choice, and its name unless a new one is given.
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	for _, old := range links {
		if old.Key == key && old.Target == r.target {
			l.Replies = old.Replies
			if l.Name == "" {
				l.Name = old.Name
			}
		}
	}
	if err := c.store.Link(ctx, l); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	c.log.Info("linked", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "target", r.target, "by", r.user,
		"named", l.Name != "")
	return c.ok(ctx, r, "link_ok", templates.LinkView{Key: key, Target: r.target, Name: l.Name})
}

// digitsIn counts the decimal digits in s.
func digitsIn(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

func (c *Commands) unlink(ctx context.Context, r *request) error {
	key, err := parseKey(r.args)
	if errors.Is(err, errCardNumber) {
		// A link the chat has can always be removed: it was made with
		// confirmWord.
		linked, lerr := c.hasLink(ctx, r, key)
		if lerr != nil {
			return lerr
		}
		if !linked {
			return c.cardNumber(ctx, r, "")
		}
		err = nil
	}
	if err != nil {
		return c.usage(ctx, r, unlinkUsage)
	}
	removed, err := c.store.Unlink(ctx, key, r.target)
	if err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	view := templates.LinkView{Key: key, Target: r.target}
	if !removed {
		return c.ok(ctx, r, "unlink_missing", view)
	}
	c.log.Info("unlinked", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "target", r.target, "by", r.user)
	return c.ok(ctx, r, "unlink_ok", view)
}

// hasLink reports whether key is linked to the request's chat and topic.
func (c *Commands) hasLink(ctx context.Context, r *request, key otpbot.Key) (bool, error) {
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return false, err
	}
	for _, l := range links {
		if l.Key == key && l.Target == r.target {
			return true, nil
		}
	}
	return false, nil
}

func (c *Commands) links(ctx context.Context, r *request) error {
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	links = slices.Clone(links)
	sort.Slice(links, func(i, j int) bool {
		if links[i].Target.ThreadID != links[j].Target.ThreadID {
			return links[i].Target.ThreadID < links[j].Target.ThreadID
		}
		return links[i].Key.String() < links[j].Key.String()
	})
	return c.ok(ctx, r, "links", templates.LinksView{ChatID: r.target.ChatID, Links: links})
}

// replies switches, for every link of this chat and topic, whether the
// later events of a code's transaction (the payment after a 3-D Secure
// code) are added to the code message as replies (see Threads). Like
// /link it renews the links it touches: a command from the chat shows the
// bot can reach it.
func (c *Commands) replies(ctx context.Context, r *request) error {
	if len(r.args) != 1 {
		return c.usage(ctx, r, repliesHelp)
	}
	var on bool
	switch strings.ToLower(r.args[0]) {
	case "on":
		on = true
	case "off":
	default:
		return c.usage(ctx, r, repliesHelp)
	}
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	n := 0
	for _, l := range links {
		if l.Target != r.target {
			continue // another topic of the chat decides for itself
		}
		l.Replies = on
		if err := c.store.Link(ctx, l); err != nil {
			return fmt.Errorf("replies: %w", err)
		}
		n++
	}
	if n > 0 {
		c.log.Info("replies switched", "on", on, "target", r.target, "links", n, "by", r.user)
	}
	return c.ok(ctx, r, "replies", templates.RepliesView{On: on, Target: r.target, Links: n})
}

// --- /invite and /start TOKEN ---

func (c *Commands) invite(ctx context.Context, r *request) error {
	key, ok, err := c.keyArg(ctx, r, inviteUsage)
	if !ok {
		return err
	}
	username := c.username()
	if username == "" {
		return errors.New("invite: bot username unknown")
	}
	buf := make([]byte, inviteBytes)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("invite: random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(buf)
	inv := otpbot.Invite{Hash: inviteHash(token), Key: key, CreatedBy: r.user, ExpiresAt: c.now().Add(c.inviteTTL)}
	if err := c.store.CreateInvite(ctx, inv); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	c.log.Info("invite created", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "by", r.user, "expires", inv.ExpiresAt)
	return c.ok(ctx, r, "invite", templates.InviteView{
		Key: key, URL: "https://t.me/" + username + "?start=" + token, ExpiresAt: inv.ExpiresAt,
	})
}

// inviteHash is how an invite token is stored: only its SHA-256, so that a
// copy of the store cannot be used to redeem invites.
func inviteHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validToken accepts what Telegram allows in a start parameter.
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (c *Commands) redeem(ctx context.Context, r *request, token string) error {
	r.name = "start_invite"
	if !validToken(token) {
		c.count(r.name, "refused")
		return c.reply(ctx, r, "invite_invalid", nil)
	}
	inv, err := c.store.RedeemInvite(ctx, inviteHash(token), r.target, c.now())
	if errors.Is(err, otpbot.ErrNotFound) {
		c.count(r.name, "refused")
		return c.reply(ctx, r, "invite_invalid", nil)
	}
	if err != nil {
		return fmt.Errorf("redeem invite: %w", err)
	}
	c.log.Info("invite redeemed", "key_type", inv.Key.Type, "key", otpbot.MaskedID(inv.Key.ID), "target", r.target, "by", r.user)
	return c.ok(ctx, r, "invite_redeemed", templates.LinkView{Key: inv.Key, Target: r.target})
}

// --- /codes ---

// codes lists the chat's live codes and approval requests, each code shown
// like in its message, with the time left. A code must never stay on
// screen past its expiry, so the reply is deleted when the first code it
// lists expires: a TaskDelete per message of the reply, due then, that the
// Deliverer carries out (and that survives a restart).
func (c *Commands) codes(ctx context.Context, r *request) error {
	msgs, err := c.store.MessagesForChat(ctx, r.target.ChatID)
	if err != nil {
		return fmt.Errorf("codes: %w", err)
	}
	now := c.now()
	var lines []templates.CodeLine
	var first time.Time // the earliest expiry listed
	for _, m := range msgs {
		// A request its push decided asks nothing more (the store marks
		// it decided; one stored before that rule is skipped all the same).
		if m.State != otpbot.StateLive || !m.Event.Kind.Pushed() || m.Event.Expired(now) || m.Event.Decided() {
			continue
		}
		line := templates.CodeLine{Event: m.Event.Redacted(), Code: m.Event.Code, Link: m.Event.Link,
			Card: templates.CardLabel(m.Event, m.CardName)}
		if exp := m.Event.ExpiresAt; !exp.IsZero() {
			line.Left = exp.Sub(now)
			line.LeftText = templates.Remaining(line.Left)
			if first.IsZero() || exp.Before(first) {
				first = exp
			}
		}
		lines = append(lines, line)
	}
	// Soonest to expire first: that is the one the cardholder is after.
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i].Event.ExpiresAt, lines[j].Event.ExpiresAt
		if a.IsZero() != b.IsZero() {
			return b.IsZero()
		}
		return a.Before(b)
	})
	deleteIn := ""
	if !first.IsZero() {
		deleteIn = templates.Remaining(first.Sub(now))
	}
	pages, err := c.tmpl.RenderPages("codes", len(lines), func(from, to, part, parts int) any {
		return templates.CodesView{Codes: lines[from:to], Part: part, Parts: parts, DeleteIn: deleteIn}
	})
	if err != nil {
		return err
	}
	c.count(r.name, "ok")
	target, replyTo, protect := r.target, r.msg.MessageID, len(lines) > 0
	c.outq.push(target.ChatID, func(ctx context.Context) {
		if err := c.sendCodes(ctx, target, replyTo, protect, pages, first); err != nil {
			c.log.Error("command reply not sent", "command", "codes", "chat", target.ChatID, "err", err)
		}
	})
	return nil
}

// sendCodes sends the pages of a /codes reply and schedules their deletion
// at first, the earliest expiry they list (none when zero).
func (c *Commands) sendCodes(ctx context.Context, target otpbot.Target, replyTo int, protect bool, pages []string, first time.Time) error {
	var tasks []otpbot.Task
	for _, p := range pages {
		id, err := c.client.Send(ctx, telegram.OutMessage{Target: target, Text: p, ReplyTo: replyTo, Protect: protect})
		if err != nil {
			err = fmt.Errorf("reply: %w", err)
			return errors.Join(err, c.dropCodes(ctx, target, tasks))
		}
		if !first.IsZero() {
			tasks = append(tasks, otpbot.Task{
				ID:   "delete:" + target.String() + ":" + strconv.Itoa(id),
				Kind: otpbot.TaskDelete, Priority: otpbot.PriorityUpdate,
				Target: target, TelegramID: id, Due: first, Created: first,
			})
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	if err := c.store.Enqueue(ctx, tasks...); err != nil {
		// Nothing would take the codes off the screen at expiry: take
		// them off now.
		return errors.Join(fmt.Errorf("codes: schedule the reply's deletion: %w", err), c.dropCodes(ctx, target, tasks))
	}
	return nil
}

// dropCodes deletes the /codes reply messages of tasks at once.
func (c *Commands) dropCodes(ctx context.Context, target otpbot.Target, tasks []otpbot.Task) error {
	var errs []error
	for _, t := range tasks {
		if err := c.client.Delete(ctx, target, t.TelegramID); err != nil {
			errs = append(errs, fmt.Errorf("delete the /codes reply: %w", err))
		}
	}
	return errors.Join(errs...)
}
