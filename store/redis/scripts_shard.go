package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts of a sharded prefix (see shard.go).

// routeScript: KEYS[1] = the history sequence (home slot). ARGV: home
// base, route ('0'/'1'), n, n keys (card, customer), the card key whose
// links name the card (” for none). Returns {history sequence number,
// target, card name...}: the targets of the unbroken links of any of the
// keys, each once, sorted, each with its link's name of the card, when
// route is '1'.
var routeScript = goredis.NewScript(luaPrelude + `
local nkeys = tonumber(ARGV[3])
-- Every event is kept in history (under the events key at least).
local out = {tostring(redis.call('INCR', KEYS[1]))}
if ARGV[2] == '1' then
  local seen, targets = {}, {}
  for i = 1, nkeys do
    local rk = ARGV[3 + i]
    local broken = B .. 'lb:' .. rk
    for _, t in ipairs(redis.call('HKEYS', B .. 'lk:' .. rk)) do
      if not seen[t] and redis.call('HEXISTS', broken, t) == 0 then
        seen[t] = true
        table.insert(targets, t)
      end
    end
  end
  table.sort(targets)
  -- Each target with what its link calls the event's card (the card key
  -- follows the keys; '' for none), for the shard script to name it.
  local cardKey = ARGV[4 + nkeys]
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

// peekScript: KEYS[1] = the shard's priority-0 queue. ARGV: shard base,
// now µs, max. Returns {priority, id, score}... of up to max tasks
// claimable at now, most urgent priority first, then earliest: the
// candidates this shard offers a claim. Writes nothing.
var peekScript = goredis.NewScript(luaPrelude + `
local now, max = ARGV[2], tonumber(ARGV[3])
local out = {}
local n = 0
for p = 0, 3 do
  if n >= max then break end
  local r = redis.call('ZRANGEBYSCORE', B .. 'q:' .. p, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max - n)
  for i = 1, #r, 2 do
    table.insert(out, {p, r[i], r[i + 1]})
    n = n + 1
  end
end
return out
`)

// claimIDsScript: KEYS[1] = the shard's priority-0 queue. ARGV: shard
// base, now µs, lease end µs, lease end RFC 3339, token prefix, n, n
// {priority, id} pairs. Leases each listed task still claimable at now
// (another claimer may have taken it since the peek), as claimScript does.
// Returns {lease, task JSON, msg head, msg event, msg state, msg
// updated}...
var claimIDsScript = goredis.NewScript(luaPrelude + `
local now, untilScore, untilAt, tok = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local out = {}
for i = 0, tonumber(ARGV[6]) - 1 do
  local p, id = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local q = B .. 'q:' .. p
  local sc = redis.call('ZSCORE', q, id)
  if sc and tonumber(sc) <= now then
    local row = leaseTask(p, q, id, tok .. ':' .. (i + 1), untilScore, untilAt)
    if row then table.insert(out, row) end
  end
end
return out
`)
