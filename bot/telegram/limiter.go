package telegram

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpbot/otpbot"
)

// Budget is the one rate budget every Bot API call of the bot takes from:
// code sends, updates, countdown edits, expiry edits, deletions, command
// replies, callback answers, ops reports and approval edits. Limiter keeps
// it in this process (the embedded store); RedisLimiter shares it between
// every process on one Redis.
type Budget interface {
	// Take takes one call's slot for target, with the share s of the
	// budget, and returns a zero Wait, or takes nothing and says how long
	// to wait before asking again and what refused. A target with ChatID 0
	// (a callback answer, getMe) takes only from the bot's global budget.
	Take(ctx context.Context, target otpbot.Target, s Share) Wait
	// Pause obeys a 429 for target and returns the pause applied.
	Pause(ctx context.Context, target otpbot.Target, retryAfter time.Duration) time.Duration
}

// Wait is Take's answer: zero when the slot was taken.
type Wait struct {
	// For is how long to wait before asking again; 0 when the slot was
	// taken.
	For time.Duration
	// Bot is set when the bot's own budget, shared by every chat, is what
	// refused (its rate, or a pause of the whole bot): every caller of this
	// process is refused alike, so they ask again in turn rather than all
	// at once each time a token comes back.
	Bot bool
	// Paused is set when a 429 pause refused (the chat's or the bot's):
	// nothing is to be asked before it ends.
	Paused bool
}

