package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
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

// DurabilityReport says how the Redis server keeps what it acknowledged.
type DurabilityReport struct {
	// Version is the server's redis_version ("7.2.4").
	Version string
	// AppendOnly is true when the server writes an append-only file.
	AppendOnly bool
	// AppendFsync is the AOF fsync policy: "always", "everysec" or "no";
	// "" when the server refused CONFIG GET (managed services often do).
	AppendFsync string
	// WaitAOF is true when Ingest waits with WAITAOF until each push is
	// fsynced to the append-only file before it returns (AOF on and Redis
	// 7.2 or later).
	WaitAOF bool
}

// Durable reports whether an acknowledged push survives a Redis crash:
// Ingest waits for the fsync, or every write is fsynced before Redis
// answers.
func (r DurabilityReport) Durable() bool {
	return r.AppendOnly && (r.WaitAOF || r.AppendFsync == "always")
}

// Warning explains, in one sentence for an operator, what a Redis crash
// would lose; "" when the report is Durable.
func (r DurabilityReport) Warning() string {
	switch {
	case r.Durable():
		return ""
	case !r.AppendOnly:
		return "Redis has appendonly off: pushes acknowledged since its last snapshot are lost if Redis crashes " +
			"(set appendonly yes, with appendfsync always or on Redis 7.2 or later)"
	case r.AppendFsync == "no":
		return "Redis has appendfsync no and no WAITAOF (Redis " + r.Version + " < 7.2): " +
			"acknowledged pushes the OS has not yet written are lost if the machine crashes (set appendfsync always)"
	default:
		return "Redis " + r.Version + " has no WAITAOF (7.2 or later) and appendfsync is not always: " +
			"up to about a second of acknowledged pushes may be lost if Redis crashes (set appendfsync always)"
	}
}

// String renders the report on one line, for `otpbot check`.
func (r DurabilityReport) String() string {
	fsync := r.AppendFsync
	if fsync == "" {
		fsync = "unknown"
	}
	aof := "off"
	if r.AppendOnly {
		aof = "on"
	}
	wait := "no"
	if r.WaitAOF {
		wait = "yes"
	}
	return fmt.Sprintf("redis %s, appendonly %s, appendfsync %s, ingest waits for the fsync (WAITAOF): %s",
		r.Version, aof, fsync, wait)
}

// Durability reads the server's version and persistence settings (INFO,
// and CONFIG GET appendfsync where allowed) and returns them, with whether
// Ingest waits for the fsync. It also refreshes what Ingest does: cmd's
// check and serve call it to print or log Warning.
func (s *Store) Durability(ctx context.Context) (DurabilityReport, error) {
	c, err := s.node(ctx)
	if err != nil {
		return DurabilityReport{}, wrap("durability", err)
	}
	server, err := c.Info(ctx, "server").Result()
	if err != nil {
		return DurabilityReport{}, wrap("durability: info server", err)
	}
	pers, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return DurabilityReport{}, wrap("durability: info persistence", err)
	}
	r := DurabilityReport{
		Version:    infoField(server, "redis_version"),
		AppendOnly: infoField(pers, "aof_enabled") == "1",
	}
	// CONFIG is often renamed away on managed Redis: the policy is then
	// unknown, which only changes the wording of the warning.
	if cfg, err := c.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		r.AppendFsync = cfg["appendfsync"]
	} else if unavailable(err) {
		return DurabilityReport{}, wrap("durability: config get", err)
	}
	r.WaitAOF = r.AppendOnly && hasWaitAOF(r.Version)
	s.setAOF(r.WaitAOF)
	return r, nil
}

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

// node returns the client that serves the store's keys: the client itself,
// or on Cluster the master of the store's one hash slot (WAITAOF and INFO
// must reach the node that holds the writes).
func (s *Store) node(ctx context.Context) (goredis.Cmdable, error) {
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, s.k.dedupe())
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	return s.client, nil
}

// runIngestWaitAOF runs the ingest script and WAITAOF 1 0 on one connection
// (WAITAOF waits for the writes of its own connection), and returns the
// script's reply once the push is fsynced to the append-only file.
func (s *Store) runIngestWaitAOF(ctx context.Context, keys []string, args []any) ([]any, error) {
	c, err := s.node(ctx)
	if err != nil {
		return nil, wrap("ingest", err)
	}
	var run, wait *goredis.Cmd
	for _, cached := range []bool{true, false} {
		_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if cached {
				run = ingestScript.EvalSha(ctx, p, keys, args...)
			} else {
				run = ingestScript.Eval(ctx, p, keys, args...)
			}
			wait = p.Do(ctx, "WAITAOF", 1, 0, aofWaitTimeout.Milliseconds())
			return nil
		})
		if err := run.Err(); cached && err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			continue // the server lost its script cache (a restart): send it whole
		}
		break
	}
	v, err := run.Slice()
	if err != nil {
		return nil, wrap("ingest", err)
	}
	acks, err := wait.Int64Slice()
	var re goredis.Error
	switch {
	case err != nil && !unavailable(err) && errors.As(err, &re):
		// The server does not do WAITAOF after all (appendonly turned off,
		// or a failover to an older server): it keeps the push as its own
		// fsync policy allows, and the next push looks again.
		s.log.Warn("redis refused WAITAOF; acknowledging without waiting for the append-only file", "err", err)
		s.setAOF(false)
		return v, nil
	case err != nil:
		return nil, wrap("ingest: wait for the append-only file", err)
	case len(acks) == 0 || acks[0] < 1:
		return nil, fmt.Errorf("redis ingest: %w: not fsynced to the append-only file within %v",
			otpbot.ErrUnavailable, aofWaitTimeout)
	}
	return v, nil
}
