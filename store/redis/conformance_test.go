package redis

import (
	"testing"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// TestConformance runs the shared store suite against the Redis server on
// 127.0.0.1:6379, each subtest under its own prefix.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store {
		s, _, _ := newTestStore(t, opts)
		return s
	})
}

// TestShared runs the checks that need two stores on one prefix: here both
// stay open, as two otpbot processes sharing Redis would.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, opts otpbot.StoreOptions) (otpbot.Store, func() otpbot.Store) {
		first, c, prefix := newTestStore(t, opts)
		return first, func() otpbot.Store { return openStore(t, c, prefix, opts) }
	})
}

// TestShardedConformance runs the suite on the shared server with a
// prefix split into shards, as on Redis Cluster (where
// TestClusterConformance runs it across primaries).
func TestShardedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store {
		c := newClient(t, sharedAddr)
		prefix := testPrefix()
		cleanPrefix(t, c, prefix)
		return wantShards(t, openStoreWith(t, c, prefix, opts, withShards(5)), 5)
	})
}

// wantShards fails the test if s, once it chose its layout, has other
// than n shards: a conformance run meant for shards must run on them.
func wantShards(t *testing.T, s *Store, n int) *Store {
	t.Cleanup(func() {
		if got := s.nshards.Load(); got != 0 && int(got) != n {
			t.Errorf("the store has %d shards, want %d", got, n)
		}
	})
	return s
}
