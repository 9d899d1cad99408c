package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// The Lua scripts behind every multi-key change. Each runs atomically on the
// server, so a change is either wholly written or not at all (a crash or a
// dropped connection never leaves half of it), and each costs one round trip.
//
// Conventions:
//   - ARGV[1] is always the key base (prefix + hash tag). Scripts build the
//     keys they touch from it because some of them (message and task keys of
//     the targets a link lookup finds) are only known inside the script.
//     Every key shares the base's hash tag, so on Redis Cluster they all live
//     in one slot and such undeclared keys are still served by the node the
//     script runs on. KEYS[1] is a real key under the base, for routing.
//   - Times come from Go as strings: microseconds since the epoch for scores
//     and comparisons, RFC 3339 for exact values. Scripts never turn a large
//     number back into text (Lua would round it), except real-clock
//     milliseconds used only for garbage collection.
//   - A script that publishes on the wake channel takes the publishing
//     store's instance id as its last argument (ARGV[#ARGV]) and publishes
//     that: the publisher has already woken its own consumer, and its
//     subscriber skips its own publications.
//   - JSON from Go is stored verbatim. Where a script must build JSON (a
//     message or task per linked target), Go passes the constant part
//     ("rest") and the script splices in the id and the target.

// luaPrelude defines the helpers the scripts share.
const luaPrelude = `
local B = ARGV[1]
local LIVE = '` + string(otpbot.StateLive) + `'

-- targetJSON renders "CHAT" or "CHAT/THREAD" as an otpbot.Target.
local function targetJSON(t)
  local c, th = string.match(t, '^(%-?%d+)/(%d+)$')
  if c then return '{"chat_id":' .. c .. ',"thread_id":' .. th .. '}' end
  return '{"chat_id":' .. t .. '}'
end

-- wake tells the other stores on the base that tasks may be claimable,
-- naming the publisher (the last argument) so that it skips its own.
local function wake() redis.call('PUBLISH', B .. 'wake', ARGV[#ARGV]) end

local function chatOf(t) return string.match(t, '^(%-?%d+)') end

-- obj prepends the fields in head to the JSON object rest.
local function obj(head, rest)
  if rest == '{}' then return '{' .. head .. '}' end
  return '{' .. head .. ',' .. string.sub(rest, 2)
end

-- realms is the server's wall clock in milliseconds, for garbage
-- collection only; outcomes follow the store clock passed in ARGV.
local function realms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- index adds member to the sorted set zk, scored by the real time (ms) it
-- may be forgotten, after dropping members whose time has passed.
local function index(zk, member, score, now)
  redis.call('ZREMRANGEBYSCORE', zk, '-inf', '(' .. now)
  redis.call('ZADD', zk, score, member)
end

-- leaseTask leases task id of queue q (priority p) until untilScore /
-- untilAt under lease, and returns its claim row {lease, task JSON, msg
-- head, msg event, msg state, msg updated}; a task whose hash is gone is
-- dropped from the queue and nil returned.
local function leaseTask(p, q, id, lease, untilScore, untilAt)
  local tk = B .. 't:' .. id
  local v = redis.call('HMGET', tk, 'j', 'm')
  if not v[1] then
    redis.call('ZREM', q, id)
    redis.call('ZREM', B .. 'qc:' .. p, id)
    return nil
  end
  redis.call('HSET', tk, 'l', lease, 'at', untilAt)
  redis.call('ZADD', q, untilScore, id)
  local m = {false, false, false, false}
  if v[2] and v[2] ~= '' then
    m = redis.call('HMGET', B .. 'm:' .. v[2], 'j', 'e', 's', 'u')
  end
  return {lease, v[1], m[1], m[2], m[3], m[4]}
end

local function delTask(id)
  local tk = B .. 't:' .. id
  local p = redis.call('HGET', tk, 'p')
  if p then
    redis.call('ZREM', B .. 'q:' .. p, id)
    redis.call('ZREM', B .. 'qc:' .. p, id)
    redis.call('DEL', tk)
  end
end

-- putTask replaces any task with the same id (its lease included) and
-- queues the new one, claimable once score (its due time) has passed.
local function putTask(id, prio, score, at, cscore, json, mid)
  delTask(id)
  redis.call('HSET', B .. 't:' .. id, 'j', json, 'p', prio, 'm', mid, 'at', at)
  redis.call('ZADD', B .. 'q:' .. prio, score, id)
  redis.call('ZADD', B .. 'qc:' .. prio, cscore, id)
end

-- putTasks puts the n tasks of 7 arguments each that start at ARGV[i].
local function putTasks(i, n)
  for k = 0, n - 1 do
    local a = i + k * 7
    putTask(ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5], ARGV[a+6])
  end
  if n > 0 then wake() end
end

-- putMsgAt writes a message (10 arguments from ARGV[i]: id, chat, head
-- JSON, head JSON without rendered, rendered, event JSON, state, updated,
-- final, gc ms). A final message no longer needs to survive: it is
-- forgotten gc ms later. A message that becomes final drops a rendered
-- hash carried over unchanged from its live version: that hash is of a
-- text that showed the code.
local function putMsgAt(i, now)
  local id, chat, final, gc = ARGV[i], ARGV[i+1], ARGV[i+8], tonumber(ARGV[i+9])
  local mk = B .. 'm:' .. id
  local head, rendered = ARGV[i+2], ARGV[i+4]
  if final == '1' and rendered ~= '' then
    local old = redis.call('HMGET', mk, 's', 'j')
    if old[1] == LIVE then
      local ok, o = pcall(cjson.decode, old[2])
      if ok and type(o) == 'table' and o.rendered == rendered then head = ARGV[i+3] end
    end
  end
  redis.call('HSET', mk, 'j', head, 'e', ARGV[i+5], 's', ARGV[i+6], 'u', ARGV[i+7])
  local score = '+inf'
  if final == '1' then
    redis.call('PEXPIRE', mk, gc)
    score = now + gc
  else
    redis.call('PERSIST', mk)
  end
  index(B .. 'mc:' .. chat, id, score, now)
  index(B .. 'ms', id, score, now)
end

-- putHistory stores rec under the history key hk, capped at cap entries,
-- dropping entries older than the cutoff hcut (µs, store clock).
local function putHistory(key, rec, cap, hcut, gc, now)
  local hk = B .. 'h:' .. key
  redis.call('LPUSH', hk, rec)
  redis.call('LTRIM', hk, 0, cap - 1)
  while true do
    local tail = redis.call('LINDEX', hk, -1)
    if not tail then break end
    local ts = tonumber(string.match(tail, '^%d+|(%-?%d+)|'))
    if ts and ts < hcut then redis.call('RPOP', hk) else break end
  end
  redis.call('PEXPIRE', hk, gc)
  index(B .. 'hk', key, now + gc, now)
end
`

