package main

import (
	"net"
)

// validateRedis checks store.redis when store.driver is redis: exactly one
// topology (addr, sentinel or cluster_addrs), complete, with addresses
// that are host:port.
func validateRedis(r *RedisConfig) error {
	sentinel, cluster := r.sentinel(), len(r.ClusterAddrs) > 0
	// addr has a default: only a value other than it says the operator
	// meant a standalone server too.
	addrSet := r.Addr != "" && r.Addr != Defaults().Store.Redis.Addr
	switch {
	case sentinel && cluster:
		return cfgErr("store.redis.sentinel", "and store.redis.cluster_addrs are both set; keep one")
	case sentinel && addrSet:
		return cfgErr("store.redis.addr", "and store.redis.sentinel are both set; keep one (addr is for a standalone Redis)")
	case cluster && addrSet:
		return cfgErr("store.redis.addr", "and store.redis.cluster_addrs are both set; keep one (addr is for a standalone Redis)")
	case sentinel && r.Sentinel.MasterName == "":
		return cfgErr("store.redis.sentinel.master_name", "is required with store.redis.sentinel.addrs")
	case sentinel && len(r.Sentinel.Addrs) == 0:
		return cfgErr("store.redis.sentinel.addrs", "is required with store.redis.sentinel.master_name")
	case !sentinel && !cluster && r.Addr == "":
		return cfgErr("store.redis.addr", "is required when store.driver is redis (or set store.redis.sentinel or store.redis.cluster_addrs)")
	case cluster && r.DB != 0:
		return cfgErr("store.redis.db", "must be 0 with store.redis.cluster_addrs (a Redis Cluster has only database 0)")
	case r.DB < 0:
		return cfgErr("store.redis.db", "must not be negative")
	case r.MinReplicasAck < 0:
		return cfgErr("store.redis.min_replicas_ack", "must not be negative (got %d)", r.MinReplicasAck)
	case r.Prefix == "":
		return cfgErr("store.redis.prefix", "must not be empty (it keeps otpbot's keys apart)")
	}
	lists := []struct {
		key   string
		addrs []string
	}{
		{"store.redis.sentinel.addrs", r.Sentinel.Addrs},
		{"store.redis.cluster_addrs", r.ClusterAddrs},
	}
	if !sentinel && !cluster {
		lists = append(lists, struct {
			key   string
			addrs []string
		}{"store.redis.addr", []string{r.Addr}})
	}
	for _, l := range lists {
		for _, a := range l.addrs {
			if _, _, err := net.SplitHostPort(a); err != nil || a == "" {
				return cfgErr(l.key, "must be host:port (got %q)", a)
			}
		}
	}
	return nil
}
