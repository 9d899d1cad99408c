package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts of Once and the leases (coord.go).

// onceScript: KEYS[1] = the mark, set until expiry (µs) unless it is
// already set past now, and kept gc ms.
var onceScript = goredis.NewScript(luaOnceArgs + `
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(now) then return 0 end
redis.call('SET', KEYS[1], expiry, 'PX', gc)
return 1
`)

// acquireLeaseScript: KEYS[1] = the lease, taken by owner until expiry
// (µs) and kept gc ms. Returns 1 when owner holds the lease.
var acquireLeaseScript = goredis.NewScript(luaAcquireLeaseArgs + `
local v = redis.call('HMGET', KEYS[1], 'o', 'x')
if v[1] and v[1] ~= owner and tonumber(v[2]) > tonumber(now) then return 0 end
redis.call('HSET', KEYS[1], 'o', owner, 'x', expiry)
redis.call('PEXPIRE', KEYS[1], gc)
return 1
`)

// releaseLeaseScript: KEYS[1] = the lease.
var releaseLeaseScript = goredis.NewScript(luaReleaseLeaseArgs + `
if redis.call('HGET', KEYS[1], 'o') == owner then redis.call('DEL', KEYS[1]) end
return 1
`)
