package redis

import (
	"fmt"
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
			return wantShards(t, openStore(t, c, testPrefix(), opts), clusterShards)
		})
	})
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, func(t *testing.T, opts otpbot.StoreOptions) (otpbot.Store, func() otpbot.Store) {
			prefix := testPrefix()
			return wantShards(t, openStore(t, c, prefix, opts), clusterShards), func() otpbot.Store { return openStore(t, c, prefix, opts) }
		})
	})
}

// TestClusterSpreadsPushes: on a Cluster of three primaries a fresh prefix
// is sharded, and the pushes (each written atomically in its shard: mark,
// history, message, task) spread over all three, each carrying a fair
// share; every one of them is then claimed once.
func TestClusterSpreadsPushes(t *testing.T) {
	_, c := newClusterClient(t)
	ctx := t.Context()
	clock := storetest.NewClock(epoch)
	s := openStore(t, c, testPrefix(), testOptions(clock))
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	const pushes = 300
	for i := range pushes {
		if res, err := s.Ingest(ctx, codeEvent(fmt.Sprintf("spread-%d", i), now)); err != nil || res.Outcome != otpbot.OutcomeQueued {
			t.Fatalf("Ingest %d = %+v, %v", i, res, err)
		}
	}
	n, err := s.shards(ctx)
	if err != nil || n != clusterShards {
		t.Fatalf("shards = %d, %v; want %d on a Cluster", n, err, clusterShards)
	}
	perNode := map[string]int64{}
	for i := range n {
		dd := s.shard(i).dedupe()
		node, err := c.MasterForKey(ctx, dd)
		if err != nil {
			t.Fatal(err)
		}
		marks, err := c.ZCard(ctx, dd).Result()
		if err != nil {
			t.Fatal(err)
		}
		perNode[node.Options().Addr] += marks
	}
	if len(perNode) != 3 {
		t.Fatalf("pushes on %d primaries, want 3: %v", len(perNode), perNode)
	}
	for addr, marks := range perNode {
		if marks < pushes/5 {
			t.Errorf("primary %s holds %d of %d pushes, want a fair share: %v", addr, marks, pushes, perNode)
		}
	}
	jobs, err := s.Claim(ctx, now, time.Minute, 2*pushes)
	if err != nil || len(jobs) != pushes {
		t.Fatalf("Claim = %d jobs, %v; want %d", len(jobs), err, pushes)
	}
	t.Logf("pushes per primary: %v", perNode)
}

// TestClusterLayoutIsKept: a prefix's layout is chosen once. Pushes an
// earlier version wrote in one slot (no layout mark) stay readable in one
// slot on Cluster, and a sharded prefix whose mark was lost (a failover
// before it reached a replica) stays sharded.
func TestClusterLayoutIsKept(t *testing.T) {
	_, c := newClusterClient(t)
	ctx := t.Context()
	clock := storetest.NewClock(epoch)
	now := clock.Now()
	tests := []struct {
		name  string
		first []Option // how the prefix was written first
		want  int
	}{
		{"one slot, before layouts", []Option{WithTopology(Standalone)}, 1},
		{"sharded, mark lost", nil, clusterShards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix()
			first := openStoreWith(t, c, prefix, testOptions(clock), tt.first...)
			mustDo(t, first.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
			for i := range 20 {
				if _, err := first.Ingest(ctx, codeEvent(fmt.Sprintf("kept-%d", i), now)); err != nil {
					t.Fatal(err)
				}
			}
			mustDo(t, c.Del(ctx, first.k.layoutKey()).Err())
			later := openStore(t, c, prefix, testOptions(clock))
			if n, err := later.shards(ctx); err != nil || n != tt.want {
				t.Fatalf("shards = %d, %v; want %d", n, err, tt.want)
			}
			if res, err := later.Ingest(ctx, codeEvent("kept-3", now)); err != nil || !res.Duplicate {
				t.Errorf("repeat of an earlier push = %+v, %v; want a repeat", res, err)
			}
			if jobs, err := later.Claim(ctx, now, time.Minute, 100); err != nil || len(jobs) != 20 {
				t.Errorf("Claim = %d jobs, %v; want the 20 earlier pushes", len(jobs), err)
			}
		})
	}
}