// claimScript: KEYS[1] = priority-0 queue. ARGV: base, now µs, lease end
// µs, lease end RFC 3339, max, token prefix.
// Returns {lease, task JSON, msg head, msg event, msg state, msg updated}...
var claimScript = goredis.NewScript(luaPrelude + `
local now, untilScore, untilAt, max, tok = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local out = {}
local n = 0
for p = 0, 3 do
  if n >= max then break end
  local q = B .. 'q:' .. p
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, max - n)) do
    local row = leaseTask(p, q, id, tok .. ':' .. (n + 1), untilScore, untilAt)
    if row then
      n = n + 1
      table.insert(out, row)
    end
  end
end
return out
`)

// completeScript: KEYS[1] = the task. ARGV: base, task id, lease, has
// message ('0'/'1'), 10 message arguments, n, n tasks of 7 arguments,
// instance id. Returns 0 when the lease is lost, 1 when done.
var completeScript = goredis.NewScript(luaPrelude + `
if redis.call('HGET', KEYS[1], 'l') ~= ARGV[3] then return 0 end
delTask(ARGV[2])
if ARGV[4] == '1' then putMsgAt(5, realms()) end
putTasks(16, tonumber(ARGV[15]))
return 1
`)

// completeMessageScript: KEYS[1] = the task, KEYS[2] = the message. ARGV:
// base, task id, lease, previous updated (RFC 3339), 10 message arguments,
// n, n tasks of 7 arguments, instance id. Returns 0 when the lease is
// lost, -2 when the message is unknown, -1 on a conflict (nothing written
// in any of these), 1 when done.
var completeMessageScript = goredis.NewScript(luaPrelude + `
if redis.call('HGET', KEYS[1], 'l') ~= ARGV[3] then return 0 end
local u = redis.call('HGET', KEYS[2], 'u')
if not u then return -2 end
if u ~= ARGV[4] then return -1 end
delTask(ARGV[2])
putMsgAt(5, realms())
putTasks(16, tonumber(ARGV[15]))
return 1
`)

