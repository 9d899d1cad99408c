package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// sharedAddr is the Redis server the tests run against.
const sharedAddr = "127.0.0.1:6379"

// testPrefix returns a key prefix no other test uses.
func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "otpbot-test:" + hex.EncodeToString(b[:]) + ":"
}

// newClient connects to addr and closes the client when the test ends.
func newClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// cleanPrefix removes every key under prefix when the test ends (never
// FLUSHALL: the server is shared).
func cleanPrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pattern := escapeGlob(prefix) + "*"
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				c.Del(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Del(ctx, batch...)
		}
		if err := iter.Err(); err != nil {
			t.Logf("clean %s: %v", prefix, err)
		}
	})
}

// escapeGlob escapes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// openStore opens a store on c under prefix and closes it when the test
// ends.
func openStore(t testing.TB, c goredis.UniversalClient, prefix string, opts otpbot.StoreOptions) *Store {
	t.Helper()
	return openStoreWith(t, c, prefix, opts)
}

// openStoreWith is openStore with Redis-specific options.
func openStoreWith(t testing.TB, c goredis.UniversalClient, prefix string, opts otpbot.StoreOptions, ropts ...Option) *Store {
	t.Helper()
	s, err := New(context.Background(), c, prefix, opts, slog.New(slog.DiscardHandler), ropts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestStore opens a store on the shared server under a fresh prefix,
// removed when the test ends.
func newTestStore(t testing.TB, opts otpbot.StoreOptions) (*Store, *goredis.Client, string) {
	t.Helper()
	c := newClient(t, sharedAddr)
	prefix := testPrefix()
	cleanPrefix(t, c, prefix)
	return openStore(t, c, prefix, opts), c, prefix
}

// waitFor polls cond every 10ms until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
