package redis

// The script behind Ingest (see the conventions in scripts.go).

// ingestScript: KEYS[1] = dedupe set. The arguments are ingestArgs (see
// Ingest): keys are the event's routing keys (card, customer); seq and
// targets are the history sequence number and the routed targets when
// given is '1' (a sharded prefix reads them in the home slot), else the
// script takes them; hkeys are its history keys, cardKey the card key
// whose links name the card (” for none), newState the state of a new
// message and states the (state, next state) pairs of otpbot.NextState.
// Returns {1} for a duplicate, else {0, target...}.
var ingestScript = script(luaIngestArgs, `
local seen = redis.call('ZSCORE', KEYS[1], id)
if seen and tonumber(seen) > tonumber(ddcut) then
  -- A repeat writes too (the mark's expiry, harmless): WAIT and WAITAOF
  -- after it then cover everything written before it on the server, the
  -- original push included, whichever connection wrote that.
  redis.call('PEXPIRE', KEYS[1], ddgc)
  return {1}
end

local tm = realms()
local nextState = {}
for _, st in ipairs(states) do nextState[st.from] = st.to end
-- The given targets come with the card's name in each ('' for none): the
-- links live in the home slot, out of this script's reach.
local givenNames = {}
for _, gt in ipairs(targets) do givenNames[gt.t] = gt.name end

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
      for _, t in ipairs(redis.call('HKEYS', B .. 'lk:' .. rk)) do
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
    if st then
      local ns = nextState[st] or st
      local e = evJSON
      if ns ~= LIVE then e = redJSON end
      redis.call('HSET', mk, 'e', e, 's', ns, 'u', nowStr)
      local tid = mid .. updSuffix
      putTask(tid, updatePrio, dueScore, dueAt, cScore,
        obj(J_ID .. cjson.encode(tid) .. ',' .. J_MESSAGE_ID .. cjson.encode(mid) .. ',' .. J_TARGET .. tj, updRest), mid)
    else
      local e = evJSON
      if newState ~= LIVE then e = redJSON end
      redis.call('HSET', mk, 'j', obj(J_ID .. cjson.encode(mid) .. ',' .. J_TARGET .. tj .. cardName(t), msgRest),
        'e', e, 's', newState, 'u', nowStr)
      index(B .. 'mc:' .. chatOf(t), mid, '+inf', tm)
      index(B .. 'ms', mid, '+inf', tm)
      local tid = mid .. sendSuffix
      putTask(tid, codePrio, dueScore, dueAt, cScore,
        obj(J_ID .. cjson.encode(tid) .. ',' .. J_MESSAGE_ID .. cjson.encode(mid) .. ',' .. J_TARGET .. tj, sendRest), mid)
    end
  end
  if #routed > 0 then wake(instance) end
end

local entry = entryOther
if #routed > 0 then entry = entryQueued end
if #hkeys > 0 then
  if given ~= '1' then seq = redis.call('INCR', B .. 'hseq') end
  local rec = seq .. '|' .. hts .. '|' .. entry
  for _, hk in ipairs(hkeys) do putHistory(hk, rec, tonumber(cap), tonumber(hcut), tonumber(hgc), tm) end
end

-- The dedupe mark goes last: Redis does not roll a script back when it
-- fails halfway, and a push must then be retried in full, not taken for a
-- repeat of something only half written.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ddcut)
redis.call('ZADD', KEYS[1], now, id)
redis.call('PEXPIRE', KEYS[1], ddgc)

local out = {0}
for _, t in ipairs(routed) do table.insert(out, t) end
return out
`)
