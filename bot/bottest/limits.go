package bottest

import (
	"math"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Limits are Telegram's flood limits as the fake enforces them: token
// buckets that refill at the rate and hold at most the burst, so that a
// bot idle for a while may send a burst at once and then only the rate.
// A call is accepted when every bucket of its scope holds a token, and
// then takes one from each; beyond them the fake answers 429 with
// parameters.retry_after (whole seconds, at least 1) and, as Telegram
// does, keeps answering 429 in that scope until the wait is over.
//
// What counts where:
//   - sendMessage, editMessageText, editMessageReplyMarkup and
//     deleteMessage count against the global bucket, the chat's bucket
//     and, in a group (a negative chat id), the group's bucket;
//   - answerCallbackQuery counts against the global bucket only;
//   - nothing else counts (getMe, getUpdates, webhooks, setMyCommands).
//
// Only calls that would otherwise succeed are counted: one refused as
// malformed, "not modified" or blocked takes no token. A zero rate is no
// limit in that scope; a burst below 1 is 1.
type Limits struct {
	// GlobalPerSec and GlobalBurst bound all counted calls of the bot.
	GlobalPerSec float64
	GlobalBurst  int
	// ChatPerSec and ChatBurst bound the counted calls in one chat.
	ChatPerSec float64
	ChatBurst  int
	// GroupPerMin and GroupBurst additionally bound a group chat.
	GroupPerMin float64
	GroupBurst  int
}

// RealLimits are the limits Telegram documents for one bot — about 30
// messages a second overall, one a second per chat with short bursts, 20
// a minute per group — with the bursts the fake assumes Telegram
// tolerates, since it publishes none: one second's worth overall (30), 3
// in a chat, 3 in a group.
func RealLimits() Limits {
	return Limits{GlobalPerSec: 30, GlobalBurst: 30, ChatPerSec: 1, ChatBurst: 3, GroupPerMin: 20, GroupBurst: 3}
}

// WithLimits makes the server enforce globalPerSec counted calls per
// second overall and perChatPerSec per chat (0 = no limit), each with a
// burst of one second's worth and no group limit: WithTelegramLimits
// with Limits{globalPerSec, globalPerSec, perChatPerSec, perChatPerSec,
// 0, 0}.
func WithLimits(globalPerSec, perChatPerSec int) Option {
	return WithTelegramLimits(simpleLimits(globalPerSec, perChatPerSec))
}

// WithTelegramLimits makes the server enforce l (see Limits); RealLimits
// is Telegram's.
func WithTelegramLimits(l Limits) Option {
	return func(s *Server) { s.setLimits(l) }
}

// SetLimits changes the limits while the server runs, as WithLimits sets
// them at start (0 = no limit), e.g. after a test has set the scene
// without them. The buckets start full and pending 429 waits end.
func (s *Server) SetLimits(globalPerSec, perChatPerSec int) {
	s.SetTelegramLimits(simpleLimits(globalPerSec, perChatPerSec))
}

// SetTelegramLimits changes the limits while the server runs, as
// WithTelegramLimits sets them at start. The buckets start full and
// pending 429 waits end.
func (s *Server) SetTelegramLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLimits(l)
}

func simpleLimits(globalPerSec, perChatPerSec int) Limits {
	return Limits{GlobalPerSec: float64(globalPerSec), GlobalBurst: globalPerSec,
		ChatPerSec: float64(perChatPerSec), ChatBurst: perChatPerSec}
}

// setLimits installs l with full buckets; s.mu must be held (or s not
// yet shared).
func (s *Server) setLimits(l Limits) {
	s.limits = l
	s.global, s.globalUntil = bucket(l.GlobalPerSec, l.GlobalBurst), time.Time{}
	for _, c := range s.chats {
		c.bucket, c.groupBucket, c.until = nil, nil, time.Time{}
	}
}

// bucket is a token bucket of perSec and burst, nil when perSec is 0.
func bucket(perSec float64, burst int) *rate.Limiter {
	if perSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSec), max(burst, 1))
}

// chatBuckets returns c's buckets, made on first use.
func (s *Server) chatBuckets(c *chat) []*rate.Limiter {
	if c.bucket == nil {
		c.bucket = bucket(s.limits.ChatPerSec, s.limits.ChatBurst)
	}
	if c.groupBucket == nil && c.id < 0 {
		c.groupBucket = bucket(s.limits.GroupPerMin/60, s.limits.GroupBurst)
	}
	return []*rate.Limiter{c.bucket, c.groupBucket}
}

// flood applies the limits to a call that is otherwise accepted, in chat
// c (nil: a call that counts globally only). It takes the call's tokens
// and records it, or returns the 429 to answer. s.mu must be held.
func (s *Server) flood(c *chat) *apiError {
	now := time.Now()
	if now.Before(s.globalUntil) {
		return tooMany(s.globalUntil.Sub(now))
	}
	if wait := shortOf(now, s.global); wait > 0 {
		s.globalUntil = penalty(now, wait)
		return tooMany(s.globalUntil.Sub(now))
	}
	var local []*rate.Limiter
	if c != nil {
		if now.Before(c.until) {
			return tooMany(c.until.Sub(now))
		}
		local = s.chatBuckets(c)
		if wait := shortOf(now, local...); wait > 0 {
			c.until = penalty(now, wait)
			return tooMany(c.until.Sub(now))
		}
	}
	for _, b := range append(local, s.global) {
		if b != nil {
			b.AllowN(now, 1)
		}
	}
	s.counted = append(s.counted, now)
	return nil
}

// shortOf is how long until every one of buckets holds a token at now (0
// when they all do; nil buckets are no limit).
func shortOf(now time.Time, buckets ...*rate.Limiter) time.Duration {
	var wait time.Duration
	for _, b := range buckets {
		if b == nil {
			continue
		}
		if missing := 1 - b.TokensAt(now); missing > 0 {
			d := time.Duration(math.Ceil(missing / float64(b.Limit()) * float64(time.Second)))
			wait = max(wait, d)
		}
	}
	return wait
}

// penalty is when a 429 answered at now for a wait ends: Telegram's
// retry_after is whole seconds, and it refuses the scope until then.
func penalty(now time.Time, wait time.Duration) time.Time {
	return now.Add(time.Duration(retryAfter(wait)) * time.Second)
}

// retryAfter is wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

func tooMany(wait time.Duration) *apiError {
	secs := retryAfter(wait)
	return &apiError{code: 429, desc: "Too Many Requests: retry after " + strconv.Itoa(secs), retryAfter: secs}
}

// MaxCallsPerWindow is the largest number of accepted calls that count
// against the limits (see Limits) within any span of window, whatever the
// limits are, none included: what several bot processes sending for one
// bot did together. Calls answered 429 are not in it.
func (s *Server) MaxCallsPerWindow(window time.Duration) int {
	if window <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best, lo := 0, 0
	for hi, t := range s.counted {
		for t.Sub(s.counted[lo]) >= window {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// CountedCalls is how many accepted calls counted against the limits.
func (s *Server) CountedCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.counted)
}
