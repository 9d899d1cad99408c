package bot

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpbot/otpbot"
)

// LimiterOptions configure a Limiter. Zero values take the defaults, which
// follow Telegram's published limits with a margin.
type LimiterOptions struct {
	// GlobalPerSec and GlobalBurst bound all sends and edits of the bot
	// (Telegram: about 30 messages a second). Defaults 25 and 5: a token
	// bucket allows burst + rate in any second, and that must stay under 30.
	GlobalPerSec float64
	GlobalBurst  int
	// GlobalReserve is how many global tokens low-priority work (countdown
	// refreshes, ops notices) must leave for codes and updates. Default 2.
	GlobalReserve int
	// ChatPerSec and ChatBurst bound one chat (Telegram: about one message
	// a second). Defaults 1 and 1.
	ChatPerSec float64
	ChatBurst  int
	// GroupPerMin and GroupBurst additionally bound group chats (negative
	// ids; Telegram: 20 messages a minute). Defaults 20 and 3.
	GroupPerMin float64
	GroupBurst  int
	// MaxRetryAfter caps the pause a 429's retry_after imposes; a larger
	// value is logged and cut. Default 60s.
	MaxRetryAfter time.Duration
	// GlobalFloodChats: when this many different chats get a 429 within a
	// second, the flood is taken as global and everything pauses. Default 3.
	GlobalFloodChats int
	// Instances is how many otpbot processes send for the same bot (serve
	// processes sharing one Redis). The limits above are the bot's; each
	// process takes its share: every rate divided by Instances, every
	// burst too (at least 1). Default 1.
	Instances int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Limiter keeps otpbot under Telegram's flood limits: a global bucket, one
// per chat and one more per group (token buckets of golang.org/x/time/rate,
// driven by the limiter's clock).
//
// The budget is per process: several processes sending for one bot (serve
// processes sharing one Redis) each get the full budget unless
// LimiterOptions.Instances divides it among them. It is priority-aware: work below
// PriorityUpdate (countdown refreshes, ops notices) only takes a token when
// the buckets keep headroom for codes, so a code never waits for a refresh
// to free the global budget. A 429 pauses only its scope: the chat, or the
// whole bot when several chats are refused at once (a global flood).
//
// Within one chat a strict 1/s limit cannot be beaten: a code that follows
// a refresh already sent to the same chat waits out that chat's interval.
type Limiter struct {
	opts LimiterOptions
	now  func() time.Time
	log  *slog.Logger

	mu          sync.Mutex
	global      bucket
	globalUntil time.Time
	chats       map[int64]*chatLimit
	recent429   map[int64]time.Time
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
	def(&opts.GlobalPerSec, 25)
	defInt(&opts.GlobalBurst, 5)
	defInt(&opts.GlobalReserve, 2)
	def(&opts.ChatPerSec, 1)
	defInt(&opts.ChatBurst, 1)
	def(&opts.GroupPerMin, 20)
	defInt(&opts.GroupBurst, 3)
	defInt(&opts.GlobalFloodChats, 3)
	defInt(&opts.Instances, 1)
	if n := opts.Instances; n > 1 {
		share := func(burst int) int { return max(1, burst/n) }
		opts.GlobalPerSec /= float64(n)
		opts.ChatPerSec /= float64(n)
		opts.GroupPerMin /= float64(n)
		opts.GlobalBurst, opts.ChatBurst, opts.GroupBurst = share(opts.GlobalBurst), share(opts.ChatBurst), share(opts.GroupBurst)
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = time.Minute
	}
	if opts.GlobalReserve >= opts.GlobalBurst {
		opts.GlobalReserve = max(opts.GlobalBurst-1, 0)
	}
	l := &Limiter{
		opts:      opts,
		now:       opts.Now,
		log:       opts.Logger,
		chats:     map[int64]*chatLimit{},
		recent429: map[int64]time.Time{},
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.global = newBucket(opts.GlobalPerSec, opts.GlobalBurst)
	return l
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
	for id, at := range l.recent429 {
		if now.Sub(at) > time.Second {
			delete(l.recent429, id)
		}
	}
}

// Take takes one send/edit slot for target at priority p and returns 0, or
// takes nothing and returns how long to wait before asking again. Work
// below PriorityUpdate leaves GlobalReserve global tokens (and one group
// token) for codes and updates.
func (l *Limiter) Take(target otpbot.Target, p otpbot.Priority) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c := l.chat(target.ChatID, now)
	if wait := l.globalUntil.Sub(now); wait > 0 {
		return wait
	}
	if wait := c.until.Sub(now); wait > 0 {
		return wait
	}
	low := p > otpbot.PriorityUpdate
	globalNeed, groupNeed := 1.0, 1.0
	if low {
		globalNeed += float64(l.opts.GlobalReserve)
		if c.group != nil && c.group.Burst() > 1 {
			groupNeed++
		}
	}
	wait := max(l.global.need(now, globalNeed), c.chat.need(now, 1))
	if c.group != nil {
		wait = max(wait, c.group.need(now, groupNeed))
	}
	if wait > 0 {
		// A bucket short by a hair (float rounding) must not return 0.
		return max(wait, time.Millisecond)
	}
	l.global.take(now)
	c.chat.take(now)
	if c.group != nil {
		c.group.take(now)
	}
	return 0
}

// Pause obeys a 429 for target: the chat rests for retryAfter (capped at
// MaxRetryAfter, with a warning). When GlobalFloodChats different chats
// are refused within a second, the flood is global and every chat rests.
// It returns the pause applied.
func (l *Limiter) Pause(target otpbot.Target, retryAfter time.Duration) time.Duration {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	if retryAfter > l.opts.MaxRetryAfter {
		l.log.Warn("telegram retry_after capped", "retry_after", retryAfter, "cap", l.opts.MaxRetryAfter, "chat", target.ChatID)
		retryAfter = l.opts.MaxRetryAfter
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	until := now.Add(retryAfter)
	c := l.chat(target.ChatID, now)
	if until.After(c.until) {
		c.until = until
	}
	// A 429 also means our buckets were too generous: empty them.
	c.chat.empty(now)
	l.recent429[target.ChatID] = now
	n := 0
	for id, at := range l.recent429 {
		if now.Sub(at) <= time.Second {
			n++
		} else {
			delete(l.recent429, id)
		}
	}
	if n >= l.opts.GlobalFloodChats && until.After(l.globalUntil) {
		l.log.Warn("telegram flood control: pausing all sends", "chats_refused", n, "pause", retryAfter)
		l.globalUntil = until
		l.global.empty(now)
	}
	return retryAfter
}

// PausedUntil reports when target may be sent to again after a 429 (the
// later of its chat's and the global pause); zero when it is not paused.
func (l *Limiter) PausedUntil(target otpbot.Target) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	if c := l.chats[target.ChatID]; c != nil {
		until = c.until
	}
	if l.globalUntil.After(until) {
		until = l.globalUntil
	}
	if !until.After(l.now()) {
		return time.Time{}
	}
	return until
}
