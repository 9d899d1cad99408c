package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/store/redis"
)

// storeOptions are the store settings of the configuration.
func storeOptions(cfg *Config) otpbot.StoreOptions {
	return otpbot.StoreOptions{
		DedupeWindow:     cfg.DedupeWindow,
		HistoryPerKey:    cfg.History.PerKey,
		HistoryRetention: cfg.History.Retention,
		InviteTTL:        bot.DefaultInviteTTL,
	}
}

// openedStore is a store with whatever must be closed after it.
type openedStore struct {
	otpbot.Store
	// describe says which store this is, for logs and `check`.
	describe string
	// bolt is set for the embedded store (its Backup serves /admin/backup).
	bolt *bolt.Store
	// redis is set for the Redis store (its Durability is checked).
	redis  *redis.Store
	client goredis.UniversalClient
}

// ClaimMarksSends forwards the store's otpbot.SendMarker, which the
// embedded interface hides: without it the deliverer would write a mark
// of its own on top of the claim's, and leave the claim's after a
// deferral.
func (s *openedStore) ClaimMarksSends() bool {
	m, ok := s.Store.(otpbot.SendMarker)
	return ok && m.ClaimMarksSends()
}

// storeCloseTimeout bounds the wait for a store's own goroutines at
// shutdown (a Redis subscription blocked in a read), so that a stop stays
// within shutdown_timeout; the process is about to exit anyway.
const storeCloseTimeout = 2 * time.Second

// Close closes the store and then its Redis client.
func (s *openedStore) Close() error {
	done := make(chan error, 1)
	go func() { done <- s.Store.Close() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(storeCloseTimeout):
		err = fmt.Errorf("store: close: still busy after %s; leaving it", storeCloseTimeout)
	}
	if s.client != nil {
		err = errors.Join(err, s.client.Close())
	}
	return err
}

// openStore opens the store named by driver ("embedded" or "redis") with
// the settings of cfg.
func openStore(ctx context.Context, cfg *Config, driver string, logger *slog.Logger) (*openedStore, error) {
	opts := storeOptions(cfg)
	switch driver {
	case "embedded":
		s, err := bolt.Open(cfg.Store.Path, opts, logger)
		if err != nil {
			return nil, err
		}
		return &openedStore{Store: s, bolt: s, describe: "embedded " + cfg.Store.Path}, nil
	case "redis":
		rc := &cfg.Store.Redis
		client, topology := newRedisClient(rc)
		s, err := redis.New(ctx, client, rc.Prefix, opts, logger,
			redis.WithTopology(topology), redis.WithMinReplicasAck(rc.MinReplicasAck))
		if err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
		return &openedStore{Store: s, redis: s, client: client, describe: describeRedis(rc)}, nil
	}
	return nil, fmt.Errorf("store: unknown driver %q", driver)
}

// durabilityTimeout bounds the look at Redis's persistence settings.
const durabilityTimeout = 5 * time.Second

// warnDurability logs, at serve's start, when Redis could lose pushes
// otpbot already acknowledged (no append-only file, or an fsync policy
// that leaves a window): the operator learns it before a crash does.
func warnDurability(ctx context.Context, s *redis.Store, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, durabilityTimeout)
	defer cancel()
	rep, err := s.Durability(ctx)
	if err != nil {
		logger.Warn("redis durability unknown", "err", err)
		return
	}
	if p := rep.Problem(); p != "" {
		logger.Error("redis cannot acknowledge pushes as configured", "detail", p, "redis", rep.String())
	}
	if w := rep.Warning(); w != "" {
		logger.Warn("redis may lose acknowledged pushes", "detail", w, "redis", rep.String())
		return
	}
	logger.Info("redis durability", "redis", rep.String(), "promise", rep.Promise())
}

// Redis client timeouts: fail fast while Redis is away (or failing over),
// so a push gets 503 within the provider's patience instead of hanging.
const (
	redisDialTimeout  = 2 * time.Second
	redisReadTimeout  = 3 * time.Second
	redisWriteTimeout = 3 * time.Second
)

// newRedisClient builds the client store.redis names: a Cluster client for
// cluster_addrs, go-redis's failover client for sentinel (it asks the
// sentinels for the primary at each new connection and drops its
// connections when they announce a new one), a plain client for addr.
func newRedisClient(rc *RedisConfig) (goredis.UniversalClient, redis.Topology) {
	switch {
	case len(rc.ClusterAddrs) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:        rc.ClusterAddrs,
			Username:     rc.Username,
			Password:     rc.Password,
			DialTimeout:  redisDialTimeout,
			ReadTimeout:  redisReadTimeout,
			WriteTimeout: redisWriteTimeout,
		}), redis.Cluster
	case rc.sentinel():
		return goredis.NewFailoverClient(&goredis.FailoverOptions{
			MasterName:       rc.Sentinel.MasterName,
			SentinelAddrs:    rc.Sentinel.Addrs,
			SentinelUsername: rc.Sentinel.Username,
			SentinelPassword: rc.Sentinel.Password,
			Username:         rc.Username,
			Password:         rc.Password,
			DB:               rc.DB,
			DialTimeout:      redisDialTimeout,
			ReadTimeout:      redisReadTimeout,
			WriteTimeout:     redisWriteTimeout,
		}), redis.Sentinel
	}
	return goredis.NewClient(&goredis.Options{
		Addr:         rc.Addr,
		Username:     rc.Username,
		Password:     rc.Password,
		DB:           rc.DB,
		DialTimeout:  redisDialTimeout,
		ReadTimeout:  redisReadTimeout,
		WriteTimeout: redisWriteTimeout,
	}), redis.Standalone
}

// describeRedis names the Redis of store.redis, without secrets.
func describeRedis(rc *RedisConfig) string {
	switch {
	case len(rc.ClusterAddrs) > 0:
		return fmt.Sprintf("redis cluster %v prefix %s", rc.ClusterAddrs, rc.Prefix)
	case rc.sentinel():
		return fmt.Sprintf("redis sentinel %s via %v prefix %s", rc.Sentinel.MasterName, rc.Sentinel.Addrs, rc.Prefix)
	}
	return "redis " + rc.Addr + " prefix " + rc.Prefix
}

// errStoreInUse says that a running otpbot holds the embedded store file.
var errStoreInUse = errors.New("in use by a running otpbot")

// probeEmbedded opens the embedded store file read-only, for backup and
// check, without waiting for a running server's lock: bbolt's lock is
// exclusive for the writer, so a read-only open fails with errStoreInUse
// while serve runs. The caller closes the returned DB.
func probeEmbedded(path string) (*bbolt.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, errors.Unwrap(err))
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 300 * time.Millisecond})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w", path, errStoreInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}