// retryScript: KEYS[1] = the task. ARGV: base, task id, lease, task JSON,
// due µs, due RFC 3339, instance id. Returns 0 when the lease is lost, 1
// when done.
var retryScript = goredis.NewScript(luaPrelude + `
if redis.call('HGET', KEYS[1], 'l') ~= ARGV[3] then return 0 end
local p = redis.call('HGET', KEYS[1], 'p')
redis.call('HSET', KEYS[1], 'j', ARGV[4], 'at', ARGV[6])
redis.call('HDEL', KEYS[1], 'l')
redis.call('ZADD', B .. 'q:' .. p, ARGV[5], ARGV[2])
wake()
return 1
`)

// enqueueScript: KEYS[1] = priority-0 queue. ARGV: base, n, n tasks,
// instance id.
var enqueueScript = goredis.NewScript(luaPrelude + `
putTasks(3, tonumber(ARGV[2]))
return 1
`)

// nextDueScript: KEYS[1] = priority-0 queue. ARGV: base. Returns the RFC
// 3339 time the earliest task becomes claimable, or nil.
var nextDueScript = goredis.NewScript(luaPrelude + `
local best, bestID
for p = 0, 3 do
  local r = redis.call('ZRANGE', B .. 'q:' .. p, 0, 0, 'WITHSCORES')
  if r[1] and (not best or tonumber(r[2]) < best) then best, bestID = tonumber(r[2]), r[1] end
end
if not bestID then return false end
return redis.call('HGET', B .. 't:' .. bestID, 'at')
`)

// pendingScript: KEYS[1] = priority-0 queue. ARGV: base. Returns
// {priority, count, oldest task JSON} for every non-empty priority.
var pendingScript = goredis.NewScript(luaPrelude + `
local out = {}
for p = 0, 3 do
  local n = redis.call('ZCARD', B .. 'q:' .. p)
  if n > 0 then
    local r = redis.call('ZRANGE', B .. 'qc:' .. p, 0, 0)
    local j = false
    if r[1] then j = redis.call('HGET', B .. 't:' .. r[1], 'j') end
    table.insert(out, {p, n, j})
  end
end
return out
`)

// updateMessageScript: KEYS[1] = the message. ARGV: base, previous
// updated (RFC 3339), 10 message arguments, n, n tasks, instance id.
// Returns -2 when the message is unknown, -1 on a conflict, 1 when done.
var updateMessageScript = goredis.NewScript(luaPrelude + `
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return -2 end
if u ~= ARGV[2] then return -1 end
putMsgAt(3, realms())
putTasks(14, tonumber(ARGV[13]))
return 1
`)

// redactExpiredScript: KEYS[1] = the message. ARGV: base, its updated
// (RFC 3339) as claimed, redacted event JSON, new updated. Drops the code
// of a live message past its expiry, unless it changed since the claim.
// Returns 1 when it did.
var redactExpiredScript = goredis.NewScript(luaPrelude + `
local v = redis.call('HMGET', KEYS[1], 's', 'u')
if v[1] ~= LIVE or v[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[3], 'u', ARGV[4])
return 1
`)

// putMessageScript: KEYS[1] = the message. ARGV: base, 10 message
// arguments. Used by Import.
var putMessageScript = goredis.NewScript(luaPrelude + `
putMsgAt(2, realms())
return 1
`)

// linkScript: KEYS[1] = the key's links. ARGV: base, key, target, chat,
// link JSON, broken ('0'/'1'), broken reason.
var linkScript = goredis.NewScript(luaPrelude + `
local key, t = ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], t, ARGV[5])
if ARGV[6] == '1' then
  redis.call('HSET', B .. 'lb:' .. key, t, ARGV[7])
else
  redis.call('HDEL', B .. 'lb:' .. key, t)
end
redis.call('SADD', B .. 'lc:' .. ARGV[4], t .. ' ' .. key)
redis.call('SADD', B .. 'lkeys', key)
return 1
`)

// unlinkScript: KEYS[1] = the key's links. ARGV: base, key, target, chat.
// Returns 1 when a link was removed.
var unlinkScript = goredis.NewScript(luaPrelude + `
local key, t = ARGV[2], ARGV[3]
local r = redis.call('HDEL', KEYS[1], t)
redis.call('HDEL', B .. 'lb:' .. key, t)
redis.call('SREM', B .. 'lc:' .. ARGV[4], t .. ' ' .. key)
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', B .. 'lkeys', key) end
return r
`)

