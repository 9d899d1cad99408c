package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// InstallationSecret returns the installation secret under the store's prefix,
// creating it at the first call: SET NX makes the first writer's key the
// one every process reads back, so of several processes starting at once
// all use the same key. It has no expiry: losing it would change the id of
// every repeated push. (Like everything else, it is as durable as Redis's
// persistence; a failover that loses the write before any push was
// deduplicated with it costs nothing.)
func (s *Store) InstallationSecret(ctx context.Context) ([]byte, error) {
	key, err := s.readKey(ctx)
	if err != nil || key != nil {
		return key, err
	}
	fresh := make([]byte, otpbot.InstallationSecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("redis installation secret: generate: %w", err)
	}
	if err := s.client.SetNX(ctx, s.k.installationSecret(), fresh, 0).Err(); err != nil {
		return nil, wrap("installation secret", err)
	}
	key, err = s.readKey(ctx)
	if err == nil && key == nil {
		err = fmt.Errorf("redis installation secret: gone right after it was set (is %s expiring or evicted?)", s.k.installationSecret())
	}
	return key, err
}

// readKey returns the stored key, or nil when there is none yet. A key of
// the wrong size is an error rather than a reason to make a new one.
func (s *Store) readKey(ctx context.Context) ([]byte, error) {
	v, err := s.client.Get(ctx, s.k.installationSecret()).Bytes()
	if isRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("installation secret", err)
	}
	if len(v) != otpbot.InstallationSecretSize {
		return nil, fmt.Errorf("redis installation secret: %s holds %d bytes, want %d", s.k.installationSecret(), len(v), otpbot.InstallationSecretSize)
	}
	return v, nil
}

// importSecretScript applies an imported secret atomically. KEYS[1] = the
// secret, KEYS[2] = the dedupe set; secret is the imported one, cut the
// score (µs) at or below which a dedupe mark is outside the window. Returns
// 1 when the secret is stored or already equal, 0 on a conflict.
var importSecretScript = goredis.NewScript(luaImportSecretArgs + `
local cur = redis.call('GET', KEYS[1])
if cur == secret then return 1 end
if cur and redis.call('ZCOUNT', KEYS[2], '(' .. cut, '+inf') > 0 then return 0 end
redis.call('SET', KEYS[1], secret)
return 1
`)

// importSecret applies the installation secret of an import (see otpbot.Porter):
// stored when there is none, kept when equal, replaced only while no
// dedupe mark is inside the window.
func (s *Store) importSecret(ctx context.Context, key []byte) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	cut := us(s.now().Add(-s.opts.DedupeWindow))
	ok := 1
	if n > 1 {
		// The marks of shards other than the home one, looked at first
		// (the script sees only the home slot's).
		ok, err = s.secretReplaceable(ctx, n, key, cut)
		if err != nil {
			return err
		}
	}
	if ok == 1 {
		ok, err = importSecretScript.Run(ctx, s.client, []string{s.k.installationSecret(), s.k.dedupe()},
			(&importSecretArgs{Secret: key, Cut: cut}).argv()...).Int()
		if err != nil {
			return wrap("import installation secret", err)
		}
	}
	if ok == 0 {
		return fmt.Errorf("redis import: %w: the store already has a different installation secret and holds dedupe marks made with it, "+
			"so replacing the key would let repeats of those pushes through; import into a fresh prefix", otpbot.ErrSecretConflict)
	}
	return nil
}

// secretReplaceable returns 0 when the store holds another installation secret
// than key and a shard other than the home one holds a dedupe mark inside
// the window (cut, µs), else 1.
func (s *Store) secretReplaceable(ctx context.Context, n int, key []byte, cut string) (int, error) {
	cur, err := s.readKey(ctx)
	if err != nil || cur == nil || bytes.Equal(cur, key) {
		return 1, err
	}
	counts := make([]*goredis.IntCmd, n)
	err = s.forShards(ctx, n, func(p goredis.Pipeliner, i int, k keys) {
		counts[i] = p.ZCount(ctx, k.dedupe(), "("+cut, "+inf")
	})
	if err != nil {
		return 0, wrap("import installation secret", err)
	}
	for _, c := range counts[1:] {
		if c.Val() > 0 {
			return 0, nil
		}
	}
	return 1, nil
}
