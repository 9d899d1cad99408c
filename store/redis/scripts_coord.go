package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts of Once and the leases (coord.go).

// onceScript: KEYS[1] = the mark. ARGV: now µs, until µs, gc ms.
var onceScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// acquireLeaseScript: KEYS[1] = the lease. ARGV: owner, now µs, until µs,
// gc ms. Returns 1 when owner holds the lease.
var acquireLeaseScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'o', 'x')
if v[1] and v[1] ~= ARGV[1] and tonumber(v[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'x', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// releaseLeaseScript: KEYS[1] = the lease. ARGV: owner.
var releaseLeaseScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)
