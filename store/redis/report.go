package redis

import (
	"fmt"
	"strings"
)

// DurabilityReport says how the Redis behind the store keeps what otpbot
// acknowledged, and so what otpbot can promise: `otpbot check` prints it,
// serve logs its warnings at start.
type DurabilityReport struct {
	// Version is the server's redis_version ("7.2.4"); on Cluster, the
	// distinct versions of the primaries joined by "/".
	Version string
	// AppendOnly is true when the server writes an append-only file (on
	// Cluster: every primary does).
	AppendOnly bool
	// AppendFsync is the AOF fsync policy: "always", "everysec" or "no";
	// "" when the server refused CONFIG GET (managed services often do).
	// On Cluster, the weakest of the primaries'.
	AppendFsync string
	// WaitAOF is true when Ingest waits with WAITAOF until each push is
	// fsynced to the append-only file before it returns (AOF on and Redis
	// 7.2 or later, on every primary).
	WaitAOF bool

	// Topology is how Redis is run (WithTopology).
	Topology Topology
	// Primaries is how many primaries hold otpbot's keys: a Cluster's
	// masters, 1 otherwise.
	Primaries int
	// Replicas is how many replicas are connected to the primary; on
	// Cluster, the fewest any primary has.
	Replicas int
	// MinReplicasAck is how many replicas Ingest waits for (WAIT) before
	// it returns: store.redis.min_replicas_ack.
	MinReplicasAck int
	// Wait is true when the server answers WAIT (a managed service may
	// have renamed it away).
	Wait bool
}

// Durable reports whether an acknowledged push survives a crash of Redis
// (of every copy at once): Ingest waits for the fsync, or every write is
// fsynced before Redis answers.
func (r DurabilityReport) Durable() bool {
	return r.AppendOnly && (r.WaitAOF || r.AppendFsync == "always")
}

// Problem says, in one sentence, why Ingest cannot acknowledge any push
// with these settings: it waits for more replicas than are connected, or
// for replicas with a WAIT the server refuses. "" when it can.
func (r DurabilityReport) Problem() string {
	switch {
	case r.MinReplicasAck > 0 && !r.Wait:
		return fmt.Sprintf("store.redis.min_replicas_ack is %d but Redis refuses WAIT: every push would be answered 503 "+
			"(set it to 0, or allow WAIT)", r.MinReplicasAck)
	case r.MinReplicasAck > r.Replicas:
		return fmt.Sprintf("store.redis.min_replicas_ack is %d but %s %d connected: every push is answered 503 until enough are "+
			"(run min_replicas_ack + 1 replicas, so that a failover still leaves enough)", r.MinReplicasAck, r.replicasOf(), r.Replicas)
	}
	return ""
}

// replicasOf names whose replicas Replicas counts.
func (r DurabilityReport) replicasOf() string {
	if r.Topology == Cluster {
		return "a primary has only"
	}
	return "the primary has"
}

// Warning explains, in one sentence for an operator, what a Redis crash
// would lose; "" when the report is Durable.
func (r DurabilityReport) Warning() string {
	crash := "if Redis crashes"
	if r.MinReplicasAck > 0 {
		crash = "if the primary and its replicas crash together, as in a power cut,"
	}
	switch {
	case r.Durable():
		return ""
	case !r.AppendOnly:
		return "Redis has appendonly off: pushes acknowledged since its last snapshot are lost " + crash +
			" (set appendonly yes, with appendfsync always or on Redis 7.2 or later)"
	case r.AppendFsync == "no":
		return "Redis has appendfsync no and no WAITAOF (Redis " + r.Version + " < 7.2): " +
			"acknowledged pushes the OS has not yet written are lost " + crash + " (set appendfsync always)"
	default:
		return "Redis " + r.Version + " has no WAITAOF (7.2 or later) and appendfsync is not always: " +
			"up to about a second of acknowledged pushes may be lost " + crash + " (set appendfsync always)"
	}
}

// Promise says, in one line, which failures an acknowledged push
// survives with these settings.
func (r DurabilityReport) Promise() string {
	var parts []string
	switch n := r.MinReplicasAck; {
	case n > 0 && r.Topology != Standalone:
		parts = append(parts, fmt.Sprintf("an acknowledged push is on the primary and %s: it survives the primary's death "+
			"(%s promotes a replica that has it)", plural(n, "replica"), promoter(r.Topology)))
	case n > 0:
		parts = append(parts, fmt.Sprintf("an acknowledged push is on the primary and %s, but nothing promotes a replica "+
			"when the primary dies (Sentinel or Cluster do)", plural(n, "replica")))
	case r.Replicas == 0 && r.Topology == Cluster:
		parts = append(parts, "an acknowledged push is on its primary only, and a primary has no replica: "+
			"while one is down, the pushes it would hold are answered 503")
	case r.Replicas == 0 && r.Topology == Sentinel:
		parts = append(parts, "an acknowledged push is on the primary only, which has no replica: while it is down pushes are answered 503")
	case r.Replicas == 0:
		parts = append(parts, "an acknowledged push is on the one Redis server; while it is down pushes are answered 503")
	default:
		parts = append(parts, "an acknowledged push is on the primary only: a failover loses what the replicas had not "+
			"received yet (set store.redis.min_replicas_ack)")
	}
	switch {
	case r.Durable():
		parts = append(parts, "a crash of Redis loses nothing acknowledged (it is fsynced to the append-only file first)")
	case !r.AppendOnly:
		parts = append(parts, "a crash of Redis loses what was acknowledged since its last snapshot")
	default:
		parts = append(parts, "a crash of Redis may lose about the last second acknowledged")
	}
	return strings.Join(parts, "; ")
}

// promoter names what promotes a replica in topology t.
func promoter(t Topology) string {
	if t == Cluster {
		return "the Cluster"
	}
	return "Sentinel"
}

// plural writes "1 replica", "2 replicas".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// String renders the report on one line, for `otpbot check`.
func (r DurabilityReport) String() string {
	fsync := r.AppendFsync
	if fsync == "" {
		fsync = "unknown"
	}
	topo := string(r.Topology)
	if r.Topology == Cluster {
		topo = "cluster of " + plural(r.Primaries, "primary")
		topo = strings.Replace(topo, "primarys", "primaries", 1)
	}
	wait := "ingest waits for no replica"
	if r.MinReplicasAck > 0 {
		wait = "ingest waits for " + plural(r.MinReplicasAck, "replica") + " (WAIT)"
	}
	replicas := fmt.Sprintf("replicas connected: %d", r.Replicas)
	if r.Topology == Cluster {
		replicas += " (the fewest of any primary)"
	}
	return fmt.Sprintf("redis %s (%s), appendonly %s, appendfsync %s, ingest waits for the fsync (WAITAOF): %s, %s, %s",
		r.Version, topo, onOff(r.AppendOnly), fsync, yesNo(r.WaitAOF), replicas, wait)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
