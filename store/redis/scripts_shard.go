package redis

// The scripts of a sharded prefix (see shard.go).

// routeScript: KEYS[1] = the history sequence (home slot). B is the home
// base, keys the event's routing keys (card, customer), cardKey the card
// key whose links name the card (empty for none). Returns {history sequence
// number, target, card name...}: the targets of the unbroken links of any
// of the keys, each once, sorted, each with its link's name of the card,
// when route is '1'.
var routeScript = script(luaRouteArgs, `
-- Every event is kept in history (under the events key at least).
local out = {tostring(redis.call('INCR', KEYS[1]))}
if route == '1' then
  local seen, targets = {}, {}
  for _, rk in ipairs(keys) do
    local broken = B .. 'lb:' .. rk
    for _, t in ipairs(redis.call('HKEYS', B .. 'lk:' .. rk)) do
      if not seen[t] and redis.call('HEXISTS', broken, t) == 0 then
        seen[t] = true
        table.insert(targets, t)
      end
    end
  end
  table.sort(targets)
  -- Each target with what its link calls the event's card, for the shard
  -- script to name it.
  for _, t in ipairs(targets) do
    local name = ''
    if cardKey ~= '' then
      local lj = redis.call('HGET', B .. 'lk:' .. cardKey, t)
      if lj then
        local ok, l = pcall(cjson.decode, lj)
        if ok and type(l) == 'table' and type(l.name) == 'string' then name = l.name end
      end
    end
    table.insert(out, t)
    table.insert(out, name)
  end
end
return out
`)

// peekScript: KEYS[1] = the shard's priority-0 queue; B the shard base.
// Returns {priority, id, score}... of up to max tasks claimable at now,
// most urgent priority first, then earliest: the candidates this shard
// offers a claim. Writes nothing.
var peekScript = script(luaPeekArgs, `
max = tonumber(max)
local out = {}
local n = 0
for p = 0, tonumber(nprio) - 1 do
  if n >= max then break end
  local r = redis.call('ZRANGEBYSCORE', B .. 'q:' .. p, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max - n)
  for i = 1, #r, 2 do
    table.insert(out, {p, r[i], r[i + 1]})
    n = n + 1
  end
end
return out
`)

// claimIDsScript: KEYS[1] = the shard's priority-0 queue; B the shard
// base. Leases each of picks still claimable at now (another claimer may
// have taken it since the peek), as claimScript does. Returns {lease, task
// JSON, msg head, msg event, msg state, msg updated}...
var claimIDsScript = script(luaClaimIDsArgs, `
now = tonumber(now)
local out = {}
for i, pk in ipairs(picks) do
  local q = B .. 'q:' .. pk.prio
  local sc = redis.call('ZSCORE', q, pk.id)
  if sc and tonumber(sc) <= now then
    local row = leaseTask(pk.prio, q, pk.id, tok .. ':' .. i, untilScore, untilAt)
    if row then table.insert(out, row) end
  end
end
return out
`)
