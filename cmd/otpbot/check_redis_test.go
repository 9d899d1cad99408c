package main

import (
	"strings"
	"testing"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/redis/redistest"
)

// TestCheckRedisTopologies: check reaches Redis through Sentinel and
// Cluster, prints what otpbot can promise there, and fails (exit 2) when
// min_replicas_ack asks for more replicas than the primary has, since
// every push would then be answered 503.
func TestCheckRedisTopologies(t *testing.T) {
	fake := bottest.New(t, bottest.WithToken(testToken))
	cfg := testConfig(t, t.TempDir(), fake, "")
	sentinel := redistest.StartSentinel(t, 1)
	cluster := redistest.StartCluster(t, 3)
	clusterEnv := map[string]string{
		"OTPBOT_STORE_DRIVER":              "redis",
		"OTPBOT_STORE_REDIS_CLUSTER_ADDRS": strings.Join(cluster.Addrs(), ","),
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string   // "" for exit 0
		want    []string // lines or parts of lines of the output
	}{
		{"sentinel, one replica awaited", sentinelEnv(sentinel, 1), "", []string{
			"store: ok (redis sentinel otpbot via [" + sentinel.SentinelAddrs()[0],
			"store durability: redis ",
			"(sentinel), appendonly off",
			"replicas connected: 1, ingest waits for 1 replica (WAIT)",
			"store promise: an acknowledged push is on the primary and 1 replica: it survives the primary's death (Sentinel promotes a replica that has it)",
			"warning: Redis has appendonly off: pushes acknowledged since its last snapshot are lost if the primary and its replicas crash together",
		}},
		{"sentinel, more replicas awaited than connected", sentinelEnv(sentinel, 2),
			"store: store.redis.min_replicas_ack is 2 but the primary has 1 connected: every push is answered 503 until enough are", nil},
		{"cluster", clusterEnv, "", []string{
			"store: ok (redis cluster [" + cluster.Addrs()[0],
			"(cluster of 3 primaries)",
			"replicas connected: 0 (the fewest of any primary), ingest waits for no replica",
			"store promise: an acknowledged push is on its primary only, and a primary has no replica",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(t, tt.env, "", "check", "-config", cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != exitConfig {
					t.Fatalf("check = %v (exit %d), want exit 2 with %q\n%s", err, exitCode(err), tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("check failed: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("check output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
