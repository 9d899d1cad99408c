package redis

import "fmt"

// Topology names how the Redis behind a store is run. It changes what the
// store can promise after a failure (see DurabilityReport.Promise), not how
// it talks to Redis: the client given to New already knows that.
type Topology string

// The topologies otpbot supports.
const (
	// Standalone is one server, perhaps with replicas that nothing
	// promotes by itself.
	Standalone Topology = "standalone"
	// Sentinel is a primary with replicas and sentinels that promote a
	// replica when the primary dies (go-redis's failover client).
	Sentinel Topology = "sentinel"
	// Cluster is Redis Cluster: several primaries, each with its own
	// replicas, each owning a share of the hash slots.
	Cluster Topology = "cluster"
)

// Option sets what a Store needs beyond otpbot.StoreOptions.
type Option func(*options) error

// options are the Redis-specific settings of a Store.
type options struct {
	// minAcks is how many replicas must have a push before Ingest returns
	// (WAIT); 0 returns once the primary has it.
	minAcks int
	// topology is set by WithTopology; "" means Cluster for a
	// *goredis.ClusterClient and Standalone otherwise.
	topology Topology
	// shards, when positive, is the number of shards a fresh prefix gets
	// whatever the topology (tests run the sharded layout on one server).
	shards int
}

// withShards gives a fresh prefix n shards whatever the topology.
func withShards(n int) Option {
	return func(o *options) error {
		o.shards = n
		return nil
	}
}

// WithMinReplicasAck makes Ingest return only once n replicas acknowledged
// the push (Redis's WAIT, on the connection that wrote it, within
// replicaAckTimeout); fewer is otpbot.ErrUnavailable, so the provider
// retries. A repeat waits too: its acknowledgement may be the first the
// provider hears. 0, the default, returns once the primary has the push.
func WithMinReplicasAck(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("min replicas ack %d is negative", n)
		}
		o.minAcks = n
		return nil
	}
}

// WithTopology says how the Redis behind the client is run, for the
// durability report.
func WithTopology(t Topology) Option {
	return func(o *options) error {
		switch t {
		case Standalone, Sentinel, Cluster:
			o.topology = t
			return nil
		}
		return fmt.Errorf("unknown topology %q", t)
	}
}
