package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

//go:generate go test ./internal/scriptargs -update

// The Lua scripts behind every multi-key change. Each runs atomically on the
// server, so a change is either wholly written or not at all (a crash or a
// dropped connection never leaves half of it), and each costs one round trip.
//
// Conventions:
//   - ARGV[1] (B) is always the key base (prefix + hash tag). Scripts build the
//     keys they touch from it because some of them (message and task keys of
//     the targets a link lookup finds) are only known inside the script.
//     Every key shares the base's hash tag, so on Redis Cluster they all live
//     in one slot and such undeclared keys are still served by the node the
//     script runs on. KEYS[1] is a real key under the base, for routing.
//   - Times come from Go as strings: microseconds since the epoch for scores
//     and comparisons, RFC 3339 for exact values. Scripts never turn a large
//     number back into text (Lua would round it), except real-clock
//     milliseconds used only for garbage collection.
//   - Arguments are named: each script starts with a header generated
//     from its argument table (internal/scriptargs), which names ARGV[i],
//     and Go passes them as the fields of its NAMEArgs struct.
//   - A script that publishes on the wake channel takes the publishing
//     store's instance id as its argument instance and publishes that:
//     the publisher has already woken its own consumer, and its
//     subscriber skips its own publications.
//   - JSON from Go is stored verbatim. Where a script must build JSON (a
//     message or task per linked target), Go passes the constant part
//     ("rest", or for Ingest its "tail" after the opening brace) and the
//     script splices in the id and the target. Lua hashes every string it
//     makes, byte by byte: a script builds each such string in one
//     concatenation, and Go passes no large argument twice.

// The JSON names the scripts write when they build a message, task or
// target, as encoding/json writes otpbot's types (fragments.go builds the
// rest of the same objects).
const (
	jsonID        = `"id":`
	jsonMessageID = `"message_id":`
	jsonTarget    = `"target":`
	jsonCardName  = `"card_name":`
	jsonChatID    = `"chat_id":`
	jsonThreadID  = `"thread_id":`
	jsonKey       = `"key":`
)

// luaPrelude defines the helpers the scripts share. It follows the
// script's argument header (scriptargs_*_gen.go), which names ARGV[1] B.
const luaPrelude = `
local LIVE = '` + string(otpbot.StateLive) + `'
local J_ID, J_MESSAGE_ID, J_TARGET = '` + jsonID + `', '` + jsonMessageID + `', '` + jsonTarget + `'
local J_CARD_NAME, J_KEY, J_EVENT_HEAD = '` + jsonCardName + `', '` + jsonKey + `', '` + jsonEventHead + `'

-- targetJSON renders "CHAT" or "CHAT/THREAD" as an otpbot.Target.
local function targetJSON(t)
  local c, th = string.match(t, '^(%-?%d+)/(%d+)$')
  if c then return '{` + jsonChatID + `' .. c .. ',` + jsonThreadID + `' .. th .. '}' end
  return '{` + jsonChatID + `' .. t .. '}'
end

-- wake tells the other stores on the base that tasks may be claimable,
-- naming the publisher (the script's instance argument) so that it skips
-- its own.
local function wake(instance) redis.call('PUBLISH', B .. 'wake', instance) end

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
-- may be forgotten, after dropping members whose time has passed when
-- prune is set (Ingest prunes on a sample of its pushes: a forgotten
-- member left a while longer costs its readers a skipped entry).
local function index(zk, member, score, now, prune)
  if prune then redis.call('ZREMRANGEBYSCORE', zk, '-inf', '(' .. now) end
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

-- putTasks puts the tasks (the "task" shape) and wakes the other stores
-- when there are any.
local function putTasks(tasks, instance)
  for _, t in ipairs(tasks) do
    putTask(t.id, t.prio, t.score, t.at, t.cscore, t.json, t.msgID)
  end
  if #tasks > 0 then wake(instance) end
end

-- putMsg writes the message m (the "msg" shape). A final message no
-- longer needs to survive: it is forgotten m.gc ms later. A message that
-- becomes final drops a rendered hash carried over unchanged from its
-- live version: that hash is of a text that showed the code.
local function putMsg(m, now)
  local final, gc = m.final, tonumber(m.gc)
  local mk = B .. 'm:' .. m.id
  local head = m.head
  if final == '1' and m.rendered ~= '' then
    local old = redis.call('HMGET', mk, 's', 'j')
    if old[1] == LIVE then
      local ok, o = pcall(cjson.decode, old[2])
      if ok and type(o) == 'table' and o.rendered == m.rendered then head = m.headBare end
    end
  end
  redis.call('HSET', mk, 'j', head, 'e', m.evJSON, 's', m.state, 'u', m.updated)
  local score = '+inf'
  if final == '1' then
    redis.call('PEXPIRE', mk, gc)
    score = now + gc
  else
    redis.call('PERSIST', mk)
  end
  index(B .. 'mc:' .. m.chat, m.id, score, now, true)
  index(B .. 'ms', m.id, score, now, true)
end

-- putHistory stores rec under the history key hk, capped at cap entries
-- (History and Export read no more, so the list is trimmed only once it
-- holds a quarter more), dropping entries older than the cutoff hcut (µs,
-- store clock) when prune is set (readers skip them meanwhile).
-- now is the server's clock (ms), or nil for it to read it when it
-- needs it.
local function putHistory(key, rec, cap, hcut, gc, now, prune)
  local hk = B .. 'h:' .. key
  -- Trimmed back to cap once a quarter past it: readers read cap entries.
  if redis.call('LPUSH', hk, rec) > cap + math.floor(cap / 4) then redis.call('LTRIM', hk, 0, cap - 1) end
  while prune do
    local tail = redis.call('LINDEX', hk, -1)
    if not tail then break end
    local ts = tonumber(string.match(tail, '^%d+|(%-?%d+)|'))
    if ts and ts < hcut then redis.call('RPOP', hk) else break end
  end
  -- The list and its index entry get gc ms more once less than half of it
  -- is left: gc is twice the retention and more, so an entry always lives
  -- past the retention, and most pushes read the time left rather than
  -- write two keys.
  if redis.call('PTTL', hk) < gc / 2 then
    redis.call('PEXPIRE', hk, gc)
    now = now or realms()
    index(B .. 'hk', key, now + gc, now, prune)
  elseif prune then
    redis.call('ZREMRANGEBYSCORE', B .. 'hk', '-inf', '(' .. now)
  end
end
`

