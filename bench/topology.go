package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot/store/redis/redistest"
)

// The topology modes: -redis-cluster and -redis-sentinel start their own
// redis-server processes (loopback, free ports, in the work dir, killed at
// the end) with the store/redis/redistest harness the tests use, instead
// of the shared Redis of -redis.
//
//	go run ./bench -redis-cluster -duration 10s     # ingest on 3 primaries: acks/s and the spread
//	go run ./bench -redis-sentinel -rate 20 -duration 10s   # a failover under load

// topologies runs the modes the flags ask for.
func (b *bench) topologies(ctx context.Context, stdout io.Writer) error {
	var errs []error
	if b.o.RedisCluster {
		errs = append(errs, b.clusterRun(ctx, stdout))
	}
	if b.o.RedisSentinel {
		errs = append(errs, b.sentinelRun(ctx, stdout))
	}
	return errors.Join(errs...)
}

// redisYAML is the store.redis section of an instance on spec.
func redisYAML(s storeSpec) string {
	var b strings.Builder
	b.WriteString("  redis:\n")
	switch {
	case len(s.Cluster) > 0:
		fmt.Fprintf(&b, "    cluster_addrs: [%s]\n", quoted(s.Cluster))
	case len(s.Sentinel) > 0:
		fmt.Fprintf(&b, "    sentinel:\n      master_name: %q\n      addrs: [%s]\n", redistest.MasterName, quoted(s.Sentinel))
	default:
		fmt.Fprintf(&b, "    addr: %q\n", s.Addr)
	}
	if s.MinAcks > 0 {
		fmt.Fprintf(&b, "    min_replicas_ack: %d\n", s.MinAcks)
	}
	fmt.Fprintf(&b, "    prefix: %q\n", s.Prefix)
	return b.String()
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// benchRedisClient is a client of the Redis of spec, as otpbot makes it.
func benchRedisClient(spec storeSpec) goredis.UniversalClient {
	switch {
	case len(spec.Cluster) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: spec.Cluster, PoolSize: 32})
	case len(spec.Sentinel) > 0:
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: redistest.MasterName, SentinelAddrs: spec.Sentinel, PoolSize: 32})
	}
	return goredis.NewClient(&goredis.Options{Addr: spec.Addr, PoolSize: 32})
}

// benchT is the redistest.T of the topology modes: the servers' cleanups
// run at close, their directories are in the work dir, and a failure
// stops the mode with an error (do) rather than a test.
type benchT struct {
	dir      string
	n        int
	cleanups []func()
}

// benchFailure is what Fatalf panics with; do recovers it.
type benchFailure struct{ msg string }

func newBenchT(dir string) *benchT { return &benchT{dir: dir} }

func (t *benchT) Helper() {}

func (t *benchT) Fatalf(format string, args ...any) {
	panic(benchFailure{fmt.Sprintf(format, args...)})
}

func (t *benchT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *benchT) TempDir() string {
	t.n++
	d := filepath.Join(t.dir, fmt.Sprintf("redis-%d", t.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	return d
}

// do runs f and turns a Fatalf inside it into an error.
func (t *benchT) do(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			bf, ok := r.(benchFailure)
			if !ok {
				panic(r)
			}
			err = errors.New(bf.msg)
		}
	}()
	f()
	return nil
}

// close stops every server, last started first.
func (t *benchT) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// nodeStat is what one primary did: Redis CPU, script calls and the keys
// it holds.
type nodeStat struct {
	cpu   float64
	calls int64
	keys  int64
}

// readNodeStat reads a primary's INFO cpu and commandstats and DBSIZE.
func readNodeStat(ctx context.Context, addr string) (nodeStat, error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return nodeStat{}, err
	}
	var st nodeStat
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case !ok:
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			st.cpu += f
		case k == "cmdstat_evalsha" || k == "cmdstat_eval":
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			st.calls += n
		}
	}
	st.keys, err = c.DBSize(ctx).Result()
	return st, err
}

// clusterRun runs the ingest scenario on a Redis Cluster of three
// primaries and prints how the work spread over them.
func (b *bench) clusterRun(ctx context.Context, stdout io.Writer) error {
	t := newBenchT(b.dir)
	defer t.close()
	var set *redistest.ClusterSet
	b.logf("redis cluster: starting 3 primaries")
	if err := t.do(func() { set = redistest.StartCluster(t, 3) }); err != nil {
		return fmt.Errorf("redis cluster: %w", err)
	}
	spec := storeSpec{Driver: "redis", Cluster: set.Addrs(), Prefix: fmt.Sprintf("otpbench:%s:cluster:", b.run)}
	before := make([]nodeStat, len(set.Nodes))
	for i, addr := range set.Addrs() {
		st, err := readNodeStat(ctx, addr)
		if err != nil {
			return fmt.Errorf("redis cluster: %w", err)
		}
		before[i] = st
	}
	b.logf("redis cluster: ingest")
	start := time.Now()
	res, err := b.ingest(ctx, spec)
	if err != nil {
		return fmt.Errorf("redis cluster: ingest: %w", err)
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "REDIS CLUSTER (3 primaries, started by the bench) — ingest over %d connections, ≤%d pushes, ≤%s\n",
		b.o.Conns, b.o.N, b.o.Duration)
	fmt.Fprintf(stdout, "  acks/s %s   ack p50 %s  p99 %s   acked / failed %d / %d\n",
		num(res.Load.PerSec), msf(res.Load.Ack.P50), msf(res.Load.Ack.P99), res.Load.Acked, res.Load.Failed)
	var cpuTotal float64
	deltas := make([]nodeStat, len(set.Nodes))
	for i, addr := range set.Addrs() {
		st, err := readNodeStat(ctx, addr)
		if err != nil {
			return fmt.Errorf("redis cluster: %w", err)
		}
		deltas[i] = nodeStat{cpu: st.cpu - before[i].cpu, calls: st.calls - before[i].calls, keys: st.keys}
		cpuTotal += deltas[i].cpu
	}
	fmt.Fprintf(stdout, "  per primary over the whole scenario (%s, links and warm-up included):\n", elapsed.Round(time.Second))
	busiest := 0.0
	for i, addr := range set.Addrs() {
		d := deltas[i]
		share := ratio(d.cpu, cpuTotal)
		busiest = max(busiest, share)
		fmt.Fprintf(stdout, "    %-21s Redis CPU %6.2f s (%s)   scripts %8d   keys %7d\n", addr, d.cpu, pct(share), d.calls, d.keys)
	}
	fmt.Fprintf(stdout, "  busiest primary: %s of the Redis CPU (with one hash tag it would be 100%%)\n", pct(busiest))
	return nil
}
