package telegram

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// RedisLimiter is the bot's rate budget shared by every otpbot process on
// one Redis: Telegram's limits are the bot's, not each process's, so the
// buckets live in Redis and two or ten processes together keep to them. A
// process that dies holds no share: there are no shares, only the buckets.
//
// Each bucket is a GCRA cell (a "theoretical arrival time", as in
// go-redis/redis_rate), and one script takes from the global, chat and
// group cells at once: all or nothing, with the headroom low-priority work
// must leave, in one round trip. redis_rate takes one key per call, so a
// token taken from the chat would be lost whenever the global cell then
// refused, and it has no notion of headroom. The script reads Redis's own
// clock, so the processes' clocks need not agree.
//
// 429 pauses are shared the same way: a chat Telegram refused rests in
// every process. When Redis cannot be reached, each process falls back to
// its own in-process Limiter with the same limits until it answers again
// (the store is then unreachable too, so little is sent).
type RedisLimiter struct {
	client goredis.UniversalClient
	base   string
	opts   LimiterOptions
	// local detects a global flood from this process's 429s, and stands
	// in while Redis does not answer.
	local *Limiter
}

var _ Budget = (*RedisLimiter)(nil)

// NewRedisLimiter returns the budget kept under base, the store's key base
// (with its hash tag, so every key is in one Cluster slot).
func NewRedisLimiter(client goredis.UniversalClient, base string, opts LimiterOptions) *RedisLimiter {
	opts = opts.withDefaults()
	return &RedisLimiter{client: client, base: base + "rate:", opts: opts, local: NewLimiter(opts)}
}

// takeScript: KEYS are the pause keys (ARGV[1] of them) then one cell per
// bucket (ARGV[2] of them); per bucket, ARGV holds its emission interval
// (µs per token), burst and the tokens a take needs there. It returns
// {wait µs, paused (1) or not (0), bot (1) when the bot's own pause or
// cell — the first of each — set the wait}; wait 0 means the tokens were
// taken.
var takeScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local np, nb = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait, bot = 0, 0
for i = 1, np do
  local u = tonumber(redis.call('GET', KEYS[i]) or '0')
  if u - now > wait then wait, bot = u - now, (i == 1 and 1 or 0) end
end
if wait > 0 then return {math.ceil(wait), 1, bot} end
local tats = {}
for i = 1, nb do
  local ei = tonumber(ARGV[3 + 3 * (i - 1)])
  local burst = tonumber(ARGV[4 + 3 * (i - 1)])
  local need = tonumber(ARGV[5 + 3 * (i - 1)])
  local tat = tonumber(redis.call('GET', KEYS[np + i]) or '0')
  if tat < now then tat = now end
  local over = (tat - now) - (burst - need) * ei
  if over > wait then wait, bot = over, (i == 1 and 1 or 0) end
  tats[i] = tat + ei
end
if wait > 0 then return {math.ceil(wait), 0, bot} end
for i = 1, nb do
  redis.call('SET', KEYS[np + i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
end
return {0, 0, 0}
`)

// pauseScript sets KEYS[1] to now + ARGV[1] µs unless it holds a later
// time already.
var pauseScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local u = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < u then
  redis.call('SET', KEYS[1], string.format('%.0f', u), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
`)

func (l *RedisLimiter) globalPause() string { return l.base + "pause" }
func (l *RedisLimiter) chatPause(id int64) string {
	return l.base + "pause:" + strconv.FormatInt(id, 10)
}

// Take takes one call's slot for target at priority p from the shared
// buckets; see Budget.
func (l *RedisLimiter) Take(ctx context.Context, target otpbot.Target, s Share) Wait {
	o := l.opts
	keys := []string{l.globalPause()}
	pauses := 1
	cells := []string{l.base + "global"}
	args := []any{0, 0, interval(o.GlobalPerSec), o.GlobalBurst, need(s, o.GlobalBurst, o.GlobalReserve, true)}
	if id := target.ChatID; id != 0 {
		keys = append(keys, l.chatPause(id))
		pauses++
		cells = append(cells, l.base+"chat:"+strconv.FormatInt(id, 10))
		args = append(args, interval(o.ChatPerSec), o.ChatBurst, need(s, o.ChatBurst, 0, false))
		if id < 0 {
			cells = append(cells, l.base+"group:"+strconv.FormatInt(id, 10))
			args = append(args, interval(o.GroupPerMin/60), o.GroupBurst, need(s, o.GroupBurst, 0, false))
		}
	}
	args[0], args[1] = pauses, len(cells)
	res, err := takeScript.Run(ctx, l.client, append(keys, cells...), args...).Int64Slice()
	if err != nil || len(res) != 3 {
		l.opts.Logger.Warn("shared rate budget unreachable; this process keeps the limits alone meanwhile", "err", fmt.Errorf("rate budget: %w", err))
		return l.local.Take(ctx, target, s)
	}
	if res[0] <= 0 {
		return Wait{}
	}
	return Wait{For: max(time.Duration(res[0])*time.Microsecond, time.Millisecond), Paused: res[1] == 1, Bot: res[2] == 1}
}

// interval is a bucket's emission interval in µs: the time one token takes
// to come back.
func interval(perSec float64) float64 { return math.Round(1e6 / perSec) }

// Pause obeys a 429 for target in every process: the chat's pause is
// shared, and when this process sees the flood is global (see
// Limiter.Pause) so is the whole bot's.
func (l *RedisLimiter) Pause(ctx context.Context, target otpbot.Target, retryAfter time.Duration) time.Duration {
	before := l.local.PausedUntil(ctx, otpbot.Target{})
	pause := l.local.Pause(ctx, target, retryAfter)
	keys := []string{}
	if target.ChatID != 0 {
		keys = append(keys, l.chatPause(target.ChatID))
	}
	if after := l.local.PausedUntil(ctx, otpbot.Target{}); after.After(before) {
		keys = append(keys, l.globalPause())
	}
	for _, k := range keys {
		if err := pauseScript.Run(ctx, l.client, []string{k}, pause.Microseconds()).Err(); err != nil {
			l.opts.Logger.Warn("shared rate budget: pause not shared", "err", fmt.Errorf("rate pause: %w", err))
		}
	}
	return pause
}