// script returns a script: its argument header (scriptargs_*_gen.go), the
// prelude, then body.
func script(header, body string) *goredis.Script {
	return goredis.NewScript(header + luaPrelude + body)
}

// claimScript: KEYS[1] = priority-0 queue. Returns {lease, task JSON, msg
// head, msg event, msg state, msg updated}...
var claimScript = script(luaClaimArgs, `
max = tonumber(max)
local out = {}
local n = 0
for p = 0, tonumber(nprio) - 1 do
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

// completeScript: KEYS[1] = the task. msg is written when hasMsg is '1'.
// Returns 0 when the lease is lost, 1 when done.
var completeScript = script(luaCompleteArgs, `
if redis.call('HGET', KEYS[1], 'l') ~= lease then return 0 end
delTask(taskID)
if hasMsg == '1' then putMsg(msg, realms()) end
putTasks(tasks, instance)
return 1
`)

// completeMessageScript: KEYS[1] = the task, KEYS[2] = the message.
// Returns 0 when the lease is lost, -2 when the message is unknown, -1 on
// a conflict (nothing written in any of these), 1 when done.
var completeMessageScript = script(luaCompleteMessageArgs, `
if redis.call('HGET', KEYS[1], 'l') ~= lease then return 0 end
local u = redis.call('HGET', KEYS[2], 'u')
if not u then return -2 end
if u ~= prevUpdated then return -1 end
delTask(taskID)
putMsg(msg, realms())
putTasks(tasks, instance)
return 1
`)

// retryScript: KEYS[1] = the task. Returns 0 when the lease is lost, 1
// when done.
var retryScript = script(luaRetryArgs, `
if redis.call('HGET', KEYS[1], 'l') ~= lease then return 0 end
local p = redis.call('HGET', KEYS[1], 'p')
redis.call('HSET', KEYS[1], 'j', taskJSON, 'at', dueAt)
redis.call('HDEL', KEYS[1], 'l')
redis.call('ZADD', B .. 'q:' .. p, dueScore, taskID)
wake(instance)
return 1
`)

// enqueueScript: KEYS[1] = priority-0 queue.
var enqueueScript = script(luaEnqueueArgs, `
putTasks(tasks, instance)
return 1
`)

// nextDueScript: KEYS[1] = priority-0 queue. Returns the RFC 3339 time
// the earliest task becomes claimable, or nil.
var nextDueScript = script(luaNextDueArgs, `
local best, bestID
for p = 0, tonumber(nprio) - 1 do
  local r = redis.call('ZRANGE', B .. 'q:' .. p, 0, 0, 'WITHSCORES')
  if r[1] and (not best or tonumber(r[2]) < best) then best, bestID = tonumber(r[2]), r[1] end
end
if not bestID then return false end
return redis.call('HGET', B .. 't:' .. bestID, 'at')
`)

// pendingScript: KEYS[1] = priority-0 queue. Returns {priority, count,
// oldest task JSON} for every non-empty priority.
var pendingScript = script(luaPendingArgs, `
local out = {}
for p = 0, tonumber(nprio) - 1 do
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

// updateMessageScript: KEYS[1] = the message. Returns -2 when the message
// is unknown, -1 on a conflict, 1 when done.
var updateMessageScript = script(luaUpdateMessageArgs, `
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return -2 end
if u ~= prevUpdated then return -1 end
putMsg(msg, realms())
putTasks(tasks, instance)
return 1
`)

// redactExpiredScript: KEYS[1] = the message. Drops the code of a live
// message past its expiry (writes the redacted evJSON and a new updated),
// unless it changed since the claim (prevUpdated). Returns 1 when it did.
var redactExpiredScript = script(luaRedactExpiredArgs, `
local v = redis.call('HMGET', KEYS[1], 's', 'u')
if v[1] ~= LIVE or v[2] ~= prevUpdated then return 0 end
redis.call('HSET', KEYS[1], 'e', evJSON, 'u', updated)
return 1
`)

// putMessageScript: KEYS[1] = the message. Used by Import.
var putMessageScript = script(luaPutMessageArgs, `
putMsg(msg, realms())
return 1
`)

// linkScript: KEYS[1] = the key's links. broken is '0' or '1'.
var linkScript = script(luaLinkArgs, `
redis.call('HSET', KEYS[1], target, linkJSON)
if broken == '1' then
  redis.call('HSET', B .. 'lb:' .. key, target, reason)
else
  redis.call('HDEL', B .. 'lb:' .. key, target)
end
redis.call('SADD', B .. 'lc:' .. chat, target .. ' ' .. key)
redis.call('SADD', B .. 'lkeys', key)
return 1
`)

// unlinkScript: KEYS[1] = the key's links. Returns 1 when a link was
// removed.
var unlinkScript = script(luaUnlinkArgs, `
local r = redis.call('HDEL', KEYS[1], target)
redis.call('HDEL', B .. 'lb:' .. key, target)
redis.call('SREM', B .. 'lc:' .. chat, target .. ' ' .. key)
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', B .. 'lkeys', key) end
return r
`)

// linksForKeyScript: KEYS[1] = the key's links. Returns {link JSON, broken
// reason or nil}...
var linksForKeyScript = script(luaLinksForKeyArgs, `
local out = {}
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  table.insert(out, {kv[i+1], redis.call('HGET', B .. 'lb:' .. key, kv[i])})
end
return out
`)

// linksForChatScript: KEYS[1] = the chat's link index. Returns {link
// JSON, broken reason or nil}...
var linksForChatScript = script(luaLinksForChatArgs, `
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

// markBrokenScript: KEYS[1] = the chat's link index. Returns how many
// links to target were marked.
var markBrokenScript = script(luaMarkBrokenArgs, `
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local t, key = string.match(m, '^(%S+) (.*)$')
  if t == target and redis.call('HEXISTS', B .. 'lk:' .. key, t) == 1 then
    redis.call('HSET', B .. 'lb:' .. key, t, reason)
    n = n + 1
  end
end
return n
`)

// createInviteScript: KEYS[1] = the invite, expiring in gc ms.
var createInviteScript = script(luaCreateInviteArgs, `
gc = tonumber(gc)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'j', inviteJSON, 'x', expiry, 'k', key, 'kj', keyJSON)
redis.call('PEXPIRE', KEYS[1], gc)
local tm = realms()
index(B .. 'iv', hash, tm + gc, tm, true)
return 1
`)

// redeemInviteScript: KEYS[1] = the invite. linkRest is the link's JSON
// without key and target. Returns the invite JSON, or nil when it is
// unknown, used or expired.
var redeemInviteScript = script(luaRedeemInviteArgs, `
local v = redis.call('HMGET', KEYS[1], 'j', 'x', 'k', 'kj')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', B .. 'iv', hash)
if tonumber(v[2]) <= tonumber(now) then return false end
local key = v[3]
redis.call('HSET', B .. 'lk:' .. key, target, obj(J_KEY .. v[4] .. ',' .. J_TARGET .. targetJSON(target), linkRest))
redis.call('HDEL', B .. 'lb:' .. key, target)
redis.call('SADD', B .. 'lc:' .. chat, target .. ' ' .. key)
redis.call('SADD', B .. 'lkeys', key)
return v[1]
`)

// importHistoryScript: KEYS[1] = history sequence. Stores entry (received
// at µs) under each of keys, as sequence number seq (empty to take it
// from KEYS[1]).
var importHistoryScript = script(luaImportHistoryArgs, `
local tm = realms()
if seq == '' then seq = redis.call('INCR', KEYS[1]) end
local rec = seq .. '|' .. at .. '|' .. entry
for _, k in ipairs(keys) do putHistory(k, rec, tonumber(cap), tonumber(hcut), tonumber(gc), tm, true) end
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
