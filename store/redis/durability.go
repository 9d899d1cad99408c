package redis

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Durability: a push is acknowledged once Ingest returns, so it must then
// survive a Redis crash. Redis keeps it on disk only with the append-only
// file (appendonly yes); RDB snapshots lose everything since the last one.
// Even with AOF, Redis answers a script before the write reaches the disk
// (appendfsync everysec fsyncs once a second): from Redis 7.2 on, WAITAOF
// lets a client wait until its own writes are fsynced, and Ingest does so
// whenever the server has AOF on and knows the command.

const (
	// aofWaitTimeout bounds how long Ingest waits for the fsync (WAITAOF's
	// timeout). With appendfsync everysec the wait is about a second at
	// worst; the bound stays under go-redis's default read timeout (3 s)
	// and well inside UPay's 5-second answer.
	aofWaitTimeout = 2 * time.Second
	// aofRecheck is how often Ingest looks again at the server's
	// persistence settings: CONFIG SET appendonly and failovers change
	// them while the store runs.
	aofRecheck = time.Minute
)

// infoField returns the value of name in an INFO reply ("" when absent).
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == name {
			return v
		}
	}
	return ""
}

// hasWaitAOF reports whether a server of this redis_version knows WAITAOF
// (Redis 7.2 and later; Valkey reports a compatible 7.2.x version).
func hasWaitAOF(version string) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 7 || (major == 7 && minor >= 2)
}

// setAOF records whether Ingest waits for the fsync, as of now.
func (s *Store) setAOF(wait bool) {
	s.aof.mu.Lock()
	s.aof.wait, s.aof.checked = wait, time.Now()
	s.aof.mu.Unlock()
}

// forgetAOF makes the next Ingest look at the server again (after a
// reconnection, which may be to another server).
func (s *Store) forgetAOF() {
	s.aof.mu.Lock()
	s.aof.checked = time.Time{}
	s.aof.mu.Unlock()
}

// waitAOF reports whether Ingest should wait for the fsync. The first push
// (and the first after a reconnection) looks at the server before it is
// written, so that no acknowledgement skips the wait; later the answer is
// refreshed every aofRecheck by one push while the others use the last one.
func (s *Store) waitAOF(ctx context.Context) bool {
	s.aof.mu.Lock()
	wait, checked, busy := s.aof.wait, s.aof.checked, s.aof.checking
	stale := checked.IsZero() || time.Since(checked) > aofRecheck
	if !stale || (busy && !checked.IsZero()) {
		s.aof.mu.Unlock()
		return wait
	}
	s.aof.checking = true
	s.aof.mu.Unlock()
	defer func() {
		s.aof.mu.Lock()
		s.aof.checking = false
		s.aof.mu.Unlock()
	}()
	r, err := s.Durability(ctx)
	switch {
	case err == nil:
		return r.WaitAOF
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), unavailable(err):
		// Redis is away: the push fails anyway, and the next one asks again.
		return wait
	default:
		// The server refuses INFO (an ACL, say): ask again later, not at
		// every push, and acknowledge as its fsync policy allows.
		s.log.Warn("redis persistence settings unreadable; ingest does not wait for the append-only file", "err", err)
		s.setAOF(false)
		return false
	}
}

// Durability reads the persistence and replication of the primaries that
// hold the store's keys (INFO, CONFIG GET appendfsync where allowed, and a
// WAIT that waits for nothing) and returns them with what Ingest does about
// them. It also refreshes whether Ingest waits for the fsync: cmd's check
// and serve call it to print or log the report.
func (s *Store) Durability(ctx context.Context) (DurabilityReport, error) {
	var nodes []nodeDurability
	var err error
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			n, err := readNode(ctx, c)
			mu.Lock()
			nodes = append(nodes, n)
			mu.Unlock()
			return err
		})
	} else {
		var n nodeDurability
		n, err = readNode(ctx, s.client)
		nodes = append(nodes, n)
	}
	if err != nil {
		return DurabilityReport{}, err
	}
	r := mergeNodes(nodes)
	r.Topology, r.MinReplicasAck = s.ropts.topology, s.ropts.minAcks
	s.setAOF(r.WaitAOF)
	return r, nil
}

// nodeDurability is what one primary says of itself.
type nodeDurability struct {
	version     string
	appendOnly  bool
	appendFsync string
	replicas    int
	wait        bool
}

// readNode reads one primary's settings.
func readNode(ctx context.Context, c goredis.UniversalClient) (nodeDurability, error) {
	var n nodeDurability
	info, err := c.Info(ctx, "server", "persistence", "replication").Result()
	if err != nil {
		return n, wrap("durability: info", err)
	}
	n.version = infoField(info, "redis_version")
	n.appendOnly = infoField(info, "aof_enabled") == "1"
	n.replicas, _ = strconv.Atoi(infoField(info, "connected_slaves"))
	// CONFIG is often renamed away on managed Redis: the policy is then
	// unknown, which only changes the wording of the warning.
	if cfg, err := c.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		n.appendFsync = cfg["appendfsync"]
	} else if unavailable(err) {
		return n, wrap("durability: config get", err)
	}
	// WAIT for no replica answers at once, unless the command is gone.
	err = c.Do(ctx, "WAIT", 0, 0).Err()
	if err != nil && unavailable(err) {
		return n, wrap("durability: wait", err)
	}
	n.wait = err == nil
	return n, nil
}

// mergeNodes sums up the primaries of a Cluster (or the one primary): the
// weakest setting of any of them is what a push may get.
func mergeNodes(nodes []nodeDurability) DurabilityReport {
	r := DurabilityReport{Primaries: len(nodes), AppendOnly: true, WaitAOF: true, Wait: true, Replicas: -1}
	fsyncRank := map[string]int{"always": 3, "everysec": 2, "no": 1, "": 0}
	fsync := 4
	var versions []string
	for _, n := range nodes {
		if !slices.Contains(versions, n.version) {
			versions = append(versions, n.version)
		}
		r.AppendOnly = r.AppendOnly && n.appendOnly
		r.WaitAOF = r.WaitAOF && n.appendOnly && hasWaitAOF(n.version)
		r.Wait = r.Wait && n.wait
		if rank := fsyncRank[n.appendFsync]; rank < fsync {
			fsync, r.AppendFsync = rank, n.appendFsync
		}
		if r.Replicas < 0 || n.replicas < r.Replicas {
			r.Replicas = n.replicas
		}
	}
	slices.Sort(versions)
	r.Version = strings.Join(versions, "/")
	r.Replicas = max(r.Replicas, 0)
	return r
}