// LimiterOptions configure a Limiter (and a RedisLimiter). Zero values take
// the defaults, which are Telegram's published limits.
type LimiterOptions struct {
	// GlobalPerSec and GlobalBurst bound every call of the bot (Telegram:
	// about 30 a second). The rate is sustained exactly; the burst is what
	// may go at once after a quiet spell. Defaults 30 and 5.
	GlobalPerSec float64
	GlobalBurst  int
	// GlobalReserve is how many global tokens low-priority work (countdown
	// refreshes, ops notices) must leave for codes, updates and replies.
	// Default 2.
	GlobalReserve int
	// ChatPerSec and ChatBurst bound one chat (Telegram: about one message
	// a second, short bursts tolerated). Defaults 1 and 3. Low-priority
	// work leaves the chat's last token to a code.
	ChatPerSec float64
	ChatBurst  int
	// GroupPerMin and GroupBurst additionally bound group chats (negative
	// ids; Telegram: 20 messages a minute). Defaults 20 and 3; low-priority
	// work leaves the group's last token to a code.
	GroupPerMin float64
	GroupBurst  int
	// MaxRetryAfter caps the pause a 429's retry_after imposes; a larger
	// value is logged and cut. Default 60s.
	MaxRetryAfter time.Duration
	// GlobalFloodChats: when this many different chats are refused within a
	// second with the same retry_after of more than a second (a pause they
	// share, which a chat's own limit does not give), the flood is taken as
	// global and every chat rests. Default 3.
	GlobalFloodChats int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// withDefaults fills in the zero values.
func (o LimiterOptions) withDefaults() LimiterOptions {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.GlobalPerSec, 30)
	defInt(&o.GlobalBurst, 5)
	defInt(&o.GlobalReserve, 2)
	def(&o.ChatPerSec, 1)
	defInt(&o.ChatBurst, 3)
	def(&o.GroupPerMin, 20)
	defInt(&o.GroupBurst, 3)
	defInt(&o.GlobalFloodChats, 3)
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = time.Minute
	}
	if o.GlobalReserve >= o.GlobalBurst {
		o.GlobalReserve = max(o.GlobalBurst-1, 0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Share is how much of the budget a call may take, by what it carries:
// the later shares leave tokens to the earlier ones.
type Share int

const (
	// Urgent is a code or approval request, and its updates and expiry
	// edit: it may take the last token.
	Urgent Share = iota
	// Reply is a command reply or callback answer: it leaves one of the
	// bot's tokens to codes.
	Reply
	// Spare is a countdown refresh, an ops report or a probe: it leaves
	// the global reserve, and the last token of its chat and group, to
	// codes and replies.
	Spare
)

// ShareOf is the share of outbox work of priority p.
func ShareOf(p otpbot.Priority) Share {
	if p.Low() {
		return Spare
	}
	return Urgent
}

// need is how many tokens a call with share s needs in a bucket of burst
// tokens for it to take one: it leaves keep of them (global says whether
// the bucket is the bot's, with reserve kept for Spare work, or a chat's
// or group's, whose last token only Spare work leaves).
func need(s Share, burst, reserve int, global bool) float64 {
	keep := 0
	switch {
	case s == Spare && global:
		keep = reserve
	case s == Spare, s == Reply && global:
		keep = 1
	}
	return float64(1 + min(keep, max(burst-1, 0)))
}

// Limiter keeps otpbot under Telegram's flood limits in this process: a
// global bucket, one per chat and one more per group (token buckets of
// golang.org/x/time/rate, driven by the limiter's clock).
//
// It is priority-aware: work below PriorityUpdate (countdown refreshes, ops
// notices) only takes a token when the buckets keep headroom for codes: the
// global reserve, and the last token of the chat and of the group, so a
// code never waits for a refresh, not even in its own chat. A 429 pauses
// only its scope: the chat, or the whole bot when Telegram says the flood
// is global.
type Limiter struct {
	opts LimiterOptions
	now  func() time.Time
	log  *slog.Logger

	mu          sync.Mutex
	global      bucket
	globalUntil time.Time
	chats       map[int64]*chatLimit
	recent429   map[int64]refused429
}

var _ Budget = (*Limiter)(nil)

// refused429 is a 429 a chat got: when, and the pause it asked for.
type refused429 struct {
	at, until time.Time
	pause     time.Duration
}

type chatLimit struct {
	chat  bucket
	group *bucket
	until time.Time
}

// bucket is a rate.Limiter that also answers how long until it holds n
// tokens without taking them: a low-priority take needs more tokens in the
// bucket than it takes (the headroom kept for codes).
type bucket struct{ *rate.Limiter }

// newBucket returns a full bucket of burst tokens refilled at perSec.
func newBucket(perSec float64, burst int) bucket {
	return bucket{rate.NewLimiter(rate.Limit(perSec), burst)}
}

// need returns how long until the bucket holds n tokens (0 if it does).
func (b bucket) need(now time.Time, n float64) time.Duration {
	n = min(n, float64(b.Burst()))
	have := b.TokensAt(now)
	if have >= n {
		return 0
	}
	return time.Duration((n - have) / float64(b.Limit()) * float64(time.Second))
}

// take takes one token, which need said is there.
func (b bucket) take(now time.Time) { b.AllowN(now, 1) }

// full reports whether the bucket holds all its tokens.
func (b bucket) full(now time.Time) bool { return b.TokensAt(now) >= float64(b.Burst()) }

// empty takes every whole token: after a 429 the bucket was too generous.
func (b bucket) empty(now time.Time) {
	if n := int(math.Floor(b.TokensAt(now))); n > 0 {
		b.AllowN(now, n)
	}
}

// NewLimiter creates a Limiter.
func NewLimiter(opts LimiterOptions) *Limiter {
	opts = opts.withDefaults()
	return &Limiter{
		opts:      opts,
		now:       opts.Now,
		log:       opts.Logger,
		chats:     map[int64]*chatLimit{},
		recent429: map[int64]refused429{},
		global:    newBucket(opts.GlobalPerSec, opts.GlobalBurst),
	}
}

func (l *Limiter) chat(id int64, now time.Time) *chatLimit {
	c := l.chats[id]
	if c == nil {
		if len(l.chats) > 4096 {
			l.sweep(now)
		}
		c = &chatLimit{chat: newBucket(l.opts.ChatPerSec, l.opts.ChatBurst)}
		if id < 0 {
			g := newBucket(l.opts.GroupPerMin/60, l.opts.GroupBurst)
			c.group = &g
		}
		l.chats[id] = c
	}
	return c
}

// sweep forgets chats whose buckets are full and unpaused: they behave
// exactly like new ones.
func (l *Limiter) sweep(now time.Time) {
	for id, c := range l.chats {
		full := c.chat.full(now) && (c.group == nil || c.group.full(now))
		if full && !now.Before(c.until) {
			delete(l.chats, id)
		}
	}
	for id, r := range l.recent429 {
		if now.Sub(r.at) > time.Second {
			delete(l.recent429, id)
		}
	}
}

// Take takes one call's slot for target with share s and returns a zero
// Wait, or takes nothing and says how long to wait before asking again.
// Work below PriorityUpdate leaves GlobalReserve global tokens, and the
// last token of its chat and group, to codes, updates and replies.
func (l *Limiter) Take(_ context.Context, target otpbot.Target, s Share) Wait {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if pause := l.globalUntil.Sub(now); pause > 0 {
		return Wait{For: pause, Bot: true, Paused: true}
	}
	bot := l.global.need(now, need(s, l.opts.GlobalBurst, l.opts.GlobalReserve, true))
	var chat time.Duration
	var c *chatLimit
	if target.ChatID != 0 {
		c = l.chat(target.ChatID, now)
		if pause := c.until.Sub(now); pause > 0 {
			return Wait{For: pause, Paused: true}
		}
		chat = c.chat.need(now, need(s, l.opts.ChatBurst, 0, false))
		if c.group != nil {
			chat = max(chat, c.group.need(now, need(s, l.opts.GroupBurst, 0, false)))
		}
	}
	if pause := max(bot, chat); pause > 0 {
		// A bucket short by a hair (float rounding) must not return 0.
		return Wait{For: max(pause, time.Millisecond), Bot: bot >= chat}
	}
	l.global.take(now)
	if c != nil {
		c.chat.take(now)
		if c.group != nil {
			c.group.take(now)
		}
	}
	return Wait{}
}

// Pause obeys a 429 for target: the chat rests for retryAfter (capped at
// MaxRetryAfter, with a warning). The whole bot rests only when Telegram
// says the flood is global: a 429 on a call tied to no chat, or the same
// pause of more than a second given to GlobalFloodChats different chats
// within a second. It returns the pause applied.
func (l *Limiter) Pause(_ context.Context, target otpbot.Target, retryAfter time.Duration) time.Duration {
	retryAfter = capRetryAfter(l.log, l.opts.MaxRetryAfter, target, retryAfter)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	until := now.Add(retryAfter)
	if target.ChatID == 0 {
		l.pauseAll(now, until, retryAfter, 0)
		return retryAfter
	}
	c := l.chat(target.ChatID, now)
	if until.After(c.until) {
		c.until = until
	}
	// A 429 also means our buckets were too generous: empty them.
	c.chat.empty(now)
	l.recent429[target.ChatID] = refused429{at: now, until: until, pause: retryAfter}
	if retryAfter <= time.Second {
		return retryAfter
	}
	n := 0
	for id, r := range l.recent429 {
		switch {
		case now.Sub(r.at) > time.Second:
			delete(l.recent429, id)
		case r.pause > time.Second && absDuration(r.until.Sub(until)) <= time.Second:
			n++
		}
	}
	if n >= l.opts.GlobalFloodChats {
		l.pauseAll(now, until, retryAfter, n)
	}
	return retryAfter
}

// pauseAll rests every chat until `until`; l.mu must be held.
func (l *Limiter) pauseAll(now, until time.Time, pause time.Duration, chats int) {
	if !until.After(l.globalUntil) {
		return
	}
	l.log.Warn("telegram flood control: pausing all sends", "chats_refused", chats, "pause", pause)
	l.globalUntil = until
	l.global.empty(now)
}

// capRetryAfter bounds a 429's retry_after: at least a second, at most
// limit (logged when cut).
func capRetryAfter(log *slog.Logger, limit time.Duration, target otpbot.Target, retryAfter time.Duration) time.Duration {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	if retryAfter > limit {
		log.Warn("telegram retry_after capped", "retry_after", retryAfter, "cap", limit, "chat", target.ChatID)
		retryAfter = limit
	}
	return retryAfter
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// PausedUntil reports when target may be sent to again after a 429 (the
// later of its chat's and the global pause); zero when it is not paused.
func (l *Limiter) PausedUntil(_ context.Context, target otpbot.Target) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.globalUntil
	if c := l.chats[target.ChatID]; c != nil && target.ChatID != 0 && c.until.After(until) {
		until = c.until
	}
	if !until.After(l.now()) {
		return time.Time{}
	}
	return until
}
