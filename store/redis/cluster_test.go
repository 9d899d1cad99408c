package redis

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/store/storetest"
)

// newClusterClient starts a Redis Cluster of three primaries for the test
// and returns a client of it.
func newClusterClient(t *testing.T) (*redistest.ClusterSet, *goredis.ClusterClient) {
	t.Helper()
	set := redistest.StartCluster(t, 3)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: set.Addrs(), DialTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return set, c
}

// TestClusterConformance runs the shared store suite, and the checks of
// two stores on one prefix, against a Redis Cluster of three primaries,
// each subtest under its own prefix.
func TestClusterConformance(t *testing.T) {
	_, c := newClusterClient(t)
	t.Run("Run", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store {
			return openStore(t, c, testPrefix(), opts)
		})
	})
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, func(t *testing.T, opts otpbot.StoreOptions) (otpbot.Store, func() otpbot.Store) {
			prefix := testPrefix()
			return openStore(t, c, prefix, opts), func() otpbot.Store { return openStore(t, c, prefix, opts) }
		})
	})
}
