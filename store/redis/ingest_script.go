package redis

import goredis "github.com/redis/go-redis/v9"

// The script behind Ingest (see the conventions in scripts.go).

// ingestScript: KEYS[1] = dedupe set. ARGV: see the argument list in
// Ingest; the event's routing keys (card, customer) follow their count,
// then the history sequence number and the count of targets followed by
// the targets (both empty for the script to take them), the count and list
// of its history keys, the card key whose links name the card (empty for
// none), the state of a new message, the count and (state, next state)
// pairs of otpbot.NextState, then the instance id. Returns {1} for a
// duplicate, else {0, target...}.
var ingestScript = goredis.NewScript(luaPrelude + `
local id, now, ddcut, ddgc = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local seen = redis.call('ZSCORE', KEYS[1], id)
if seen and tonumber(seen) > tonumber(ddcut) then
  -- A repeat writes too (the mark's expiry, harmless): WAIT and WAITAOF
  -- after it then cover everything written before it on the server, the
  -- original push included, whichever connection wrote that.
  redis.call('PEXPIRE', KEYS[1], ddgc)
  return {1}
end

local route, group = ARGV[6], ARGV[7]
local evJSON, redJSON, msgRest, sendRest, updRest = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local dueScore, dueAt, cScore, nowStr = ARGV[13], ARGV[14], ARGV[15], ARGV[16]
local sendSuffix, updSuffix, live = ARGV[23], ARGV[24], ARGV[25]
local tm = realms()

-- The targets are the union of the unbroken links of every key of the
-- event (its card and its customer), each once: a chat linked to both gets
-- one message, and a target whose link broke under one key still receives
-- through an unbroken link under the other.
local nkeys = tonumber(ARGV[26])
-- After the keys: the history sequence number and the targets, when the
-- caller took them already (on a sharded prefix the links and the
-- sequence live in the home slot), else '' and '' to take them here.
local given = 27 + nkeys
local seq, ntargets = ARGV[given], ARGV[given + 1]
-- The given targets are followed by the card's name in each ('' for
-- none): the links live in the home slot, out of this script's reach.
local hi = given + 2
local givenNames = {}
if ntargets ~= '' then
  local n = tonumber(ntargets)
  for i = 1, n do givenNames[ARGV[given + 1 + i]] = ARGV[given + 1 + n + i] end
  hi = hi + 2 * n
end
local nhist = tonumber(ARGV[hi])
local ci = hi + nhist + 1
local cardKey, newState = ARGV[ci], ARGV[ci + 1]
local nextState = {}
for k = 0, tonumber(ARGV[ci + 2]) - 1 do nextState[ARGV[ci + 3 + 2 * k]] = ARGV[ci + 4 + 2 * k] end

-- cardName is what target t's link calls the event's card, as JSON to
-- splice into the message ('' for none).
local function cardName(t)
  local name = givenNames[t]
  if name == nil and cardKey ~= '' then
    local lj = redis.call('HGET', B .. 'lk:' .. cardKey, t)
    if lj then
      local ok, l = pcall(cjson.decode, lj)
      if ok and type(l) == 'table' and type(l.name) == 'string' then name = l.name end
    end
  end
  if name == nil or name == '' then return '' end
  return ',"card_name":' .. cjson.encode(name)
end

local targets = {}
if route == '1' then
  if ntargets ~= '' then
    for i = 1, tonumber(ntargets) do table.insert(targets, ARGV[given + 1 + i]) end
  else
    local seenT = {}
    for i = 1, nkeys do
      local rk = ARGV[26 + i]
      local broken = B .. 'lb:' .. rk
      for _, t in ipairs(redis.call('HKEYS', B .. 'lk:' .. rk)) do
        if not seenT[t] and redis.call('HEXISTS', broken, t) == 0 then
          seenT[t] = true
          table.insert(targets, t)
        end
      end
    end
  end
  table.sort(targets)
  for _, t in ipairs(targets) do
    local mid = group .. '@' .. t
    local mk = B .. 'm:' .. mid
    local st = redis.call('HGET', mk, 's')
    local tj = targetJSON(t)
    if st then
      local ns = nextState[st] or st
      local e = evJSON
      if ns ~= live then e = redJSON end
      redis.call('HSET', mk, 'e', e, 's', ns, 'u', nowStr)
      local tid = mid .. updSuffix
      putTask(tid, '1', dueScore, dueAt, cScore,
        obj('"id":' .. cjson.encode(tid) .. ',"message_id":' .. cjson.encode(mid) .. ',"target":' .. tj, updRest), mid)
    else
      local e = evJSON
      if newState ~= live then e = redJSON end
      redis.call('HSET', mk, 'j', obj('"id":' .. cjson.encode(mid) .. ',"target":' .. tj .. cardName(t), msgRest),
        'e', e, 's', newState, 'u', nowStr)
      index(B .. 'mc:' .. chatOf(t), mid, '+inf', tm)
      index(B .. 'ms', mid, '+inf', tm)
      local tid = mid .. sendSuffix
      putTask(tid, '0', dueScore, dueAt, cScore,
        obj('"id":' .. cjson.encode(tid) .. ',"message_id":' .. cjson.encode(mid) .. ',"target":' .. tj, sendRest), mid)
    end
  end
  if #targets > 0 then wake() end
end

local entry = ARGV[18]
if #targets > 0 then entry = ARGV[17] end
local hts, hcut, cap, hgc = ARGV[19], tonumber(ARGV[20]), tonumber(ARGV[21]), tonumber(ARGV[22])
if nhist > 0 then
  if seq == '' then seq = redis.call('INCR', B .. 'hseq') end
  local rec = seq .. '|' .. hts .. '|' .. entry
  for i = 1, nhist do putHistory(ARGV[hi + i], rec, cap, hcut, hgc, tm) end
end

-- The dedupe mark goes last: Redis does not roll a script back when it
-- fails halfway, and a push must then be retried in full, not taken for a
-- repeat of something only half written.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ddcut)
redis.call('ZADD', KEYS[1], now, id)
redis.call('PEXPIRE', KEYS[1], ddgc)

local out = {0}
for _, t in ipairs(targets) do table.insert(out, t) end
return out
`)
