package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// replicaAckTimeout bounds how long Ingest waits for min_replicas_ack
// replicas (WAIT's timeout). Replicas on a LAN acknowledge in well under a
// millisecond; one that takes a second is away, and the push is better
// answered 503 (the provider retries) than left hanging. With WAITAOF's
// bound it stays inside UPay's 5-second answer.
const replicaAckTimeout = time.Second

// node returns the client of the primary that holds key: the client
// itself, or on Cluster the master of the key's slot (WAIT, WAITAOF and
// INFO must reach the node that holds the writes).
func (s *Store) node(ctx context.Context, key string) (goredis.Cmdable, error) {
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	return s.client, nil
}

// runIngest runs the ingest script and returns its reply once the push is
// as safe as the store is set to make it: on min_replicas_ack replicas
// (WAIT) and, when aof, fsynced to the primary's append-only file
// (WAITAOF). Both wait for the writes of their own connection, so they
// follow the script on one connection, in one pipeline.
func (s *Store) runIngest(ctx context.Context, keys []string, args []any, aof bool) ([]any, error) {
	if !aof && s.ropts.minAcks == 0 {
		v, err := ingestScript.Run(ctx, s.client, keys, args...).Slice()
		return v, wrap("ingest", err)
	}
	c, err := s.node(ctx, keys[0])
	if err != nil {
		return nil, wrap("ingest", err)
	}
	var run, wait, waitAOF *goredis.Cmd
	for _, cached := range []bool{true, false} {
		_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if cached {
				run = ingestScript.EvalSha(ctx, p, keys, args...)
			} else {
				run = ingestScript.Eval(ctx, p, keys, args...)
			}
			if s.ropts.minAcks > 0 {
				wait = p.Do(ctx, "WAIT", s.ropts.minAcks, replicaAckTimeout.Milliseconds())
			}
			if aof {
				waitAOF = p.Do(ctx, "WAITAOF", 1, 0, aofWaitTimeout.Milliseconds())
			}
			return nil
		})
		if err := run.Err(); cached && err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			continue // the server lost its script cache (a restart, a failover): send it whole
		}
		break
	}
	v, err := run.Slice()
	if err != nil {
		return nil, s.nodeError(ctx, err)
	}
	if wait != nil {
		if err := s.checkReplicaAcks(wait); err != nil {
			return nil, err
		}
	}
	if waitAOF != nil {
		if err := s.checkAOFAck(waitAOF); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// checkReplicaAcks turns WAIT's answer into an error unless enough
// replicas acknowledged. Too few is otpbot.ErrUnavailable: the push is on
// the primary, and its retry is a repeat that waits again.
func (s *Store) checkReplicaAcks(wait *goredis.Cmd) error {
	n, err := wait.Int64()
	var re goredis.Error
	switch {
	case err != nil && !unavailable(err) && errors.As(err, &re):
		// WAIT renamed away: a push cannot be acknowledged as configured.
		return fmt.Errorf("redis ingest: %w: WAIT refused (%w); store.redis.min_replicas_ack cannot be met", otpbot.ErrUnavailable, err)
	case err != nil:
		return wrap("ingest: wait for replicas", err)
	case n < int64(s.ropts.minAcks):
		return fmt.Errorf("redis ingest: %w: %s of %d acknowledged within %v (store.redis.min_replicas_ack)",
			otpbot.ErrUnavailable, plural(int(n), "replica"), s.ropts.minAcks, replicaAckTimeout)
	}
	return nil
}

// checkAOFAck turns WAITAOF's answer into an error unless the push was
// fsynced.
func (s *Store) checkAOFAck(wait *goredis.Cmd) error {
	acks, err := wait.Int64Slice()
	var re goredis.Error
	switch {
	case err != nil && !unavailable(err) && errors.As(err, &re):
		// The server does not do WAITAOF after all (appendonly turned off,
		// or a failover to an older server): it keeps the push as its own
		// fsync policy allows, and the next push looks again.
		s.log.Warn("redis refused WAITAOF; acknowledging without waiting for the append-only file", "err", err)
		s.setAOF(false)
		return nil
	case err != nil:
		return wrap("ingest: wait for the append-only file", err)
	case len(acks) == 0 || acks[0] < 1:
		return fmt.Errorf("redis ingest: %w: not fsynced to the append-only file within %v",
			otpbot.ErrUnavailable, aofWaitTimeout)
	}
	return nil
}

// nodeError wraps an error of a pipeline sent straight to a Cluster node.
// The Cluster client follows redirections and reloads its slot map for its
// own commands, not for these: a slot that moved (a failover, a
// resharding) or a node that is gone makes it reload the map now, and the
// push is ErrUnavailable (503), to be retried on the right node.
func (s *Store) nodeError(ctx context.Context, err error) error {
	cc, ok := s.client.(*goredis.ClusterClient)
	if !ok {
		return wrap("ingest", err)
	}
	moved := strings.HasPrefix(err.Error(), "MOVED ") || strings.HasPrefix(err.Error(), "ASK ")
	if moved || unavailable(err) {
		cc.ReloadState(ctx)
	}
	if moved {
		return fmt.Errorf("redis ingest: %w: %w", otpbot.ErrUnavailable, err)
	}
	return wrap("ingest", err)
}
