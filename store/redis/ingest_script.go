package redis

import "github.com/otpbot/otpbot"

// The script behind Ingest (see the conventions in scripts.go).

// ingestScript: KEYS[1] = dedupe set. The arguments are ingestArgs (see
// Ingest): keys are the event's routing keys (card, customer); seq and
// targets are the history sequence number and the routed targets when
// given is '1' (a sharded prefix reads them in the home slot), else the
// script takes them; hkeys are its history keys, cardKey the card key
// whose links name the card (empty for none), newState the state of a new
// message and moves the (state, next state) pairs of otpbot.NextState
// that change the state (the others keep it). atUs is the push's receipt
// (µs): its tasks' Created and its history entries' time.
// groupJSON is the group as a JSON string without its closing quote, so
// that the script builds the ids' JSON by concatenation (a target needs no
// escaping, the task id suffixes are the script's constants). prune ('1'
// on a sample of the pushes) drops what expired from the dedupe set, the
// indexes and the history lists: reading past those is harmless, and
// pruning at every push cost a third of the script's Redis commands.
// Returns {1} for a duplicate, else {0, target...}.
var ingestScript = script(luaIngestArgs, `
local SEND_SUFFIX, SEND_SUFFIX_JSON = `+luaString(otpbot.TaskID("", otpbot.TaskSend))+`, `+
	luaString(jsonContent(otpbot.TaskID("", otpbot.TaskSend)))+`
local UPD_SUFFIX, UPD_SUFFIX_JSON = `+luaString(otpbot.TaskID("", otpbot.TaskUpdate))+`, `+
	luaString(jsonContent(otpbot.TaskID("", otpbot.TaskUpdate)))+`

local seen = redis.call('ZSCORE', KEYS[1], id)
if seen and tonumber(seen) > tonumber(ddcut) then
  -- A repeat writes too (the mark's expiry, harmless): WAIT and WAITAOF
  -- after it then cover everything written before it on the server, the
  -- original push included, whichever connection wrote that.
  redis.call('PEXPIRE', KEYS[1], ddgc)
  return {1}
end

prune = prune == '1'
-- The server's clock (ms) is read only when pruning or extending an
-- expiry needs it: putHistory reads it itself when tm is nil.
local tm
if prune then tm = realms() end
local nextState = {}
for _, mv in ipairs(moves) do nextState[mv.from] = mv.to end
-- The given targets come with the card's name in each ('' for none): the
-- links live in the home slot, out of this script's reach.
local givenNames = {}
for _, gt in ipairs(targets) do givenNames[gt.t] = gt.name end

-- cardLinks holds the card key's links (target → JSON) when the routing
-- below read them already.
local cardLinks

-- cardName is what target t's link calls the event's card, as JSON to
-- splice into the message ('' for none).
local function cardName(t)
  local name = givenNames[t]
  if name == nil and cardKey ~= '' then
    local lj
    if cardLinks then lj = cardLinks[t] else lj = redis.call('HGET', B .. 'lk:' .. cardKey, t) end
    -- A link without a name (most) has no "name" field: no need to decode.
    if lj and string.find(lj, '"name":', 1, true) then
      local ok, l = pcall(cjson.decode, lj)
      if ok and type(l) == 'table' and type(l.name) == 'string' then name = l.name end
    end
  end
  if name == nil or name == '' then return '' end
  return ',' .. J_CARD_NAME .. cjson.encode(name)
end

-- The targets are the union of the unbroken links of every key of the
-- event (its card and its customer), each once: a chat linked to both gets
-- one message, and a target whose link broke under one key still receives
-- through an unbroken link under the other.
local routed = {}
if route == '1' then
  if given == '1' then
    for i, gt in ipairs(targets) do routed[i] = gt.t end
  else
    local seenT = {}
    for _, rk in ipairs(keys) do
      local broken = B .. 'lb:' .. rk
      local ts
      if rk == cardKey then
        -- The card's links with their JSON: cardName needs it for each
        -- new message.
        local kv = redis.call('HGETALL', B .. 'lk:' .. rk)
        cardLinks, ts = {}, {}
        for i = 1, #kv, 2 do
          cardLinks[kv[i]] = kv[i + 1]
          ts[#ts + 1] = kv[i]
        end
      else
        ts = redis.call('HKEYS', B .. 'lk:' .. rk)
      end
      for _, t in ipairs(ts) do
        if not seenT[t] and redis.call('HEXISTS', broken, t) == 0 then
          seenT[t] = true
          table.insert(routed, t)
        end
      end
    end
  end
  table.sort(routed)
  for _, t in ipairs(routed) do
    local mid = group .. '@' .. t
    local mk = B .. 'm:' .. mid
    local st = redis.call('HGET', mk, 's')
    local tj = targetJSON(t)
    -- The message id as JSON, open: the task id's adds its suffix.
    local midJSON = groupJSON .. '@' .. t
    local tail = '",' .. J_MESSAGE_ID .. midJSON .. '",' .. J_TARGET .. tj
    if st then
      local ns = nextState[st] or st
      local e = evJSON
      if ns ~= LIVE then e = redJSON end
      redis.call('HSET', mk, 'e', e, 's', ns, 'u', nowStr)
      putTask(mid .. UPD_SUFFIX, updatePrio, dueScore, dueAt, atUs,
        '{' .. J_ID .. midJSON .. UPD_SUFFIX_JSON .. tail .. updTail, mid)
    else
      local e = evJSON
      if newState ~= LIVE then e = redJSON end
      redis.call('HSET', mk, 'j', '{' .. J_ID .. midJSON .. '",' .. J_TARGET .. tj .. cardName(t) .. msgTail,
        'e', e, 's', newState, 'u', nowStr)
      index(B .. 'mc:' .. chatOf(t), mid, '+inf', tm, prune)
      index(B .. 'ms', mid, '+inf', tm, prune)
      putTask(mid .. SEND_SUFFIX, codePrio, dueScore, dueAt, atUs,
        '{' .. J_ID .. midJSON .. SEND_SUFFIX_JSON .. tail .. sendTail, mid)
    end
  end
  if #routed > 0 then wake(instance) end
end

local outcome = otherTail
if #routed > 0 then outcome = queuedTail end
if #hkeys > 0 then
  if given ~= '1' then seq = redis.call('INCR', B .. 'hseq') end
  -- The entry is the redacted event with the outcome: built in one
  -- concatenation, as Lua hashes every string it makes, byte by byte.
  local rec = seq .. '|' .. atUs .. '|' .. J_EVENT_HEAD .. redJSON .. outcome
  for _, hk in ipairs(hkeys) do putHistory(hk, rec, tonumber(cap), tonumber(hcut), tonumber(hgc), tm, prune) end
end

-- The dedupe mark goes last: Redis does not roll a script back when it
-- fails halfway, and a push must then be retried in full, not taken for a
-- repeat of something only half written.
if prune then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ddcut) end
redis.call('ZADD', KEYS[1], now, id)
-- The set gets ddgc ms more once less than half of it is left (ddgc is
-- twice the window and more: a mark always outlives the window).
if redis.call('PTTL', KEYS[1]) < tonumber(ddgc) / 2 then redis.call('PEXPIRE', KEYS[1], ddgc) end

local out = {0}
for _, t in ipairs(routed) do table.insert(out, t) end
return out
`)
