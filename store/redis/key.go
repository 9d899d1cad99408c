package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// InstallationKey returns the installation key under the store's prefix,
// creating it at the first call: SET NX makes the first writer's key the
// one every process reads back, so of several processes starting at once
// all use the same key. It has no expiry: losing it would change the id of
// every repeated push. (Like everything else, it is as durable as Redis's
// persistence; a failover that loses the write before any push was
// deduplicated with it costs nothing.)
func (s *Store) InstallationKey(ctx context.Context) ([]byte, error) {
	key, err := s.readKey(ctx)
	if err != nil || key != nil {
		return key, err
	}
	fresh := make([]byte, otpbot.InstallationKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("redis installation key: generate: %w", err)
	}
	if err := s.client.SetNX(ctx, s.k.installationKey(), fresh, 0).Err(); err != nil {
		return nil, wrap("installation key", err)
	}
	key, err = s.readKey(ctx)
	if err == nil && key == nil {
		err = fmt.Errorf("redis installation key: gone right after it was set (is %s expiring or evicted?)", s.k.installationKey())
	}
	return key, err
}

// readKey returns the stored key, or nil when there is none yet. A key of
// the wrong size is an error rather than a reason to make a new one.
func (s *Store) readKey(ctx context.Context) ([]byte, error) {
	v, err := s.client.Get(ctx, s.k.installationKey()).Bytes()
	if isRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("installation key", err)
	}
	if len(v) != otpbot.InstallationKeySize {
		return nil, fmt.Errorf("redis installation key: %s holds %d bytes, want %d", s.k.installationKey(), len(v), otpbot.InstallationKeySize)
	}
	return v, nil
}

// importKeyScript applies an imported key atomically. KEYS[1] = the key,
// KEYS[2] = the dedupe set; key is the imported key, cut the score (µs) at
// or below which a dedupe mark is outside the window. Returns 1 when the
// key is stored or already equal, 0 on a conflict.
var importKeyScript = goredis.NewScript(luaImportKeyArgs + `
local cur = redis.call('GET', KEYS[1])
if cur == key then return 1 end
if cur and redis.call('ZCOUNT', KEYS[2], '(' .. cut, '+inf') > 0 then return 0 end
redis.call('SET', KEYS[1], key)
return 1
`)

// importKey applies the installation key of an import (see otpbot.Porter):
// stored when there is none, kept when equal, replaced only while no
// dedupe mark is inside the window.
func (s *Store) importKey(ctx context.Context, key []byte) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	cut := us(s.now().Add(-s.opts.DedupeWindow))
	ok := 1
	if n > 1 {
		// The marks of shards other than the home one, looked at first
		// (the script sees only the home slot's).
		ok, err = s.keyReplaceable(ctx, n, key, cut)
		if err != nil {
			return err
		}
	}
	if ok == 1 {
		ok, err = importKeyScript.Run(ctx, s.client, []string{s.k.installationKey(), s.k.dedupe()},
			(&importKeyArgs{Key: key, Cut: cut}).argv()...).Int()
		if err != nil {
			return wrap("import installation key", err)
		}
	}
	if ok == 0 {
		return fmt.Errorf("redis import: %w: the store already has a different installation key and holds dedupe marks made with it, "+
			"so replacing the key would let repeats of those pushes through; import into a fresh prefix", otpbot.ErrKeyConflict)
	}
	return nil
}

// keyReplaceable returns 0 when the store holds another installation key
// than key and a shard other than the home one holds a dedupe mark inside
// the window (cut, µs), else 1.
func (s *Store) keyReplaceable(ctx context.Context, n int, key []byte, cut string) (int, error) {
	cur, err := s.readKey(ctx)
	if err != nil || cur == nil || bytes.Equal(cur, key) {
		return 1, err
	}
	counts := make([]*goredis.IntCmd, n)
	err = s.forShards(ctx, n, func(p goredis.Pipeliner, i int, k keys) {
		counts[i] = p.ZCount(ctx, k.dedupe(), "("+cut, "+inf")
	})
	if err != nil {
		return 0, wrap("import installation key", err)
	}
	for _, c := range counts[1:] {
		if c.Val() > 0 {
			return 0, nil
		}
	}
	return 1, nil
}
