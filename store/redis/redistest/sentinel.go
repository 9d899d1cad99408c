package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor the
// primary under (store.redis.sentinel.master_name).
const MasterName = "otpbot"

// Sentinel timing. A primary is down for the sentinels after
// DownAfter without an answer; then they agree (a quorum of 2 of 3),
// elect a leader and promote a replica. Production runs use tens of
// seconds for DownAfter; a second keeps the tests short while staying well
// above the pauses of a loaded machine.
const (
	DownAfter       = time.Second
	failoverTimeout = 10 * time.Second
	// readyTimeout bounds the wait for replicas to sync and sentinels to
	// know each other: generous, for a loaded CI machine.
	readyTimeout = 30 * time.Second
)

// SentinelSet is a primary, its replicas and three sentinels monitoring
// it, all on loopback, all stopped when the test ends.
type SentinelSet struct {
	tb T
	// Data holds the primary first, then the replicas, as started: after
	// a failover the primary is another one (see Primary).
	Data []*Server
	// Sentinels are the three sentinels.
	Sentinels []*Server
}

// StartSentinel starts a primary with the given number of replicas and
// three sentinels (quorum 2), and returns once the replicas are in sync
// and every sentinel knows every replica and the other sentinels, so that
// a failover can happen from then on. args are more redis-server options
// for the data servers (not the sentinels).
func StartSentinel(tb T, replicas int, args ...string) *SentinelSet {
	tb.Helper()
	set := &SentinelSet{tb: tb}
	// A replica's full sync (at its start, after a failover) starts at
	// once rather than after the default 5 s; any server may be primary.
	args = append([]string{"--repl-diskless-sync-delay", "0"}, args...)
	primary := StartServer(tb, args...)
	set.Data = append(set.Data, primary)
	for range replicas {
		r := StartServer(tb, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}, args...)...)
		set.Data = append(set.Data, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := WaitReplicas(ctx, primary.Addr(), replicas); err != nil {
		tb.Fatalf("redistest: replicas of %s: %v", primary.Addr(), err)
	}
	for range 3 {
		s := newServer(tb, "--sentinel")
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s %[3]d\n"+
			"sentinel failover-timeout %[1]s %[4]d\n"+
			"sentinel parallel-syncs %[1]s 1\n",
			MasterName, primary.port, DownAfter.Milliseconds(), failoverTimeout.Milliseconds())
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.Start()
		set.Sentinels = append(set.Sentinels, s)
	}
	if err := set.waitKnown(ctx, replicas); err != nil {
		tb.Fatalf("redistest: sentinels not ready: %v", err)
	}
	return set
}

// SentinelAddrs are the sentinels' addresses
// (store.redis.sentinel.addrs).
func (set *SentinelSet) SentinelAddrs() []string {
	out := make([]string, len(set.Sentinels))
	for i, s := range set.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// Primary asks the sentinels which server is the primary now and returns
// it ("", nil while none of them answers).
func (set *SentinelSet) Primary(ctx context.Context) *Server {
	for _, s := range set.Sentinels {
		addr, err := masterAddr(ctx, s.Addr())
		if err != nil {
			continue
		}
		for _, d := range set.Data {
			if d.Addr() == addr {
				return d
			}
		}
	}
	return nil
}

// WaitPromoted waits until every sentinel names a primary other than old
// and that server answers as a primary with want replicas in sync, and
// returns it.
func (set *SentinelSet) WaitPromoted(ctx context.Context, old *Server, want int) (*Server, error) {
	for {
		if p := set.Primary(ctx); p != nil && p != old && set.agree(ctx, p.Addr()) {
			if WaitReplicas(ctx, p.Addr(), want) == nil {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no promotion away from %s: %w", old.Addr(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agree reports whether every sentinel names addr as the primary.
func (set *SentinelSet) agree(ctx context.Context, addr string) bool {
	for _, s := range set.Sentinels {
		if a, err := masterAddr(ctx, s.Addr()); err != nil || a != addr {
			return false
		}
	}
	return true
}

// waitKnown waits until every sentinel sees the primary up, the replicas
// and the two other sentinels.
func (set *SentinelSet) waitKnown(ctx context.Context, replicas int) error {
	for _, s := range set.Sentinels {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr()})
		err := poll(ctx, func() error {
			rs, err := c.Replicas(ctx, MasterName).Result()
			if err != nil {
				return err
			}
			up := 0
			for _, r := range rs {
				if !strings.Contains(r["flags"], "down") && r["master-link-status"] == "ok" {
					up++
				}
			}
			if up < replicas {
				return fmt.Errorf("sentinel %s sees %d of %d replicas", s.Addr(), up, replicas)
			}
			others, err := c.Sentinels(ctx, MasterName).Result()
			if err != nil {
				return err
			}
			if len(others) < 2 {
				return fmt.Errorf("sentinel %s knows %d other sentinels", s.Addr(), len(others))
			}
			return nil
		})
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// masterAddr asks one sentinel for the primary's address.
func masterAddr(ctx context.Context, sentinel string) (string, error) {
	c := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	v, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", fmt.Errorf("sentinel %s answered %v", sentinel, v)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}

// WaitReplicas waits until the server at addr is a primary with n
// replicas online and in sync with it, or ctx ends.
func WaitReplicas(ctx context.Context, addr string, n int) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	return poll(ctx, func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if role := infoValue(info, "role"); role != "master" {
			return fmt.Errorf("%s is %s", addr, role)
		}
		offset := infoValue(info, "master_repl_offset")
		online := 0
		for i := 0; ; i++ {
			line := infoValue(info, "slave"+strconv.Itoa(i))
			if line == "" {
				break
			}
			if strings.Contains(line, "state=online") && strings.Contains(line, "offset="+offset+",") {
				online++
			}
		}
		if online < n {
			return fmt.Errorf("%s has %d of %d replicas online and in sync", addr, online, n)
		}
		return nil
	})
}

// infoValue returns the value of name in an INFO reply.
func infoValue(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// poll calls f every 20ms until it returns nil, and returns its last error
// when ctx ends first.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