// linksForKeyScript: KEYS[1] = the key's links. ARGV: base, key.
// Returns {link JSON, broken reason or nil}...
var linksForKeyScript = goredis.NewScript(luaPrelude + `
local out = {}
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  table.insert(out, {kv[i+1], redis.call('HGET', B .. 'lb:' .. ARGV[2], kv[i])})
end
return out
`)

// linksForChatScript: KEYS[1] = the chat's link index. ARGV: base.
// Returns {link JSON, broken reason or nil}...
var linksForChatScript = goredis.NewScript(luaPrelude + `
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local t, key = string.match(m, '^(%S+) (.*)$')
  local j = redis.call('HGET', B .. 'lk:' .. key, t)
  if j then
    table.insert(out, {j, redis.call('HGET', B .. 'lb:' .. key, t)})
  end
end
return out
`)

// markBrokenScript: KEYS[1] = the chat's link index. ARGV: base, target,
// reason. Returns how many links were marked.
var markBrokenScript = goredis.NewScript(luaPrelude + `
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local t, key = string.match(m, '^(%S+) (.*)$')
  if t == ARGV[2] and redis.call('HEXISTS', B .. 'lk:' .. key, t) == 1 then
    redis.call('HSET', B .. 'lb:' .. key, t, ARGV[3])
    n = n + 1
  end
end
return n
`)

// createInviteScript: KEYS[1] = the invite. ARGV: base, hash, invite JSON,
// expiry µs, key, key JSON, gc ms.
var createInviteScript = goredis.NewScript(luaPrelude + `
local gc = tonumber(ARGV[7])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'j', ARGV[3], 'x', ARGV[4], 'k', ARGV[5], 'kj', ARGV[6])
redis.call('PEXPIRE', KEYS[1], gc)
local tm = realms()
index(B .. 'iv', ARGV[2], tm + gc, tm)
return 1
`)

// redeemInviteScript: KEYS[1] = the invite. ARGV: base, hash, now µs,
// target, chat, link JSON rest (without key and target). Returns the
// invite JSON, or nil when it is unknown, used or expired.
var redeemInviteScript = goredis.NewScript(luaPrelude + `
local v = redis.call('HMGET', KEYS[1], 'j', 'x', 'k', 'kj')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', B .. 'iv', ARGV[2])
if tonumber(v[2]) <= tonumber(ARGV[3]) then return false end
local t, key = ARGV[4], v[3]
redis.call('HSET', B .. 'lk:' .. key, t, obj('"key":' .. v[4] .. ',"target":' .. targetJSON(t), ARGV[6]))
redis.call('HDEL', B .. 'lb:' .. key, t)
redis.call('SADD', B .. 'lc:' .. ARGV[5], t .. ' ' .. key)
redis.call('SADD', B .. 'lkeys', key)
return v[1]
`)

// importHistoryScript: KEYS[1] = history sequence. ARGV: base, time µs,
// entry JSON, cap, cutoff µs, gc ms, n, n keys, the sequence number (empty
// to take it from KEYS[1]).
var importHistoryScript = goredis.NewScript(luaPrelude + `
local tm = realms()
local seq = ARGV[8 + tonumber(ARGV[7])]
if seq == '' then seq = redis.call('INCR', KEYS[1]) end
local rec = seq .. '|' .. ARGV[2] .. '|' .. ARGV[3]
local cap, hcut, gc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 1, tonumber(ARGV[7]) do putHistory(ARGV[7 + i], rec, cap, hcut, gc, tm) end
return 1
`)

// The results the guarded scripts return (complete, completeMessage,
// retry, updateMessage): 1 done, 0 the lease changed, -1 the message
// changed, -2 the message is gone.
const (
	resultLeaseLost = 0
	resultConflict  = -1
	resultNotFound  = -2
)

// scriptResult maps a guarded script's result to the store's sentinel
// errors (nil when it did its work), naming the operation and its subject.
func scriptResult(op, id string, r int) error {
	switch r {
	case resultLeaseLost:
		return fmt.Errorf("%s %s: %w", op, id, otpbot.ErrLeaseLost)
	case resultConflict:
		return fmt.Errorf("%s %s: %w", op, id, otpbot.ErrConflict)
	case resultNotFound:
		return fmt.Errorf("%s %s: %w", op, id, otpbot.ErrNotFound)
	}
	return nil
}
