package redis

import (
	"strings"
	"testing"
)

// TestDurabilityPromise: what the report promises and when it says no push
// can be acknowledged, per topology, replicas and min_replicas_ack.
func TestDurabilityPromise(t *testing.T) {
	aof := DurabilityReport{Version: "7.0.15", AppendOnly: true, AppendFsync: "always", Wait: true, Primaries: 1}
	with := func(r DurabilityReport, topo Topology, replicas, acks int) DurabilityReport {
		r.Topology, r.Replicas, r.MinReplicasAck = topo, replicas, acks
		return r
	}
	noWait := with(aof, Sentinel, 2, 1)
	noWait.Wait = false
	tests := []struct {
		name    string
		r       DurabilityReport
		promise []string
		problem string
	}{
		{"one server", with(aof, Standalone, 0, 0), []string{"on the one Redis server", "a crash of Redis loses nothing"}, ""},
		{"sentinel without acks", with(aof, Sentinel, 2, 0), []string{"a failover loses what the replicas had not received yet"}, ""},
		{"sentinel waiting for a replica", with(aof, Sentinel, 2, 1), []string{"on the primary and 1 replica: it survives the primary's death (Sentinel promotes"}, ""},
		{"cluster waiting for two", with(aof, Cluster, 2, 2), []string{"on the primary and 2 replicas", "(the Cluster promotes"}, ""},
		{"standalone replica", with(aof, Standalone, 1, 1), []string{"nothing promotes a replica"}, ""},
		{"sentinel without a replica", with(aof, Sentinel, 0, 0), []string{"which has no replica"}, ""},
		{"cluster without replicas", with(aof, Cluster, 0, 0), []string{"a primary has no replica"}, ""},
		{"too few replicas", with(aof, Sentinel, 1, 2), nil, "min_replicas_ack is 2 but the primary has 1 connected"},
		{"too few replicas on a cluster", with(aof, Cluster, 0, 1), nil, "min_replicas_ack is 1 but a primary has only 0 connected"},
		{"WAIT refused", noWait, nil, "Redis refuses WAIT"},
		{"no AOF", with(DurabilityReport{Version: "7.0.15", Wait: true}, Standalone, 0, 0), []string{"since its last snapshot"}, ""},
		{"AOF everysec", with(DurabilityReport{Version: "7.0.15", AppendOnly: true, AppendFsync: "everysec", Wait: true}, Standalone, 0, 0),
			[]string{"about the last second"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.r.Promise()
			for _, w := range tt.promise {
				if !strings.Contains(p, w) {
					t.Errorf("Promise() = %q, want it to say %q", p, w)
				}
			}
			if got := tt.r.Problem(); (got == "") != (tt.problem == "") || !strings.Contains(got, tt.problem) {
				t.Errorf("Problem() = %q, want %q", got, tt.problem)
			}
		})
	}
}
